"""The ``hooks:`` policy section: destinations, routes and masking, resolved against the environment.

Why a separate loader: URLs and secrets differ per deployment and must never sit in the policy file,
while routes are policy that operators review. So the YAML names *where* to find a URL or secret (an
env var or a file) and this module resolves them once at start. A destination whose URL (or required
secret) is missing is *disabled* with one warning instead of failing the worker: a dev box without a
PagerDuty key must still run.

Routing: every route whose ``kinds`` (list of names or globs) matches the alert kind, whose
``min_severity`` is met and whose optional ``subject_types`` contains the subject type contributes its
``to`` destinations (union, in route order); a route with ``stop: true`` ends the evaluation when it
matched. ``cured`` alerts are additionally sent to every PagerDuty / Alertmanager destination, where
they resolve the pages named in ``details.resolves`` that this destination actually delivered.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from riskmon.config import Settings
from riskmon.outputs import SEVERITIES
from sinks.hooks.masking import DEFAULT_ID_FIELDS, Masker

log = logging.getLogger("riskmon.hooks")

DEST_TYPES = ("webhook", "slack", "pagerduty", "alertmanager")
RESOLVING_TYPES = frozenset({"pagerduty", "alertmanager"})
CURED_KIND = "cured"
_SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
# keys that would put a secret into the policy file itself; rejected so secrets cannot be committed
_INLINE_SECRET_KEYS = frozenset({"secret", "routing_key", "token", "bearer_token", "password", "api_key"})

DEFAULT_OPTIONS: dict[str, Any] = {
    "timeout_s": 5.0,  # per HTTP attempt
    "max_attempts": 8,  # then dead-letter
    "backoff_base_s": 0.5,  # full-jitter exponential backoff: sleep U(0, min(max, base * 2**(n-1)))
    "backoff_max_s": 60.0,
    "rate_per_s": 5.0,  # token bucket refill rate per destination
    "burst": 10,  # token bucket capacity
    "queue_size": 10_000,  # bounded per-destination queue; overflow is dead-lettered
    "dedup_ttl_days": 30,  # how long delivered dedup keys are remembered
    "retry_after_max_s": 120.0,  # cap on a receiver's Retry-After
    "source": "riskmon",  # PagerDuty payload.source / Alertmanager label
    "generator_url": "",  # Alertmanager generatorURL / PagerDuty client_url
    "firing_ttl_s": 86_400,  # Alertmanager endsAt of a firing alert = send time + this (0: omit)
}


class HookConfigError(ValueError):
    """The ``hooks:`` policy section is malformed (unknown type, unknown destination, inline secret)."""


@dataclass(frozen=True)
class Destination:
    """One resolved delivery target. ``url``/secrets are resolved values; never log them."""

    name: str
    type: str
    url: str | None
    enabled: bool
    disabled_reason: str | None
    options: dict[str, Any]
    secret: bytes | None = field(default=None, repr=False)  # HMAC signing secret
    routing_key: str | None = field(default=None, repr=False)  # PagerDuty integration key
    bearer_token: str | None = field(default=None, repr=False)  # Authorization: Bearer (optional)
    url_source: str = ""  # where the URL came from (for `hooks list`), e.g. "env RISKMON_HOOK_X_URL"

    def opt(self, key: str) -> Any:
        """An option of this destination, falling back to the section defaults."""
        return self.options.get(key, DEFAULT_OPTIONS.get(key))

    @property
    def safe_url(self) -> str:
        """Scheme + host + port only: URLs of Slack and webhook receivers embed tokens."""
        if not self.url:
            return "-"
        m = re.match(r"^([a-z][a-z0-9+.-]*://)(?:[^@/]*@)?([^/?#]*)", self.url, re.I)
        return f"{m.group(1)}{m.group(2)}/…" if m else "<invalid url>"


@dataclass(frozen=True)
class Route:
    """Alerts of ``kinds`` with at least ``min_severity`` go to ``to``."""

    name: str
    kinds: tuple[str, ...]
    min_severity: str
    to: tuple[str, ...]
    subject_types: tuple[str, ...] | None = None
    stop: bool = False

    def matches(self, alert: Mapping[str, Any]) -> bool:
        """Whether this route applies to ``alert``."""
        kind = str(alert.get("kind", ""))
        if not any(fnmatch.fnmatchcase(kind, pat) for pat in self.kinds):
            return False
        if _SEVERITY_RANK.get(str(alert.get("severity")), -1) < _SEVERITY_RANK[self.min_severity]:
            return False
        return not (self.subject_types is not None and alert.get("subject_type") not in self.subject_types)


@dataclass(frozen=True)
class HookConfig:
    """Everything the dispatcher and the CLI need from the policy, resolved."""

    destinations: dict[str, Destination]
    routes: tuple[Route, ...]
    masker: Masker
    warnings: tuple[str, ...] = ()

    def route(self, alert: Mapping[str, Any]) -> list[str]:
        """Names of the *enabled* destinations ``alert`` goes to, in route order, without repeats."""
        names: list[str] = []
        for r in self.routes:
            if r.matches(alert):
                names.extend(n for n in r.to if n not in names)
                if r.stop:
                    break
        if alert.get("kind") == CURED_KIND:
            names.extend(n for n, d in self.destinations.items() if d.type in RESOLVING_TYPES and n not in names)
        return [n for n in names if self.destinations[n].enabled]


def env_name(dest_name: str, suffix: str) -> str:
    """``RISKMON_HOOK_<NAME>_<SUFFIX>`` with the name upper-cased and non-alphanumerics as ``_``.

    >>> env_name("collections-oncall", "URL")
    'RISKMON_HOOK_COLLECTIONS_ONCALL_URL'
    """
    return f"RISKMON_HOOK_{re.sub(r'[^A-Za-z0-9]', '_', dest_name).upper()}_{suffix}"


def _read_secret(env: Mapping[str, str], env_var: str | None, file: str | Path | None) -> str | None:
    if env_var and env.get(env_var):
        return env[env_var].strip()
    if file:
        p = Path(file).expanduser()
        if p.is_file():
            return p.read_text().strip() or None
    return None


def _as_tuple(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise HookConfigError(f"{what}: must be a string or a list of strings")


def hooks_section(policy: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``hooks`` section of a whole policy document (or the section itself)."""
    if not policy:
        return {}
    if "hooks" in policy:
        return dict(policy.get("hooks") or {})
    return dict(policy)


