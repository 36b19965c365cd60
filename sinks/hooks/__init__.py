"""Alert hooks: route alerts to webhooks, Slack, PagerDuty and Alertmanager and deliver them reliably.

Public API::

    from sinks.hooks import HookDispatcher, verify_signature, load_hook_config

See docs/hooks.md for the policy section, payload formats and the delivery guarantee.
"""

from sinks.hooks.dispatcher import HookDispatcher, read_dead_letters
from sinks.hooks.masking import Masker
from sinks.hooks.routing import HookConfig, HookConfigError, load_hook_config
from sinks.hooks.signing import sign, verify_signature

__all__ = [
    "HookConfig",
    "HookConfigError",
    "HookDispatcher",
    "Masker",
    "load_hook_config",
    "read_dead_letters",
    "sign",
    "verify_signature",
]
