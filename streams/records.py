"""The records that travel on riskmon's topics.

Input records are the typed events of :mod:`riskmon.contract` (decoded from raw bytes at the edge);
output records are built by :mod:`riskmon.outputs`. This module names them in one place for readers of
the streaming layer.
"""

from riskmon.contract import Account, BusinessMetric, Purchase, Rejected, Repayment
from riskmon.outputs import OUTPUT_TOPICS

__all__ = ["Account", "BusinessMetric", "OUTPUT_TOPICS", "Purchase", "Rejected", "Repayment"]
