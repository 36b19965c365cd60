"""A deterministic, realistic set of output records for dashboards, the report and their tests.

Why it exists: the panels and the HTML report must be exercised on the real engine before (and
independently of) a full simulator replay. Records are built with the ``riskmon.outputs`` builders,
so they are exactly what the workers publish, spread over days, channels, categories, grades, alert
kinds and severities, DPD buckets with rolls and cures, limit actions, industries and model metrics.
A replay's records (topic, record) can be loaded through :func:`load` in the same way.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from clickhouse_connect.driver.client import Client

from riskmon import outputs
from riskmon.contract import CATEGORIES, CHANNELS, INDUSTRIES, METRICS, TOPIC_METRICS
from riskmon.eventtime import MS_PER_DAY, MS_PER_HOUR, fmt_ts, parse_ts
from sinks.clickhouse.writer import FactSink

START_MS = parse_ts("2026-03-01T00:00:00Z")
GRADES = (("A", 0.03), ("B", 0.08), ("C", 0.15), ("D", 0.30), ("E", 1.0))
LADDER = (("repayment_reminder", "info"), ("overdue_reminder", "info"), ("overdue_sms", "warning"),
          ("collector_queue", "warning"), ("collector_page", "high"), ("delinquency_m1", "high"),
          ("delinquency_m2", "critical"), ("delinquency_m3", "critical"))
SIGNALS = ("revenue_drop", "cash_burn", "receivables_stretch", "payroll_cut", "order_slump")
BUCKET_DPD = {"current": 0, "1-29": 1, "30-59": 30, "60-89": 60, "90+": 90}
BUCKETS = tuple(BUCKET_DPD)

Record = tuple[str, dict[str, Any]]


def _grade(pd: float) -> str:
    return next(g for g, hi in GRADES if pd <= hi)


def sample_records(*, days: int = 14, users: int = 400, enterprises: int = 48, seed: int = 7,
                   start_ms: int = START_MS) -> list[Record]:
    """(topic, record) pairs covering every fact table over ``days`` days of event time."""
    rng = random.Random(seed)
    out: list[Record] = []
    channels, categories, industries = sorted(CHANNELS), sorted(CATEGORIES), sorted(INDUSTRIES)
    user_risk = {f"u{i:05d}": rng.betavariate(1.2, 14) for i in range(users)}
    limits = {u: rng.choice((200000, 500000, 1000000, 2000000)) for u in user_risk}
    for u in user_risk:
        out.append((outputs.TOPIC_LIMIT_CHANGES, outputs.limit_change(
            ts=start_ms + rng.randrange(MS_PER_HOUR), user_id=u, action="initial", old_limit=0,
            new_limit=limits[u], reason_codes=["new_account"], score=None, grade=None, model_version=None,
            cause_id=f"acct-{u}")))
    n = 0
    for day in range(days):
        day_ms = start_ms + day * MS_PER_DAY
        for u, risk in user_risk.items():
            for _ in range(rng.choice((0, 0, 1, 1, 2))):
                n += 1
                ts = day_ms + rng.randrange(MS_PER_DAY)
                drift = 1.0 + 0.03 * day  # scores drift upwards over the window
                pd = min(0.99, max(0.001, rng.gauss(risk * drift, 0.02)))
                amount = rng.randrange(1000, 800000)
                ch = rng.choice(channels)
                rec = outputs.decision(
                    event_id=f"p{n:07d}", ts=ts, user_id=u, order_id=f"o{n:07d}", amount=amount, channel=ch,
                    category=rng.choice(categories), installments=rng.choice((1, 3, 6, 12, 24)), pd=pd,
                    anomaly=rng.random() ** 4, grade=_grade(pd), apr_bps=999 + int(pd * 2000),
                    model_version="m1" if day < days // 2 else "m2", utilisation=rng.random(),
                    approved_within_limit=rng.random() > 0.05)
                out.append((outputs.TOPIC_DECISIONS, rec))
                if pd >= 0.4:
                    out.append((outputs.TOPIC_ALERTS, outputs.alert(
                        ts=ts, kind="high_risk_purchase", severity="high", subject_type="user", subject_id=u,
                        dedup_key=f"hrp:{rec['event_id']}", summary=f"pd {pd:.2f}", details={"pd": pd})))
                if rec["anomaly"] > 0.9:
                    out.append((outputs.TOPIC_ALERTS, outputs.alert(
                        ts=ts, kind="fraud_suspected", severity="critical", subject_type="user", subject_id=u,
                        dedup_key=f"fraud:{rec['event_id']}", summary="anomalous purchase",
                        details={"anomaly": rec["anomaly"]})))
                if rng.random() < 0.08:
                    action = rng.choice(("raise", "lower", "lower", "freeze", "unfreeze"))
                    old = limits[u]
                    new = {"raise": old * 6 // 5, "lower": old * 7 // 10}.get(action, old)
                    limits[u] = new
                    out.append((outputs.TOPIC_LIMIT_CHANGES, outputs.limit_change(
                        ts=ts + 1, user_id=u, action=action, old_limit=old, new_limit=new,
                        reason_codes=[f"{action}_rule"], score=pd, grade=_grade(pd), model_version="m1",
                        cause_id=rec["event_id"])))
                if rng.random() < 0.5:
                    out.append((outputs.TOPIC_REPAYMENTS_APPLIED, outputs.repayment_applied(
                        event_id=f"r{n:07d}", ts=ts + rng.randrange(MS_PER_DAY), user_id=u,
                        amount=amount // rng.choice((1, 3, 6)), method=rng.choice(
                            ("bank_transfer", "card", "wallet", "auto_debit")),
                        outstanding_after=rng.randrange(0, amount), on_time=rng.random() > risk * 2,
                        dpd_before=0 if rng.random() > risk else rng.randrange(1, 40))))
    # delinquency: accounts roll forward through buckets, some cure back to current
    for u, risk in user_risk.items():
        if rng.random() > min(0.9, risk * 4):
            continue
        ts = start_ms + rng.randrange(days // 2) * MS_PER_DAY + rng.randrange(MS_PER_DAY)
        prev = "current"
        outstanding = rng.randrange(10000, 2000000)
        for step, (kind, sev) in enumerate(LADDER):
            out.append((outputs.TOPIC_ALERTS, outputs.alert(
                ts=ts + step * MS_PER_HOUR * 7, kind=kind, severity=sev, subject_type="user", subject_id=u,
                dedup_key=f"{kind}:{u}:ep1", summary=kind.replace("_", " "), details={"step": step})))
            if step >= 4 and rng.random() < 0.5:
                break
        for bucket in BUCKETS[1:]:
            if prev != "current" and rng.random() < 0.2:
                break  # still in this bucket at the end of the window
            cure = rng.random() < 0.35
            nxt = "current" if cure else bucket
            ts += rng.randrange(MS_PER_DAY // 2, MS_PER_DAY * 2)
            out.append((outputs.TOPIC_DPD, outputs.dpd_snapshot(
                ts=ts, user_id=u, dpd=BUCKET_DPD[nxt], prev_dpd=BUCKET_DPD[prev], outstanding=outstanding,
                overdue=outstanding // 3)))
            if cure:
                break
            prev = nxt
            if nxt == "90+":
                out.append((outputs.TOPIC_BUREAU, outputs.bureau_report(
                    ts=ts, user_id=u, outstanding=outstanding, dpd=90, first_due_unpaid=ts - 90 * MS_PER_DAY,
                    episode_id=f"{u}:ep1")))
    # enterprises: daily metrics, health changes with signals, watch list
    for e in range(enterprises):
        eid, industry = f"e{e:04d}", industries[e % len(industries)]
        weak = rng.random() < 0.3
        for day in range(days):
            ts = start_ms + day * MS_PER_DAY + 6 * MS_PER_HOUR
            for metric in sorted(METRICS):
                value = round(rng.uniform(1e4, 1e6) * (0.97 ** day if weak else 1.0), 2)
                out.append((TOPIC_METRICS, {"event_id": f"{eid}-{metric}-{day}", "ts": fmt_ts(ts),
                                            "enterprise_id": eid, "industry": industry, "metric": metric,
                                            "value": value}))
            if day % 3 == 0 or (weak and day > days // 2):
                signals = rng.sample(SIGNALS, k=rng.randrange(1, 4)) if weak else []
                score = rng.uniform(20, 55) if weak else rng.uniform(60, 95)
                watch = weak and score < 45
                out.append((outputs.TOPIC_ENTERPRISE_HEALTH, outputs.enterprise_health(
                    ts=ts + 1, enterprise_id=eid, industry=industry, grade="E" if watch else ("C" if weak else "A"),
                    health_score=score, open_signals=signals, watchlist=watch,
                    recommendation="reduce exposure" if watch else ("monitor" if weak else "none"))))
                if watch:
                    out.append((outputs.TOPIC_ALERTS, outputs.alert(
                        ts=ts + 1, kind="enterprise_early_warning", severity="warning",
                        subject_type="enterprise", subject_id=eid, dedup_key=f"ews:{eid}:{day}",
                        summary=f"{industry} enterprise on watch list", details={"signals": signals})))
    # model health: prequential metrics every few hours, per worker
    for i in range(days * 6):
        for w in ("w0", "w1"):
            labels = 300 + i * 40
            out.append((outputs.TOPIC_MODEL_METRICS, outputs.model_metric(
                ts=start_ms + i * 4 * MS_PER_HOUR, model="default", model_version="m1" if i < days * 3 else "m2",
                n_labels=labels, auc=min(0.95, 0.62 + 0.25 * (1 - 1 / (1 + i / 10)) + rng.gauss(0, 0.01)),
                logloss=max(0.05, 0.45 - 0.15 * (1 - 1 / (1 + i / 10)) + rng.gauss(0, 0.01)),
                positives=labels // 12, worker=w)))
    for i in range(12):
        out.append((outputs.TOPIC_DEAD_LETTERS, {
            **outputs.dead_letter(topic=rng.choice(("purchases", "repayments", "accounts")), partition=i % 4,
                                  offset=1000 + i, payload=b'{"event_id": 1}', reason="event_id: required"),
            "ts": fmt_ts(start_ms + i * MS_PER_DAY)}))
    return out


def load(client: Client, records: Iterable[Record], *, max_rows: int = 20_000) -> int:
    """Write records through a :class:`FactSink` (the same path as the sink); returns rows written."""
    sink = FactSink(client, max_rows=max_rows, max_buffer_rows=max_rows * 4, background=False)
    n = 0
    for topic, rec in records:
        sink.add(topic, rec)
        n += 1
        if sink.pending >= max_rows:
            sink.flush()
    sink.close()
    return n
