"""Enterprise business-metric traffic with ground truth, for the early-warning system.

Why these five scenarios: they are the cases a credit officer must tell apart. Healthy and seasonal
firms must stay quiet (a strong weekly and monthly cycle is not distress); gradual decline and sudden
shock end in default and must be flagged weeks before; a temporary liquidity crunch looks alarming in
the cash balance but recovers, and deserves a payment-term extension rather than a default call.

Every enterprise reports five metrics once a day (revenue and payroll in CNY per day, cash balance in
CNY, receivables days, order count). Noise is multiplicative (log-normal) on flows, an AR(1) process on
receivables days, and a random walk on cash - the rules and detectors must cope with all three. A
defaulted enterprise stops reporting. Everything is deterministic for a given seed.
"""

from __future__ import annotations

import hashlib
import math
import random
from calendar import monthrange
from datetime import UTC, datetime
from typing import Any

import orjson

from riskmon.contract import INDUSTRIES
from riskmon.eventtime import MS_PER_DAY, fmt_ts
from simulator.clock import TsFormatter

SCENARIOS = ("healthy", "seasonal", "decline_default", "shock_default", "liquidity_crunch")
DEFAULT_MIX = {"healthy": 0.40, "seasonal": 0.20, "decline_default": 0.15, "shock_default": 0.10,
               "liquidity_crunch": 0.15}
METRIC_ORDER = ("revenue", "order_count", "payroll", "receivables_days", "cash_balance")
REPORT_HOUR_MS = 20 * 3_600_000  # metrics are reported in the evening of their day


def _scenario_counts(n: int, mix: dict[str, float]) -> list[str]:
    counts = {s: int(math.floor(mix.get(s, 0.0) * n)) for s in SCENARIOS}
    order = sorted(SCENARIOS, key=lambda s: mix.get(s, 0.0) * n - counts[s], reverse=True)
    i = 0
    while sum(counts.values()) < n:
        counts[order[i % len(order)]] += 1
        i += 1
    return [s for s in SCENARIOS for _ in range(counts[s])]


def _season(rng: random.Random, strong: bool) -> tuple[float, int, float, int]:
    if strong:
        return rng.uniform(0.22, 0.32), rng.randrange(7), rng.uniform(0.20, 0.35), rng.randrange(1, 29)
    return rng.uniform(0.0, 0.06), rng.randrange(7), rng.uniform(0.0, 0.04), rng.randrange(1, 29)


def _calendar(ts_ms: int) -> tuple[int, int, int]:
    """(weekday, day of month, days in month) of an instant (UTC): what the seasonal cycle reads."""
    dt = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    return dt.weekday(), dt.day, monthrange(dt.year, dt.month)[1]


def _plan(rng: random.Random, scenario: str, days: int) -> dict[str, Any]:
    """Pick the scenario's timeline (day numbers relative to the start)."""
    plan: dict[str, Any] = {}
    if scenario == "decline_default":
        duration = rng.randint(50, 95)
        onset_hi = max(36, days - duration - 3)
        plan["onset"] = rng.randint(min(35, onset_hi), onset_hi)
        plan["default"] = plan["onset"] + duration
    elif scenario == "shock_default":
        duration = rng.randint(30, 75)
        onset_hi = max(36, days - duration - 3)
        plan["onset"] = rng.randint(min(35, onset_hi), onset_hi)
        plan["default"] = plan["onset"] + duration
        plan["shock_depth"] = rng.uniform(0.40, 0.62)  # revenue falls to this share
    elif scenario == "liquidity_crunch":
        fall, hold, recover = rng.randint(5, 12), rng.randint(14, 35), rng.randint(10, 21)
        onset_hi = max(41, days - fall - hold - recover - 5)
        plan["onset"] = rng.randint(min(40, onset_hi), onset_hi)
        plan["fall"], plan["hold"], plan["recover"] = fall, hold, recover
        plan["depth"] = rng.uniform(0.55, 0.85)  # share of cash that drains away
        plan["dso_stretch"] = rng.uniform(0.05, 0.30)
        plan["end"] = plan["onset"] + fall + hold + recover
    return plan


def _same(value: dict) -> dict:
    return value


_NO_FACTORS = (1.0, 1.0, 1.0, 1.0, 1.0)


