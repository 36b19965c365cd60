"""Issue 7: two workers, one of them SIGKILLed three times mid-stream, on real Apache Kafka and Redis.

What must hold after the stream drains (docs/reliability.md says why each holds):
- every account's ledger equals the simulator's ground truth to the fen;
- ``rm:stats events_valid`` equals the truth's valid user events: duplicates (injected, and re-deliveries
  of batches whose offsets the killed worker never committed) are never applied twice;
- the consumer group's lag is 0;
- no dedup_key reached the real webhook receiver twice without a retry/redelivery flag;
- a restarted worker continues from the model checkpoint instead of learning from 0 again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from riskmon.config import Settings
from riskmon.replay import produce_file
from riskmon.services.stack import Stack
from simulator import SimConfig, write_jsonl
from tests.integration.test_faults_rig import (
    HOOK_SECRET,
    HookReceiver,
    Pipeline,
    duplicate_user_events,
    fast_hooks_policy,
    ledger_outstanding,
    model_checkpoint_labels,
    truth_mismatches,
    valid_user_events,
    wait_for,
)

pytestmark = pytest.mark.integration

KILL_AT = (0.45, 0.62, 0.78)  # share of the valid events applied when the next SIGKILL lands


def run_kill9(tmp: Path, s: Settings, sim: SimConfig, min_valid: int) -> dict[str, Any]:
    src, truth_path = tmp / "in.jsonl", tmp / "truth.json"
    write_jsonl(sim, src, truth_path)
    truth = orjson.loads(truth_path.read_bytes())
    n_valid = valid_user_events(truth)
    assert n_valid >= min_valid
    assert duplicate_user_events(truth) > 0 and truth["counts"]["bad"] > 0

    receiver = HookReceiver().start()
    stack = Stack(s, broker=s.broker_url, log=None)
    stack.start()  # external broker + the session redis-server: starts nothing
    redis.Redis.from_url(stack.redis_url).flushall()
    pipe = Pipeline(stack, s, tmp / "logs", extra_env={
        "RISKMON_POLICY_FILE": str(fast_hooks_policy(tmp)),
        "RISKMON_HOOK_EVENTS_WEBHOOK_URL": receiver.url,
        "RISKMON_HOOK_SECRET": HOOK_SECRET,
        "RISKMON_MODEL_CHECKPOINT_EVERY": "50",
    })
    kills: list[dict[str, float | int | str]] = []
    try:
        pipe.start_worker(0)
        pipe.start_worker(1)
        produce_file(src, stack.bootstrap, prefix=pipe.prefix)
        for share in KILL_AT:
            target = int(share * n_valid)
            wait_for(lambda t=target: pipe.stats().get("events_valid", 0) >= t, f"{target} valid events applied",
                     600, pipe.check_alive)
            pipe.kill9(1)
            before = model_checkpoint_labels(pipe.redis_url)
            applied_at_kill = pipe.stats().get("events_valid", 0)
            p = pipe.start_worker(1)
            inc = pipe.incarnations[1]
            wait_for(lambda i=inc: pipe.restored_labels(1, i) is not None, "the restarted worker restored its models",
                     300, pipe.check_alive)
            wait_for(lambda a=applied_at_kill: pipe.stats().get("events_valid", 0) > a, "progress after the restart",
                     300, pipe.check_alive)
            kills.append({"checkpoint_before": before, "restored": pipe.restored_labels(1, inc) or 0,
                          "pid": p.pid, "applied_at_kill": applied_at_kill})
        pipe.drain()
        stats = pipe.stats()
        outstanding = ledger_outstanding(pipe.redis_url)
        lag = pipe.lag()
        resets = pipe.offset_resets()
        # the hook deliveries of the last alerts may still be in flight: let the dispatchers finish
        alerts = {a["dedup_key"] for a in pipe.read_topic("alerts")}
        wait_for(lambda: len({h.dedup_key for h in receiver.hits}) >= 1, "hook deliveries", 120)
    finally:
        pipe.stop()
        receiver.stop()
        stack.stop()

    print("kill9 summary", {"n_valid": n_valid, "stats": stats, "hook_hits": len(receiver.hits),
                            "alerts": len(alerts), "kills": kills,
                            "ledger_mismatches": len(truth_mismatches(truth, outstanding))})
    return {"truth": truth, "n_valid": n_valid, "stats": stats, "outstanding": outstanding, "lag": lag,
            "receiver": receiver, "alerts": alerts, "kills": kills, "offset_resets": resets}


@pytest.fixture(scope="module")
def kill9(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> dict[str, Any]:
    """One run of the CI-sized scenario; the tests below check its outcome."""
    from tests.conftest import _settings  # noqa: PLC0415 - the shared factory, module scope

    tmp = tmp_path_factory.mktemp("kill9")
    s = _settings(tmp, broker_url="kafka://" + request.getfixturevalue("kafka_bootstrap"),
                  redis_url=request.getfixturevalue("redis_url"), partitions=6, app_id="unused")
    return run_kill9(tmp, s, SimConfig(days=120, users=1500, enterprises=0, seed=17), min_valid=50_000)


def check_counts(run: dict[str, Any]) -> None:
    stats, truth = run["stats"], run["truth"]
    assert run["lag"] == 0
    assert run["offset_resets"] == 0  # a restarted worker resumed at its committed offsets
    assert stats["events_valid"] == run["n_valid"]  # nothing lost, nothing applied twice
    assert stats["duplicates"] >= duplicate_user_events(truth)  # injected ones + redeliveries after the kills
    assert stats["dead_letters"] >= truth["counts"]["bad"]


def check_hooks(run: dict[str, Any]) -> None:
    receiver = run["receiver"]
    assert receiver.hits, "the webhook receiver got nothing"
    assert receiver.unflagged_repeats() == {}  # at most once per dedup_key; a repeat is only a flagged resend
    assert len({h.dedup_key for h in receiver.hits}) <= len(run["alerts"])


def check_model(run: dict[str, Any]) -> None:
    # a restarted worker loads the checkpoint instead of starting from 0 labels. (Both workers
    # checkpoint the same key, so it restores the newest checkpoint of either worker: docs/reliability.md,
    # "Known limits"; the restored count is therefore not compared with one worker's own count.)
    kills = run["kills"]
    for k in kills:
        if k["checkpoint_before"]:
            assert k["restored"] >= 1, f"restarted worker learned from 0 again: {k}"
    assert sum(1 for k in kills if k["checkpoint_before"]) >= 2, f"too few kills after a checkpoint: {kills}"


def check_ledger(run: dict[str, Any]) -> None:
    bad = truth_mismatches(run["truth"], run["outstanding"])
    assert bad == {}, f"{len(bad)} accounts differ from the truth (ours, truth): {dict(list(bad.items())[:10])}"


def test_kill9_counts_and_lag(kill9: dict[str, Any]) -> None:
    check_counts(kill9)


def test_kill9_hooks_at_most_once(kill9: dict[str, Any]) -> None:
    check_hooks(kill9)


def test_kill9_model_continues_from_checkpoint(kill9: dict[str, Any]) -> None:
    check_model(kill9)


def test_kill9_ledger_equals_truth(kill9: dict[str, Any]) -> None:
    check_ledger(kill9)


@pytest.mark.slow
def test_kill9_two_workers_200k_events(tmp_path: Path, settings) -> None:  # noqa: ANN001
    run = run_kill9(tmp_path, settings(broker="apache", clickhouse=False, partitions=6),
                    SimConfig(days=120, users=5800, enterprises=0, seed=23), min_valid=200_000)
    for check in (check_counts, check_hooks, check_model, check_ledger):
        check(run)
