"""Offline evaluation of early-warning alerts against the simulator's ground truth.

Definitions (what ``riskmon evaluate`` prints):

- *warning alert*: any EWS alert except ``extension_recommended`` (which is advice, not a warning).
- *defaulter*: an enterprise whose truth has a ``default_ts``. It is *detected* when it has a warning
  alert strictly before ``default_ts``; its *lead time* is ``default_ts`` minus its first warning, in days.
- *alert-worthy*: a defaulter or a liquidity-crunch firm (``crunch_start_ts`` set). *Precision* is the
  share of enterprises with at least one warning alert that are alert-worthy, so every healthy or
  seasonal firm that gets any warning counts against it.
- *extension rates*: share of crunch firms with an ``extension_recommended`` alert, and share of
  structural decliners (``decline_default`` and ``shock_default``) with one before their default.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from statistics import median
from typing import Any

from riskmon.eventtime import MS_PER_DAY, parse_ts
from riskmon.ews.monitor import EWS_ALERT_KINDS

TARGETS = {
    "default_alerted_share": 0.90,
    "median_lead_days": 30.0,
    "precision": 0.60,
    "crunch_extension_rate": 0.70,
}
DECLINER_EXTENSION_MAX = 0.20
DECLINERS = ("decline_default", "shock_default")


def _ms(value: Any) -> int | None:
    if value is None:
        return None
    return int(value) if isinstance(value, int | float) else parse_ts(value)


def evaluate_ews(alerts: list[dict], truth: list[dict]) -> dict:
    """Score EWS alerts against truth; returns metrics, counts and which targets are met."""
    first_warning: dict[str, int] = {}
    extension: dict[str, int] = {}
    kinds_by_scenario: dict[str, Counter] = defaultdict(Counter)
    scenario_of = {t["enterprise_id"]: t["scenario"] for t in truth}
    for a in alerts:
        if a.get("subject_type") != "enterprise" or a.get("kind") not in EWS_ALERT_KINDS:
            continue
        ent, ts = a["subject_id"], _ms(a["ts"])
        kinds_by_scenario[scenario_of.get(ent, "unknown")][a["kind"]] += 1
        if a["kind"] == "extension_recommended":
            extension[ent] = min(extension.get(ent, ts), ts)
        else:
            first_warning[ent] = min(first_warning.get(ent, ts), ts)

    defaulters = [t for t in truth if t.get("default_ts")]
    leads: list[float] = []
    for t in defaulters:
        d = _ms(t["default_ts"])
        fw = first_warning.get(t["enterprise_id"])
        if fw is not None and fw < d:
            leads.append((d - fw) / MS_PER_DAY)
    worthy = {t["enterprise_id"] for t in truth if t.get("default_ts") or t.get("crunch_start_ts")}
    alerted = set(first_warning)
    crunch = [t for t in truth if t["scenario"] == "liquidity_crunch"]
    decliners = [t for t in truth if t["scenario"] in DECLINERS]
    decliner_ext = [t for t in decliners if t["enterprise_id"] in extension
                    and (not t.get("default_ts") or extension[t["enterprise_id"]] < _ms(t["default_ts"]))]
    quiet = [t for t in truth if t["scenario"] in ("healthy", "seasonal")]

    def share(num: int, den: int) -> float | None:
        return round(num / den, 4) if den else None

    result: dict[str, Any] = {
        "enterprises": len(truth),
        "defaulters": len(defaulters),
        "default_alerted_share": share(len(leads), len(defaulters)),
        "median_lead_days": round(median(leads), 1) if leads else None,
        "lead_days_p25": round(sorted(leads)[len(leads) // 4], 1) if leads else None,
        "alerted_enterprises": len(alerted),
        "precision": share(len(alerted & worthy), len(alerted)),
        "false_alarm_rate_healthy_seasonal": share(sum(t["enterprise_id"] in alerted for t in quiet), len(quiet)),
        "crunch_alerted_share": share(sum(t["enterprise_id"] in alerted for t in crunch), len(crunch)),
        "crunch_extension_rate": share(sum(t["enterprise_id"] in extension for t in crunch), len(crunch)),
        "decliner_extension_rate": share(len(decliner_ext), len(decliners)),
        "alerts_by_scenario": {s: dict(c) for s, c in sorted(kinds_by_scenario.items())},
    }
    met = {k: result[k] is not None and result[k] >= v for k, v in TARGETS.items()}
    met["decliner_extension_rate"] = (result["decliner_extension_rate"] is not None
                                      and result["decliner_extension_rate"] < DECLINER_EXTENSION_MAX)
    result["targets_met"] = met
    result["all_targets_met"] = all(met.values())
    return result
