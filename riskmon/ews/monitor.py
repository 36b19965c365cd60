"""The broker-free EWS core: one enterprise's state plus the logic that turns a metric into outputs.

Why per-event evaluation: a business metric is the only clock an enterprise has. Each event updates its
metric's daily bucket, the seasonal profile and drift detector, re-evaluates that metric's covenant, the
cross-metric liquidity test and the health grade, and emits alerts stamped with the event's own time -
so a replay at any speed gives the same alerts, and the Faust agent stays a thin loop.

Idempotency: processed event ids are remembered (for ``dedup_window_days`` of event time) inside the
state itself, so state and "already applied" are saved atomically together. Events older than that
window cannot be told apart from duplicates and are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from riskmon.contract import BusinessMetric
from riskmon.eventtime import MS_PER_DAY
from riskmon.ews import covenants, extension
from riskmon.ews.detectors import ChangeAnomaly, MetricDrift
from riskmon.ews.health import health_score, recommendation
from riskmon.ews.peers import PeerBoard
from riskmon.ews.seasonality import SeasonalProfile
from riskmon.ews.series import DailySeries
from riskmon.ews.thresholds import EwsPolicy
from riskmon.outputs import TOPIC_ALERTS, TOPIC_ENTERPRISE_HEALTH, alert, enterprise_health

Output = tuple[str, str, dict[str, Any]]

METRIC_ORDER = ("revenue", "order_count", "payroll", "receivables_days", "cash_balance")
ADVERSE = {"revenue": "down", "order_count": "down", "payroll": "down", "receivables_days": "up",
           "cash_balance": "down"}
STRUCTURAL = frozenset({"revenue_drop", "order_drop", "payroll_drop", "drift_revenue", "drift_order_count",
                        "drift_payroll"})
KIND = {
    "revenue_drop": ("ews_revenue_drop", "high"),
    "cash_runway": ("ews_cash_runway", "high"),
    "receivables_stretch": ("ews_receivables_stretch", "warning"),
    "payroll_drop": ("ews_payroll_drop", "high"),
    "order_drop": ("ews_order_drop", "warning"),
    "anomaly": ("ews_anomaly", "warning"),
    "watchlist": ("watchlist_added", "high"),
    "extension": ("extension_recommended", "info"),
}
EWS_ALERT_KINDS = frozenset({k for k, _ in KIND.values()} | {"ews_drift"})


@dataclass(slots=True)
class SignalState:
    """One signal of one enterprise: open/closed with episode counter (the alert dedup unit)."""

    open: bool = False
    episode: int = 0
    opened_day: int = -1
    last_true_day: int = -1


@dataclass(slots=True)
class EnterpriseState:
    """Everything the core remembers about one enterprise (pickled into Redis by the service)."""

    enterprise_id: str
    industry: str
    raw: dict[str, DailySeries]
    flat: dict[str, DailySeries]
    profiles: dict[str, SeasonalProfile]
    drift: dict[str, MetricDrift]
    anomaly: ChangeAnomaly
    signals: dict[str, SignalState] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)
    max_day: int = -1
    day_changes: dict[int, dict[str, float]] = field(default_factory=dict)
    last_structural_day: int | None = None
    last_runway: float | None = None
    anomaly_run: int = 0
    revenue_ratio: float = float("nan")
    revenue_slope: float = float("nan")
    anomaly_score: float | None = None
    health: dict[str, Any] | None = None
    events: int = 0

    def open_signals(self) -> list[str]:
        """Names of the signals currently open (excluding the derived watchlist/extension)."""
        return sorted(n for n, s in self.signals.items() if s.open and n not in ("watchlist", "extension"))


class EnterpriseMonitor:
    """Applies business metrics to enterprise states; pure apart from the shared :class:`PeerBoard`."""

    def __init__(self, policy: EwsPolicy | dict[str, Any] | None = None, peers: PeerBoard | None = None) -> None:
        self.policy = policy if isinstance(policy, EwsPolicy) else EwsPolicy.from_dict(policy)
        self.peers = peers if peers is not None else PeerBoard(self.policy.peer_stale_days)

    # ---- state -------------------------------------------------------------------------------------
    def new_state(self, enterprise_id: str, industry: str) -> EnterpriseState:
        """A fresh state for an enterprise seen for the first time."""
        p = self.policy
        # METRIC_ORDER, not the METRICS set: a set's order changes with the process's hash seed, and the
        # state (and anything that walks its dicts) must be the same in every process
        raw = {m: DailySeries(p.retention_days) for m in METRIC_ORDER}
        flat = {m: (DailySeries(p.retention_days) if m in p.seasonal_metrics else raw[m]) for m in METRIC_ORDER}
        return EnterpriseState(
            enterprise_id=enterprise_id,
            industry=industry,
            raw=raw,
            flat=flat,
            profiles={m: SeasonalProfile(p.month_phases, p.season_alpha) for m in p.seasonal_metrics},
            drift={m: MetricDrift(ADVERSE[m], p.warmup_days, p.drift_delta, p.drift_threshold, p.drift_min_sigma)
                   for m in p.drift_metrics},
            anomaly=ChangeAnomaly(METRIC_ORDER, p.anomaly_warmup_days, p.anomaly_trees, p.anomaly_height,
                                  p.anomaly_window, p.anomaly_seed),
        )

    # ---- main entry --------------------------------------------------------------------------------
    def apply(self, state: EnterpriseState, ev: BusinessMetric) -> list[Output]:
        """Apply one metric event; returns the alerts and health change it causes (maybe none)."""
        p = self.policy
        if ev.event_id in state.seen:
            return []
        day = ev.ts // MS_PER_DAY
        if state.max_day >= 0 and day < state.max_day - p.dedup_window_days:
            return []  # older than the idempotency window: cannot be told from a duplicate
        state.seen[ev.event_id] = day
        state.events += 1
        if day > state.max_day:
            state.max_day = day
            cutoff = day - p.dedup_window_days
            if len(state.seen) > 8 * p.dedup_window_days:
                state.seen = {e: d for e, d in state.seen.items() if d >= cutoff}
            state.day_changes = {d: c for d, c in state.day_changes.items() if d >= day - 3}
        if ev.industry != state.industry:
            state.industry = ev.industry

        out: list[Output] = []
        m = ev.metric
        raw = state.raw[m]
        was_last = raw.last_day
        if not raw.put(day, ev.value):
            return []
        new_day = was_last is None or day > was_last
        flat_value = ev.value
        if m in state.profiles:
            level = raw.mean(day - 1, p.short_baseline_days, min_count=7)
            prof = state.profiles[m]
            flat_value = prof.deseasonalise(day, ev.value)
            if new_day and level == level:
                prof.learn(day, ev.value, level)
            state.flat[m].put(day, flat_value)

        if new_day and m in state.drift and state.drift[m].update(flat_value):
            det = state.drift[m]
            cur = state.flat[m].mean(day, p.current_days, min_count=1)
            out += self._signal(state, f"drift_{m}", True, day, ev, {
                "metric": m,
                "baseline": round(det.ref, 4),
                "current": round(cur, 4),
                "change_pct": round((cur / det.ref - 1) * 100, 2) if det.ref else 0.0,
                "noise_sigma": round(det.sigma, 4),
                "detector": f"river.drift.PageHinkley(mode={det.direction})",
            })
        elif f"drift_{m}" in state.signals:
            out += self._signal(state, f"drift_{m}", False, day, ev, None, clear_days=p.drift_hold_days)

        out += self._covenant(state, m, day, ev)

        change = self._weekly_change(state, m, day)
        if new_day and change is not None:
            changes = state.day_changes.setdefault(day, {})
            changes[m] = change
            if len(changes) == len(METRIC_ORDER):
                score = state.anomaly.observe(changes)
                del state.day_changes[day]
                if score is not None:
                    state.anomaly_score = score
                    state.anomaly_run = state.anomaly_run + 1 if score >= p.anomaly_threshold else 0
                    ev_anom = {"metric": "all", "baseline": None, "current": None, "change_pct": None,
                               "score": round(score, 4), "changes": {k: round(v, 4) for k, v in changes.items()},
                               "detector": "river.anomaly.HalfSpaceTrees"}
                    out += self._signal(state, "anomaly", state.anomaly_run >= p.anomaly_persist_days, day, ev,
                                        ev_anom)

        if m in ("cash_balance", "revenue", "order_count", "payroll"):
            out += self._extension(state, day, ev)
        out += self._health(state, day, ev)
        return out

    # ---- pieces ------------------------------------------------------------------------------------
    def _weekly_change(self, state: EnterpriseState, m: str, day: int) -> float | None:
        """The anomaly feature of a metric: this week vs the 28 days before (cash: vs its own level)."""
        p = self.policy
        series = state.flat[m]
        if m == "cash_balance":
            now, before = series.mean(day, 3, 2), series.mean(day - p.current_days, 3, 2)
            level = series.mean(day - p.current_days, p.short_baseline_days, 7)
            if now != now or before != before or level != level:
                return None
            return (now - before) / max(abs(level), 1.0)
        ratio = _div(series.mean(day, p.current_days, 4),
                     series.mean(day - p.current_days, p.short_baseline_days, 7))
        return None if ratio != ratio else ratio - 1.0

    def _covenant(self, state: EnterpriseState, m: str, day: int, ev: BusinessMetric) -> list[Output]:
        p = self.policy
        if m == "revenue":
            name, check = "revenue_drop", covenants.revenue_drop(state.flat[m], day, p)
            ratio = _div(state.flat[m].mean(day, p.current_days, 4),
                         state.flat[m].mean(day - p.current_days, p.short_baseline_days, 14))
            self.peers.publish(state.industry, state.enterprise_id, day, ratio)
            state.revenue_ratio = ratio
            state.revenue_slope = (state.flat[m].slope(day, p.short_baseline_days)
                                   if state.flat[m].history_days(day) >= p.warmup_days else float("nan"))
        elif m == "order_count":
            name, check = "order_drop", covenants.order_drop(state.flat[m], day, p)
        elif m == "payroll":
            name, check = "payroll_drop", covenants.payroll_drop(state.raw[m], day, p)
        elif m == "receivables_days":
            name, check = "receivables_stretch", covenants.receivables_stretch(state.raw[m], day, p)
        else:
            name, check = "cash_runway", covenants.cash_runway(state.raw[m], day, p)
            state.last_runway = check.evidence["runway_days"] if check else None
        if check is None:
            return []
        if name in ("revenue_drop", "order_drop"):
            peer = self.peers.median(state.industry, day)
            check.evidence["peer_median_change_pct"] = None if peer is None else round((peer - 1) * 100, 2)
        return self._signal(state, name, check.active, day, ev, check.evidence)

    def _extension(self, state: EnterpriseState, day: int, ev: BusinessMetric) -> list[Output]:
        p = self.policy
        runway_sig = state.signals.get("cash_runway")
        a = extension.assess(day, p, state.flat["revenue"], state.flat["order_count"], state.raw["payroll"],
                             state.raw["cash_balance"], state.last_runway, bool(runway_sig and runway_sig.open),
                             state.last_structural_day)
        if a is None or not a.recommend:
            if "extension" in state.signals:
                return self._signal(state, "extension", False, day, ev, None)
            return []
        evidence = dict(a.evidence, suggested_extension_days=a.suggested_days, reasoning=a.reasoning,
                        baseline=None, current=None, change_pct=None)
        return self._signal(state, "extension", True, day, ev, evidence)

    def _health(self, state: EnterpriseState, day: int, ev: BusinessMetric) -> list[Output]:
        p = self.policy
        open_sigs = state.open_signals()
        peer = self.peers.median(state.industry, day)
        score = health_score(open_sigs, state.last_runway, state.revenue_slope, state.revenue_ratio, peer)
        grade = p.grade(score)
        out: list[Output] = []
        watch = grade in p.watchlist_grades
        out += self._signal(state, "watchlist", watch, day, ev, {
            "metric": "health", "baseline": None, "current": round(score, 2), "change_pct": None,
            "grade": grade, "open_signals": open_sigs, "detector": "rule:health_grade",
        })
        ext = state.signals.get("extension")
        rec = recommendation(grade, bool(ext and ext.open))
        wl_sig = state.signals.get("watchlist")
        wl = bool(wl_sig and wl_sig.open)
        prev = state.health
        if prev is None or (prev["grade"], prev["watchlist"], prev["open_signals"], prev["recommendation"]) != (
                grade, wl, sorted(open_sigs), rec):
            record = enterprise_health(ts=ev.ts, enterprise_id=state.enterprise_id, industry=state.industry,
                                       grade=grade, health_score=score / 100.0, open_signals=open_sigs,
                                       watchlist=wl, recommendation=rec)
            state.health = record
            out.append((TOPIC_ENTERPRISE_HEALTH, state.enterprise_id, record))
        return out

    def _signal(self, state: EnterpriseState, name: str, active: bool, day: int, ev: BusinessMetric,
                evidence: dict[str, Any] | None, clear_days: int | None = None) -> list[Output]:
        """Open/refresh/close a signal with hysteresis; an opening emits one alert per episode."""
        sig = state.signals.get(name)
        if sig is None:
            if not active:
                return []
            sig = state.signals[name] = SignalState()
        if active:
            if name in STRUCTURAL:
                state.last_structural_day = day
            sig.last_true_day = max(sig.last_true_day, day)
            if sig.open:
                return []
            sig.open = True
            sig.episode += 1
            sig.opened_day = day
            return [(TOPIC_ALERTS, state.enterprise_id, self._alert(state, name, sig.episode, ev, evidence or {}))]
        if sig.open and day - sig.last_true_day >= (clear_days or self.policy.clear_days):
            sig.open = False
        return []

    def _alert(self, state: EnterpriseState, name: str, episode: int, ev: BusinessMetric,
               evidence: dict[str, Any]) -> dict[str, Any]:
        if name.startswith("drift_"):
            kind, severity = "ews_drift", "warning"
        else:
            kind, severity = KIND[name]
        if name == "cash_runway" and (evidence.get("runway_days") or 0) < 10:
            severity = "critical"
        ent = state.enterprise_id
        details = {"metric": evidence.get("metric"), "baseline": evidence.get("baseline"),
                   "current": evidence.get("current"), "change_pct": evidence.get("change_pct"),
                   "detector": evidence.get("detector"), **evidence, "signal": name, "episode": episode,
                   "trigger_event_id": ev.event_id}
        return alert(ts=ev.ts, kind=kind, severity=severity, subject_type="enterprise", subject_id=ent,
                     dedup_key=f"ews:{ent}:{name}:{episode}", summary=_summary(kind, ent, evidence),
                     details=details)


def _summary(kind: str, ent: str, ev: dict[str, Any]) -> str:
    chg = ev.get("change_pct")
    if kind == "ews_cash_runway":
        return f"{ent}: cash runway {ev.get('runway_days')} days (< {ev.get('threshold_days')})"
    if kind == "extension_recommended":
        return f"{ent}: temporary liquidity stress, recommend {ev.get('suggested_extension_days')}-day extension"
    if kind == "watchlist_added":
        return f"{ent}: added to watch-list (grade {ev.get('grade')}, signals {', '.join(ev.get('open_signals', []))})"
    if kind == "ews_anomaly":
        return f"{ent}: unusual combination of daily metric changes (score {ev.get('score')})"
    if kind == "ews_drift":
        return f"{ent}: persistent adverse drift in {ev.get('metric')} ({chg}% vs warm-up level)"
    return f"{ent}: {ev.get('metric')} {chg}% vs {ev.get('baseline_days')}-day baseline"


def _div(a: float, b: float) -> float:
    """a / b, NaN when either is missing or b is not positive."""
    return a / b if a == a and b == b and b > 0 else float("nan")