def load_hook_config(
    settings: Settings, policy: Mapping[str, Any] | None, env: Mapping[str, str] | None = None
) -> HookConfig:
    """Resolve the ``hooks`` section against ``env`` (default ``os.environ``) and ``settings``."""
    env = os.environ if env is None else env
    section = hooks_section(policy)
    warnings: list[str] = []
    defaults = {**DEFAULT_OPTIONS, **(section.get("defaults") or {})}
    unknown = set(defaults) - set(DEFAULT_OPTIONS)
    if unknown:
        raise HookConfigError(f"hooks.defaults: unknown option(s) {sorted(unknown)}")

    global_secret = settings.hook_secret
    if not global_secret and settings.hook_secret_file and Path(settings.hook_secret_file).is_file():
        global_secret = Path(settings.hook_secret_file).read_text().strip() or None

    masking = section.get("masking") or {}
    mode = masking.get("mode", "hmac") if settings.mask_customer_ids else "none"
    mask_key = _read_secret(env, masking.get("key_env", "RISKMON_HOOK_MASK_KEY"), masking.get("key_file"))
    key_bytes = (mask_key or "").encode()
    if not key_bytes and global_secret:
        # derive rather than reuse: a receiver holding the signing secret cannot rebuild the masks
        key_bytes = hmac.new(global_secret.encode(), b"riskmon-mask-v1", hashlib.sha256).digest()
    try:
        masker = Masker(mode, key_bytes, masking.get("id_fields", DEFAULT_ID_FIELDS))
    except ValueError as exc:
        raise HookConfigError(f"hooks.masking: {exc}") from None

    destinations: dict[str, Destination] = {}
    raw_dests = section.get("destinations") or {}
    if not isinstance(raw_dests, dict):
        raise HookConfigError("hooks.destinations: must be a mapping name -> destination")
    for name, raw in raw_dests.items():
        raw = dict(raw or {})
        where = f"hooks.destinations.{name}"
        inline = _INLINE_SECRET_KEYS & set(raw)
        if inline:
            raise HookConfigError(f"{where}: inline secret {sorted(inline)[0]!r}; use *_env or *_file")
        dtype = raw.pop("type", None)
        if dtype not in DEST_TYPES:
            raise HookConfigError(f"{where}.type: must be one of {', '.join(DEST_TYPES)}")
        url_env = raw.pop("url_env", env_name(name, "URL"))
        inline_url = raw.pop("url", None)
        if env.get(url_env):
            url, url_source = env[url_env].strip(), f"env {url_env}"
        elif inline_url:
            url, url_source = str(inline_url), "policy"
        else:
            url, url_source = None, f"unset (env {url_env})"
        secret = _read_secret(env, raw.pop("secret_env", env_name(name, "SECRET")), raw.pop("secret_file", None))
        secret = secret or global_secret
        routing_key = _read_secret(
            env, raw.pop("routing_key_env", env_name(name, "ROUTING_KEY")), raw.pop("routing_key_file", None)
        )
        bearer = _read_secret(
            env, raw.pop("bearer_token_env", env_name(name, "BEARER_TOKEN")), raw.pop("bearer_token_file", None)
        )
        unknown = set(raw) - set(DEFAULT_OPTIONS)
        if unknown:
            raise HookConfigError(f"{where}: unknown option(s) {sorted(unknown)}")
        options = {**defaults, **raw}
        reason = None
        if not url:
            reason = f"URL unset ({url_env})"
        elif not re.match(r"^https?://", url):
            reason = "URL must start with http:// or https://"
        elif dtype == "pagerduty" and not routing_key:
            reason = f"PagerDuty routing key unset ({env_name(name, 'ROUTING_KEY')} or routing_key_file)"
        elif dtype == "webhook" and not secret:
            reason = "no signing secret (RISKMON_HOOK_SECRET[_FILE] or the destination's secret_env/file)"
        if reason:
            warnings.append(f"hook destination {name!r} disabled: {reason}")
        destinations[name] = Destination(
            name=name, type=dtype, url=url, enabled=reason is None, disabled_reason=reason, options=options,
            secret=secret.encode() if secret else None, routing_key=routing_key, bearer_token=bearer,
            url_source=url_source,
        )

    if mode == "hmac" and not key_bytes and any(d.enabled for d in destinations.values()):
        warnings.append(
            "hooks.masking: no masking key (RISKMON_HOOK_MASK_KEY / hook secret): ids are hashed unkeyed, "
            "which can be reversed by enumerating ids"
        )

    routes: list[Route] = []
    for i, raw in enumerate(section.get("routes") or []):
        where = f"hooks.routes[{i}]"
        if not isinstance(raw, dict):
            raise HookConfigError(f"{where}: must be a mapping")
        sev = raw.get("min_severity", "info")
        if sev not in _SEVERITY_RANK:
            raise HookConfigError(f"{where}.min_severity: must be one of {', '.join(SEVERITIES)}")
        to = _as_tuple(raw.get("to", ()), f"{where}.to")
        missing = [n for n in to if n not in destinations]
        if missing:
            raise HookConfigError(f"{where}.to: unknown destination {missing[0]!r}")
        subject_types = raw.get("subject_types")
        routes.append(
            Route(
                name=str(raw.get("name", f"route-{i}")),
                kinds=_as_tuple(raw.get("kinds", "*"), f"{where}.kinds"),
                min_severity=sev,
                to=to,
                subject_types=None if subject_types is None else _as_tuple(subject_types, f"{where}.subject_types"),
                stop=bool(raw.get("stop", False)),
            )
        )
    return HookConfig(destinations=destinations, routes=tuple(routes), masker=masker, warnings=tuple(warnings))


_warned: set[str] = set()


def warn_once(config: HookConfig) -> None:
    """Log each configuration warning once per process (disabled destinations are not errors)."""
    for w in config.warnings:
        if w not in _warned:
            _warned.add(w)
            log.warning(w)