def _factors(scenario: str, plan: dict[str, Any], d: int) -> tuple[float, float, float, float, float]:
    """(revenue, orders, payroll, receivables-days, cash) multipliers on day ``d``."""
    if scenario == "decline_default":
        p = min(max((d - plan["onset"]) / (plan["default"] - plan["onset"]), 0.0), 1.0)
        payroll = 1.0 - (0.10 if p >= 0.45 else 0.0) - (0.20 if p >= 0.75 else 0.0)
        return (1 - 0.55 * p ** 1.3, 1 - 0.60 * p ** 1.2, payroll, 1 + 0.6 * p ** 1.5, 1 - p ** 1.6)
    if scenario == "shock_default":
        if d < plan["onset"]:
            return (1.0, 1.0, 1.0, 1.0, 1.0)
        p = min((d - plan["onset"]) / (plan["default"] - plan["onset"]), 1.0)
        ramp = min((d - plan["onset"] + 1) / 3, 1.0)  # the drop takes ~3 days
        rev = 1 - ramp * (1 - plan["shock_depth"]) - 0.1 * p
        payroll = 1.0 if d - plan["onset"] < 18 else 0.75
        return (rev, rev * 0.97, payroll, 1 + 0.6 * min((d - plan["onset"]) / 21, 1.0), 1 - p ** 1.2)
    if scenario == "liquidity_crunch":
        t = d - plan["onset"]
        if t < 0 or d >= plan["end"]:
            dip = 0.0
        elif t < plan["fall"]:
            dip = (t + 1) / plan["fall"]
        elif t < plan["fall"] + plan["hold"]:
            dip = 1.0
        else:
            dip = 1.0 - (t - plan["fall"] - plan["hold"] + 1) / plan["recover"]
        return (1.0, 1.0, 1.0, 1 + plan["dso_stretch"] * dip, 1 - plan["depth"] * dip)
    return (1.0, 1.0, 1.0, 1.0, 1.0)


