"""riskmon: real-time streaming credit-risk monitor.

The package holds the broker-free domain core (ledger, features, ladder, limits, pricing, ews, audit),
configuration, service launchers and the command line. Kafka plumbing lives in ``streams/``, models in
``online_models/``, outputs in ``sinks/``.
"""

from riskmon import accel as _accel

__version__ = "0.1.0"

_accel.install()  # compiled builds of the hot modules, when built and current (riskmon.accel)
