"""Run the EWS core over a stream of metric messages in memory (no broker, no Redis).

Why: the evaluation targets are checked by driving the same :class:`EnterpriseMonitor` the service uses
over simulator output, so tuning a threshold and re-measuring takes seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from riskmon.contract import TOPIC_METRICS, BusinessMetric, Rejected, decode
from riskmon.ews.monitor import EnterpriseMonitor, EnterpriseState
from riskmon.ews.thresholds import EwsPolicy
from riskmon.outputs import TOPIC_ALERTS


def run_offline(messages: Iterable[tuple[int, dict[str, Any]]], policy: EwsPolicy | dict | None = None,
                ) -> tuple[list[dict], list[dict], dict[str, EnterpriseState]]:
    """Apply ``(ts_ms, business-metrics message)`` pairs in order; returns (alerts, health, states)."""
    monitor = EnterpriseMonitor(policy)
    states: dict[str, EnterpriseState] = {}
    alerts: list[dict] = []
    health: list[dict] = []
    for _, msg in messages:
        ev = decode(TOPIC_METRICS, orjson.dumps(msg))
        if isinstance(ev, Rejected) or not isinstance(ev, BusinessMetric):
            continue
        st = states.get(ev.enterprise_id)
        if st is None:
            st = states[ev.enterprise_id] = monitor.new_state(ev.enterprise_id, ev.industry)
        for topic, _, record in monitor.apply(st, ev):
            (alerts if topic == TOPIC_ALERTS else health).append(record)
    return alerts, health, states
