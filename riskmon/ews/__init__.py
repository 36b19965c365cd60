"""Enterprise early warning (EWS): business metrics in, alerts and health grades out.

Public API:

- :class:`EwsService` - the Redis-backed service the Faust agent on ``business-metrics`` calls.
- :class:`EnterpriseMonitor` / :class:`EnterpriseState` - the broker-free core.
- :func:`evaluate_ews` - scores alerts against simulator truth.
- :func:`run_offline` - the core over a list of messages in memory.

See ``docs/early-warning.md`` for signals, thresholds and measured results.
"""

from riskmon.ews.evaluate import evaluate_ews
from riskmon.ews.monitor import EWS_ALERT_KINDS, EnterpriseMonitor, EnterpriseState
from riskmon.ews.offline import run_offline
from riskmon.ews.service import EwsService
from riskmon.ews.thresholds import DEFAULTS, EwsPolicy, EwsPolicyError

__all__ = [
    "DEFAULTS",
    "EWS_ALERT_KINDS",
    "EnterpriseMonitor",
    "EnterpriseState",
    "EwsPolicy",
    "EwsPolicyError",
    "EwsService",
    "evaluate_ews",
    "run_offline",
]
