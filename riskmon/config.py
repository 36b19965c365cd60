"""One typed settings object, read from ``RISKMON_*`` environment variables.

Why one object: every process (worker, replay, simulator, bench, tests) must agree on broker, Redis,
ClickHouse and policy file, and operators change behaviour through the environment, not code. The
README's configuration table is generated from the field descriptions below (``riskmon config``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Runtime configuration. Every field maps to ``RISKMON_<FIELD>`` (upper case)."""

    model_config = SettingsConfigDict(env_prefix="RISKMON_", extra="ignore")

    var_dir: Path = Field(
        REPO_ROOT / "var",
        description="Working directory for service data, logs, checkpoints and outputs.",
    )
    broker: str = Field(
        "tansu",
        description="`tansu` (embedded, memory-only), `apache` (Kafka KRaft from Maven jars) "
        "or an external bootstrap like `kafka://host:9092`.",
    )
    broker_url: str | None = Field(
        None,
        description="Bootstrap URL of a running broker (`kafka://host:port`). Set by `services up`; "
        "when set, no broker is started.",
    )
    redis_url: str | None = Field(
        None,
        description="Redis URL (`redis://[:password@]host:port/db`, `rediss://` for TLS). "
        "Unset: a local redis-server is started on a free port.",
    )
    clickhouse_dsn: str | None = Field(
        None,
        description="clickhouse-connect DSN: `chdb:///path` (in-process engine) or "
        "`http(s)://user:pass@host:8123/db`. Unset: `chdb://<var_dir>/clickhouse`.",
    )
    partitions: int = Field(4, ge=1, description="Partitions of every user- and enterprise-keyed topic.")
    app_id: str = Field("riskmon", description="Faust app id = Kafka consumer group id.")
    topic_prefix: str = Field(
        "", description="Prefix of every topic name (isolates replays and tests sharing one broker)."
    )
    policy_file: Path | None = Field(
        None,
        description="YAML policy file (limits, ladder, pricing, EWS thresholds, alert routing). "
        "Unset: the packaged `riskmon/policies/default.yaml`.",
    )
    scorecard_file: Path | None = Field(
        None, description="Scorecard prior (JSON points table over the model features; refit with "
        "`riskmon fit-scorecard`). Default: the shipped riskmon/policies/scorecard.json.",
    )
    batch_size: int = Field(500, ge=1, description="Max events per agent batch (`stream.take_events`).")
    merge_buffer_max: int = Field(
        200_000, ge=1, description="Most events held in a worker's event-time merge buffer (across "
        "topics); beyond it the oldest is applied without waiting for slower partitions."
    )
    batch_within_s: float = Field(
        0.01, gt=0, description="Max seconds to wait while filling a batch. Below capacity it adds to every "
        "event's latency (p50 at 1k/s: ~30 ms at 0.01, ~60 ms at 0.05); under a backlog a take is held "
        "until a full batch is in, so a short window no longer means small batches (docs/performance.md).",
    )
    producer_linger_ms: int = Field(
        0, ge=0, description="Producer linger of a worker's outputs. 0: a batch's outputs are queued before "
        "the worker waits for their acks, so they leave in one request anyway and any linger only adds "
        "latency (docs/performance.md).",
    )
    fetch_min_bytes: int = Field(
        1, ge=1, description="Bytes the broker should have for a worker's fetch before it answers (Kafka's "
        "fetch.min.bytes; Faust leaves it at 1 and does not expose it). 1: answer as soon as anything is in. "
        "On a trickling stream that means a fetch per few records, each encoded and decoded in Python: at 1k "
        "events/s, 1048576 with RISKMON_FETCH_MAX_WAIT_MS=20 halved a worker's CPU (~0.68 -> ~0.34 core) for "
        "up to 20 ms more latency; near capacity it changed nothing (streams/fetch_limits.py, "
        "docs/performance.md).",
    )
    fetch_max_wait_ms: int = Field(
        1500, ge=1, le=60_000, description="Most ms the broker holds a worker's fetch waiting for "
        "RISKMON_FETCH_MIN_BYTES (Kafka's fetch.max.wait.ms; Faust's 1500 by default). Only used when "
        "RISKMON_FETCH_MIN_BYTES is above 1; then it is the latency a quiet stream pays per fetch.",
    )
    allowed_lateness_s: int = Field(
        21600,
        ge=0,
        description="Timeline watermark = latest applied event time minus this many seconds. Collection "
        "steps, cures and label resolution fire only when it passes them; events later than this may be "
        "judged without them.",
    )
    dedup_window_days: int = Field(
        45, ge=1, description="How long (event time) applied event ids are remembered per subject."
    )
    state_ttl_days: int = Field(
        400, ge=1, description="TTL of per-user / per-enterprise state and feature keys in Redis."
    )
    state_cache_mb: int = Field(
        384, ge=1, description="Memory budget of a worker's cache of account states (MiB, estimated from "
        "state blob sizes). Least recently used states beyond it are evicted and read from Redis again at "
        "their next event: the bound that keeps a worker under 1 GB however many users it owns "
        "(docs/performance.md). Raise it to trade memory for fewer Redis reads.",
    )
    ews_cache_mb: int = Field(
        128, ge=1, description="Memory budget of a worker's cache of enterprise EWS states (MiB, estimated "
        "from their stored size, ~33 KB each in memory). Least recently used ones are read from Redis again "
        "at their next metric.",
    )
    max_message_bytes: int = Field(65536, ge=1, description="Input messages larger than this are dead-lettered.")
    model_checkpoint_every: int = Field(
        200, ge=1, description="Checkpoint the online models to Redis after this many learned labels."
    )
    min_labels_for_model: int = Field(
        1000, ge=1, description="Resolved labels the champion/challenger gate needs before the learned model "
        "may take over from the scorecard (it must also rank recent labels better).",
    )
    hook_secret: str | None = Field(
        None, description="HMAC-SHA256 secret for webhook signatures. Prefer `hook_secret_file`."
    )
    hook_secret_file: Path | None = Field(None, description="File holding the webhook HMAC secret.")
    mask_customer_ids: bool = Field(
        True, description="Mask user / enterprise ids in payloads sent to external hooks."
    )
    trace_latency: bool = Field(
        False, description="Record where each purchase's latency goes in the worker (broker -> worker, "
        "merge-buffer wait, apply), the stages of each applied batch (state read, engine, publish, commit) "
        "and full GC pauses, into the Redis list rm:trace:latency; "
        "`riskmon bench` turns it on for its latency stage.",
    )
    log_level: str = Field("warn", description="Worker log level: crit|error|warn|info|debug.")
    fast_drain: bool = Field(
        True, description="Deliver each Kafka record to its stream without Faust's four asyncio tasks per "
        "message, falling back to Faust's own wait only when a delivery blocks (streams/fast_drain.py): "
        "63 -> 27 µs of CPU per message in Faust's consume path. `0` runs Faust's loop unchanged.",
    )
    faust_fast_paths: bool = Field(
        True, description="Faust's `cython_optimizations`: its compiled stream iterator takes events already "
        "in the stream's queue without awaiting the channel (and its conductor decodes a record once for "
        "every channel of the same types). Off by default in Faust as new; here it saves 2-4 µs of CPU per "
        "message in a decode-only consumer and 7-9 µs in the full worker (docs/performance.md, session 7). "
        "`0` keeps Faust's released paths.",
    )
    event_loop: Literal["uvloop", "asyncio"] = Field(
        "uvloop", description="Event loop of worker processes: `uvloop` (libuv, 10-15 % less CPU per message "
        "in Faust's consume path, docs/performance.md) or the standard library's `asyncio`.",
    )
    accel: bool = Field(
        True, description="Run the compiled (Cython) build of the hot modules when it is current (`riskmon "
        "accel build`; same results, ~10-15 % less worker CPU per message). Read from the environment once, when "
        "riskmon is imported (it decides which code runs, so it cannot come from a settings object). "
        "0: pure Python, e.g. for py-spy profiles of riskmon's own lines.",
    )
    accel_dir: Path | None = Field(
        None, description="Where `riskmon accel build` writes, and processes read, the compiled modules "
        "(a subdirectory per Python version). Default: `.accel/` next to the sources. Read at import, "
        "like RISKMON_ACCEL.",
    )

    @property
    def clickhouse(self) -> str:
        """The effective ClickHouse DSN (in-process engine under var/ by default)."""
        return self.clickhouse_dsn or f"chdb://{self.var_dir / 'clickhouse'}"

    @property
    def policy_path(self) -> Path:
        """The effective policy file path."""
        return self.policy_file or Path(__file__).resolve().parent / "policies" / "default.yaml"

    @property
    def scorecard_path(self) -> Path:
        """The effective scorecard file path."""
        return self.scorecard_file or Path(__file__).resolve().parent / "policies" / "scorecard.json"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings; tests build their own ``Settings(...)`` instead of using this."""
    return Settings()