def _generate(rng_seed: int, n: int, start_ms: int, days: int, mix: dict[str, float] | None,
              serialise: bool) -> tuple[list[tuple[int, int, Any]], list[dict]]:
    """The core of :func:`generate`: ``((ts_ms, enterprise index, message), ...)`` sorted, and truth.

    With ``serialise`` each message is its ``orjson.dumps`` bytes instead of the dict.

    Why so much caching: this runs once per metric per day per enterprise, and a naive version spent
    most of its time formatting timestamps, hashing ids and building datetimes. The calendar of a day,
    its date prefix, an enterprise's five report times and the hash state of its id prefix are the same
    for every event that shares them, so they are computed once; the output is unchanged.
    """
    rng = random.Random(rng_seed)
    gauss = rng.gauss
    exp = math.exp
    scenarios = _scenario_counts(n, mix or DEFAULT_MIX)
    rng.shuffle(scenarios)
    industries = sorted(INDUSTRIES)
    day0 = start_ms - start_ms % MS_PER_DAY
    fmt = TsFormatter()
    day_ms_of = [day0 + d * MS_PER_DAY for d in range(days)]
    dates = [fmt(ms)[:11] for ms in day_ms_of]  # "YYYY-MM-DDT"
    calendar = [_calendar(ms) for ms in day_ms_of]
    two_pi = 2 * math.pi
    events: list[tuple[int, int, Any]] = []
    wrap = orjson.dumps if serialise else _same
    append = events.append
    truth: list[dict] = []
    for i, scenario in enumerate(scenarios):
        ent = f"ent{i:05d}"
        industry = rng.choice(industries)
        plan = _plan(rng, scenario, days)
        amp_w, peak_w, amp_m, peak_m = _season(rng, scenario == "seasonal")
        revenue0 = math.exp(rng.gauss(math.log(200_000), 0.6))
        order_value = rng.uniform(60, 600)
        payroll0 = revenue0 * rng.uniform(0.15, 0.35)
        dso0 = rng.uniform(25, 70)
        margin = rng.uniform(0.02, 0.08)
        growth = rng.uniform(-0.0003, 0.0010)
        noise = rng.uniform(0.05, 0.11)
        cash = revenue0 * rng.uniform(30, 90)
        dso_dev = 0.0
        minute = rng.randrange(0, 180)
        default_day = plan.get("default")
        offsets = [REPORT_HOUR_MS + minute * 60_000 + k * 1000 for k in range(len(METRIC_ORDER))]
        times = [fmt(day0 + off)[11:] for off in offsets]  # report times stay within the day
        id_state = hashlib.blake2b(f"bm|{rng_seed}|{ent}|".encode(), digest_size=12)
        flat = scenario in ("healthy", "seasonal")
        for d in range(days):
            if default_day is not None and d >= default_day:
                break
            day_ms = day_ms_of[d]
            weekday, mday, dim = calendar[d]
            season = (1.0 + amp_w * math.cos(two_pi * (weekday - peak_w) / 7)) * (
                1.0 + amp_m * math.cos(two_pi * (mday - peak_m) / dim))
            f_rev, f_ord, f_pay, f_dso, f_cash = _NO_FACTORS if flat else _factors(scenario, plan, d)
            level = revenue0 * (1 + growth) ** d
            shock = gauss(0, noise)
            revenue = level * season * f_rev * exp(shock)
            orders = revenue / order_value * exp(gauss(0, 0.04))
            payroll = payroll0 * f_pay * exp(gauss(0, 0.01))
            dso_dev = 0.7 * dso_dev + gauss(0, 1.2)
            receivables = max(1.0, dso0 * f_dso + dso_dev)
            cash += margin * level * season + gauss(0, 0.3) * revenue0
            values = (round(revenue, 2), float(max(0, round(orders))), round(payroll, 2),
                      round(receivables, 1), round(cash * f_cash, 2))
            date = dates[d]
            for k, metric in enumerate(METRIC_ORDER):
                h = id_state.copy()
                h.update(f"{d}|{metric}".encode())
                append((day_ms + offsets[k], i, wrap({
                    "event_id": h.hexdigest(),
                    "ts": date + times[k],
                    "enterprise_id": ent,
                    "industry": industry,
                    "metric": metric,
                    "value": values[k],
                })))

        onset = plan["onset"] if plan.get("onset") is not None and plan["onset"] < days else None

        def _ts(day: int | None) -> str | None:
            return None if day is None else fmt_ts(day0 + day * MS_PER_DAY)

        truth.append({
            "enterprise_id": ent,
            "industry": industry,
            "scenario": scenario,
            "default_ts": _ts(default_day if default_day is not None and default_day < days else None),
            "crunch_start_ts": _ts(onset) if scenario == "liquidity_crunch" else None,
            "crunch_end_ts": _ts(plan["end"]) if scenario == "liquidity_crunch" and onset is not None else None,
            "distress_onset_ts": _ts(onset) if scenario in ("decline_default", "shock_default") else None,
            "seasonal_amplitude": {"weekly": round(amp_w, 3), "monthly": round(amp_m, 3)},
        })
    events.sort()  # (ts, enterprise index) is unique, so the messages themselves are never compared
    return events, truth


def generate(rng_seed: int, n: int, start_ms: int, days: int,
             mix: dict[str, float] | None = None) -> tuple[list[tuple[int, dict]], list[dict]]:
    """Generate ``days`` of daily metrics for ``n`` enterprises; returns (events, truth).

    ``events`` are ``(ts_ms, business-metrics message)`` sorted by ``ts_ms`` (ties: enterprise id);
    ``truth`` has one dict per enterprise with its scenario and key dates (RFC 3339, or None).
    """
    events, truth = _generate(rng_seed, n, start_ms, days, mix, serialise=False)
    return [(ts, value) for ts, _, value in events], truth


def generate_payloads(rng_seed: int, n: int, start_ms: int, days: int, mix: dict[str, float] | None = None,
                      ) -> tuple[list[tuple[int, str, bytes]], list[dict]]:
    """Like :func:`generate` but with each message already serialised: ``(ts_ms, enterprise_id, bytes)``.

    Why: the simulator ships these across a process boundary and writes them verbatim; bytes are
    cheaper to pickle than dicts and are serialised in the process that has a core to spare.
    """
    events, truth = _generate(rng_seed, n, start_ms, days, mix, serialise=True)
    ids = [f"ent{i:05d}" for i in range(n)]
    return [(ts, ids[i], payload) for ts, i, payload in events], truth
