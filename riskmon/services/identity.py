"""Which broker answers at a bootstrap address: Apache Kafka or Tansu?

Why: both speak the Kafka protocol, so a test that must run against real Apache Kafka could silently
pass against Tansu (or the reverse) when an environment variable points elsewhere. The answer comes
from the broker itself: the cluster id and DescribeCluster's ``is_fenced`` field (Apache Kafka 4.x
answers DescribeCluster v2 with it; Tansu does not, and reports the id ``tansu_cluster``), plus the
protocol version kafka-python infers from ApiVersions.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from riskmon.services.tansu import TANSU_CLUSTER_ID


@dataclass(frozen=True)
class BrokerIdentity:
    """What the broker at a bootstrap address says about itself."""

    kind: str  # "apache" | "tansu" | "unknown"
    cluster_id: str | None
    api_version: tuple[int, ...]  # the Kafka release whose APIs the broker speaks, e.g. (4, 1)
    broker_ids: tuple[int, ...]


def identify_broker(bootstrap: str, *, timeout_ms: int = 10_000) -> BrokerIdentity:
    """Ask the broker at ``bootstrap`` ("host:port") who it is."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms,
                             bootstrap_timeout_ms=timeout_ms, client_id="riskmon-identify")
    try:
        cluster = admin.describe_cluster()
        version = tuple(admin._client.check_version())  # the ApiVersions answer, as a release number
    finally:
        with contextlib.suppress(Exception):
            admin.close()
    brokers = cluster.get("brokers") or []
    return BrokerIdentity(kind=classify(cluster.get("cluster_id"), version, brokers),
                          cluster_id=cluster.get("cluster_id"), api_version=version,
                          broker_ids=tuple(int(b["broker_id"]) for b in brokers))


def classify(cluster_id: str | None, api_version: tuple[int, ...], brokers: list[dict]) -> str:
    """``"tansu"``, ``"apache"`` or ``"unknown"`` from a DescribeCluster answer and the protocol version."""
    if cluster_id == TANSU_CLUSTER_ID:
        return "tansu"
    if api_version >= (4, 0) and brokers and all("is_fenced" in b for b in brokers):
        return "apache"
    return "unknown"
