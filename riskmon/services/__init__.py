"""Local services for riskmon runs: Apache Kafka (KRaft), Tansu, redis-server, and the :class:`Stack`.

See ``stack.py`` for the entry point most callers want.
"""

from riskmon.services.identity import BrokerIdentity, identify_broker
from riskmon.services.procs import ServiceError
from riskmon.services.stack import Stack, bootstrap_of

__all__ = ["BrokerIdentity", "ServiceError", "Stack", "bootstrap_of", "identify_broker"]
