"""The consumer-credit engine: applies user events and event-time timers to account states.

Broker-free and Redis-free: the caller loads the states a batch touches, calls :meth:`Engine.process`
and persists the states and outputs it gets back. Everything is decided in event time: an event first
lets the account's timers (ladder steps, reminders, label resolution) fire up to its own timestamp, then
applies; after the batch, timers fire up to the watermark. So the answer depends on event times, not on
arrival speed, as long as events are no later than the allowed lateness.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from online_models.anomaly import PurchaseAnomaly
from online_models.default_model import DefaultModel
from online_models.metrics import Prequential
from online_models.scorecard import load_scorecard
from riskmon import outputs as out
from riskmon.account import AccountState, Episode
from riskmon.config import Settings
from riskmon.contract import Account, Purchase, Repayment
from riskmon.eventtime import MS_PER_DAY, fmt_ts
from riskmon.features import applicant_features, is_night, window_features
from riskmon.label_features import Features, as_dict
from riskmon.ladder import ContactWindow, dpd_at
from riskmon.ledger import INSTALLMENT_PERIOD_MS
from riskmon.limits import LimitDecision, consider_lower, consider_raise
from riskmon.money import fmt
from riskmon.policy import LadderStep, Policy

UserEvent = Account | Purchase | Repayment
Emitted = tuple[str, str, dict[str, Any]]  # (topic, key, record)

@dataclass
class BatchResult:
    """What a batch did: outputs to publish and counters for the summary."""

    outputs: list[Emitted] = field(default_factory=list)
    applied: int = 0
    duplicates: int = 0


class Engine:
    """Consumer-credit decisions over account states (one instance per worker process)."""

    def __init__(self, policy: Policy, *, lateness_ms: int, dedup_window_ms: int, model: DefaultModel | None = None,
                 anomaly: PurchaseAnomaly | None = None, worker_id: str = "w0", metrics_every: int = 250) -> None:
        self.policy = policy
        self.lateness_ms = lateness_ms
        self.dedup_window_ms = dedup_window_ms
        self.model = model or DefaultModel()
        self.anomaly = anomaly or PurchaseAnomaly()
        self.metrics = Prequential()
        self.worker_id = worker_id
        self.metrics_every = metrics_every
        self.contact = ContactWindow(policy)
        self.tz = self.contact.tz
        self.grace_ms = policy.grace_days * MS_PER_DAY
        self.default_ms = policy.default_dpd * MS_PER_DAY
        # a purchase's label is learnt this long after the decision: first due date, then default DPD
        self.label_horizon_ms = INSTALLMENT_PERIOD_MS + self.default_ms
        self.pre_due_steps = [s for s in policy.ladder_steps if s.offset_days <= 0]
        self.dpd_steps = [s for s in policy.ladder_steps if s.offset_days > 0]
        # the pre-due steps with their offsets in ms, and the earliest offset (``_pending``'s early stop)
        self._pre_due = tuple((s, s.offset_days * MS_PER_DAY) for s in self.pre_due_steps)
        self._pre_due_lo = min((off for _, off in self._pre_due), default=0)
        self.freeze_dpd = int(policy.limits["freeze_dpd"])
        self.unfreeze_after = int(policy.limits["unfreeze_on_time_installments"])
        self.labels_since_checkpoint = 0
        # (features, p_decision, p_model, label, resolved_ts, model_was_warm, user) of every learnt label, when set
        self.label_log: list[tuple[dict[str, float], float, float, bool, int, bool, str]] | None = None
        self._out: list[Emitted] = []

    # ------------------------------------------------------------------ batch entry point

    @classmethod
    def for_settings(cls, settings: Settings, policy: Policy, worker_id: str = "w0") -> Engine:
        """The engine a worker runs: lateness, dedup window and scorecard prior from ``settings``."""
        return cls(policy, lateness_ms=settings.allowed_lateness_s * 1000,
                   dedup_window_ms=settings.dedup_window_days * MS_PER_DAY, worker_id=worker_id,
                   model=DefaultModel.for_settings(settings.min_labels_for_model,
                                                   load_scorecard(settings.scorecard_path)))
    def process(self, events: Iterable[UserEvent], states: dict[str, AccountState], watermark: int,
                timer_users: Iterable[str] = ()) -> BatchResult:
        """Apply a batch, then run the collection timeline of every touched account up to ``watermark``.

        ``states`` must hold every user of the batch and of ``timer_users``. Events change the ledger and
        take purchase decisions at once; collection steps, cures and labels happen on the timeline, which
        reads the installments' payment history (``paid_ts``), so the result does not depend on the
        order in which events of different topics arrived, only on their event times.
        """
        self._out = []
        res = BatchResult()
        touched: set[str] = set()
        for ev in events:
            st = states[ev.user_id]
            touched.add(ev.user_id)
            if st.seen(ev.event_id, ev.ts):
                res.duplicates += 1
                continue
            self.apply(st, ev)
            st.mark(ev.event_id, ev.ts)
            res.applied += 1
        for uid in sorted(touched.union(timer_users)):  # sorted: labels are learnt in a reproducible order
            st = states[uid]
            self.advance(st, watermark)
            if not st.is_new:
                st.prune(max(min(watermark, st.coll_cursor), st.opened_ts), self.dedup_window_ms)
        res.outputs = self._out
        self._out = []
        return res

    # ------------------------------------------------------------------ events
    def apply(self, st: AccountState, ev: UserEvent) -> None:
        """Apply one event (the caller has checked idempotency)."""
        st.next_at = False
        if isinstance(ev, Purchase):
            self._purchase(st, ev)
        elif isinstance(ev, Repayment):
            self._repayment(st, ev)
        else:
            self._account(st, ev)

    def _open(self, st: AccountState, ts: int, limit: int | None, cause: str) -> None:
        st.opened_ts = ts
        st.credit_limit = min(limit if limit is not None else self.policy.default_limit, self.policy.initial_limit_cap)
        reasons = ["application"] if limit is not None else ["default_limit"]
        self._limit(st, ts, "initial", 0, st.credit_limit, reasons, cause)

    def _account(self, st: AccountState, ev: Account) -> None:
        for k in ("income_band", "age_band", "bureau_score", "city_tier"):
            v = getattr(ev, k)
            if v is not None:
                st.attrs[k] = v
        if st.is_new:
            self._open(st, ev.ts, ev.credit_limit, ev.event_id)
        elif ev.credit_limit is not None and ev.credit_limit != st.credit_limit and not st.frozen:
            action = "raise" if ev.credit_limit > st.credit_limit else "lower"
            new = max(ev.credit_limit, st.ledger.outstanding) if action == "lower" else ev.credit_limit
            self._limit(st, ev.ts, action, st.credit_limit, new, ["account_update"], ev.event_id)

    def _features(self, st: AccountState, now: int) -> dict[str, float]:
        f = applicant_features(st.attrs)
        f.update(window_features(st.activity, now))
        lim = max(st.credit_limit, 1)
        f["utilisation"] = st.ledger.outstanding / lim
        f["limit"] = lim / 100.0
        resolved = st.n_on_time + st.n_late
        f["on_time_ratio"] = st.n_on_time / resolved if resolved else 1.0
        f["late_ratio"] = st.n_late / resolved if resolved else 0.0
        f["n_resolved"] = float(resolved)
        oldest = st.ledger.oldest_unpaid()
        f["dpd_now"] = float(dpd_at(oldest.due if oldest else None, now))
        f["max_dpd"] = float(st.max_dpd)
        f["n_episodes"] = float(st.n_episodes)
        f["days_since_repayment"] = (now - st.last_repay_ts) / MS_PER_DAY if st.last_repay_ts else -1.0
        f["account_age_days"] = (now - st.opened_ts) / MS_PER_DAY if st.opened_ts else 0.0
        return f

    def _purchase(self, st: AccountState, ev: Purchase) -> None:
        if st.is_new:
            self._open(st, ev.ts, None, ev.event_id)
        pol = self.policy
        available = st.available
        util_before = st.ledger.outstanding / max(st.credit_limit, 1)
        pay = st.ledger.purchase(ev.event_id, ev.ts, ev.amount, ev.installments, self.grace_ms)
        self._completed(st, pay.completed)
        st.activity.add_purchase(ev.ts, ev.amount, ev.merchant_id, ev.category, is_night(ev.ts, self.tz))
        x = self._features(st, ev.ts)
        x["util_jump"] = x["utilisation"] - util_before
        x["amount_to_limit"] = ev.amount / max(st.credit_limit, 1)
        x["installments"] = float(ev.installments)
        for ch in ("app", "web", "pos"):
            x[f"channel_{ch}"] = 1.0 if ev.channel == ch else 0.0
        anomaly = self.anomaly.score_and_learn(x)
        x["anomaly"] = anomaly  # the burst score is also evidence for the default model
        pd, pm = self.model.score(x)  # pm even while the scorecard carries: the gate compares both
        grade = pol.grade(pd)
        st.last_pd, st.grade, st.model_version = pd, grade, self.model.version
        due1 = ev.ts + INSTALLMENT_PERIOD_MS
        st.labels.append([ev.event_id, due1, Features.of(x), pd, pm, int(self.model.warm)])
        a = pol.alerts
        spend24_fen = x["spend_24h"] * 100
        fraud = (anomaly >= a["fraud_anomaly"] and x["utilisation"] >= a["fraud_min_utilisation"]) or (
            x["new_merchants_24h"] >= a["fraud_new_merchants_24h"]
            and spend24_fen >= a["fraud_min_burst_to_limit"] * st.credit_limit
        ) or (  # a faster burst: fewer unfamiliar merchants, more of the limit, an unusual pattern
            x["new_merchants_24h"] >= a["fraud_fast_new_merchants_24h"]
            and spend24_fen >= a["fraud_fast_min_burst_to_limit"] * st.credit_limit
            and anomaly >= a["fraud_fast_min_anomaly"]
        )
        uid = st.user_id
        if ev.amount > available:
            self._alert(ev.ts, "over_limit", "warning", uid, f"over_limit:{uid}:{ev.event_id}",
                        f"purchase {fmt(ev.amount)} beyond available credit {fmt(available)}",
                        {"order_id": ev.order_id, "amount": fmt(ev.amount), "available": fmt(available),
                         "frozen": st.frozen})
        if pd >= a["high_risk_pd"]:
            self._alert(ev.ts, "high_risk_purchase", "warning", uid, f"high_risk_purchase:{uid}:{ev.event_id}",
                        f"purchase scored pd {pd:.2f} (grade {grade})",
                        {"order_id": ev.order_id, "pd": round(pd, 4), "grade": grade,
                         "model_version": self.model.version})
        if fraud and ev.ts - st.last_fraud_ts >= 7 * MS_PER_DAY:
            st.last_fraud_ts = ev.ts
            self._alert(ev.ts, "fraud_suspected", "high", uid, f"fraud_suspected:{uid}:{ev.event_id}",
                        "burst of spending at unfamiliar merchants (bust-out / takeover pattern)",
                        {"order_id": ev.order_id, "anomaly": round(anomaly, 4),
                         "velocity_24h": round(x["velocity_24h"], 2), "spend_24h": x["spend_24h"],
                         "new_merchants_24h": int(x["new_merchants_24h"]),
                         "utilisation": round(x["utilisation"], 4)})
        dec = consider_lower(st, pol, ev.ts, pd, anomaly, fraud)
        if dec:
            st.last_lower_ts = ev.ts
            self._apply_limit(st, ev.ts, dec, ev.event_id, pd, grade)
        self._out.append((out.TOPIC_DECISIONS, uid, out.decision(
            event_id=ev.event_id, ts=ev.ts, user_id=uid, order_id=ev.order_id, amount=ev.amount,
            channel=ev.channel, category=ev.category, installments=ev.installments, pd=pd, anomaly=anomaly,
            grade=grade, apr_bps=pol.apr(grade, ev.channel), model_version=self.model.version,
            utilisation=x["utilisation"], approved_within_limit=ev.amount <= available)))
        self._maybe_raise(st, ev.ts, ev.event_id)

    def _repayment(self, st: AccountState, ev: Repayment) -> None:
        if st.is_new:
            self._open(st, ev.ts, None, ev.event_id)
        oldest = st.ledger.oldest_unpaid()
        dpd_before = dpd_at(oldest.due if oldest else None, ev.ts)
        pay = st.ledger.repay(ev.ts, ev.amount, self.grace_ms)
        st.activity.add_repayment(ev.ts, ev.amount)
        st.last_repay_ts = max(st.last_repay_ts, ev.ts)
        self._completed(st, pay.completed)
        uid = st.user_id
        self._out.append((out.TOPIC_REPAYMENTS_APPLIED, uid, out.repayment_applied(
            event_id=ev.event_id, ts=ev.ts, user_id=uid, amount=ev.amount, method=ev.method,
            outstanding_after=st.ledger.outstanding, on_time=dpd_before == 0, dpd_before=dpd_before)))
        self._maybe_raise(st, ev.ts, ev.event_id)

    def _completed(self, st: AccountState, completed: list) -> None:
        for _inst, on_time in completed:
            if on_time:
                st.n_on_time += 1
            else:
                st.n_late += 1

    def _maybe_raise(self, st: AccountState, ts: int, cause: str) -> None:
        dec = consider_raise(st, self.policy, ts, lambda: self._peak_util(st, ts - 30 * MS_PER_DAY))
        if dec:
            st.last_raise_ts = ts
            self._apply_limit(st, ts, dec, cause, st.last_pd, st.grade)

    @staticmethod
    def _peak_util(st: AccountState, since: int) -> float:
        """Highest utilisation reached right after a purchase since ``since`` (replayed from activity)."""
        # outstanding after each purchase = current outstanding + repayments since then - purchases since then
        cur = st.ledger.outstanding
        peak = cur / max(st.credit_limit, 1)
        events = [(p[0], -p[1]) for p in st.activity.purchases if p[0] >= since]
        events += [(r[0], r[1]) for r in st.activity.repayments if r[0] >= since]
        events.sort(reverse=True)
        run = cur
        for _, delta in events:  # walk back in time
            if delta < 0:  # a purchase: outstanding right after it was `run`
                peak = max(peak, run / max(st.credit_limit, 1))
            run += delta
            run = max(run, 0)
        return peak

    # ------------------------------------------------------------------ limits and alerts
    def _apply_limit(self, st: AccountState, ts: int, dec: LimitDecision, cause: str, pd: float | None,
                     grade: str | None) -> None:
        self._limit(st, ts, dec.action, st.credit_limit, dec.new_limit, dec.reasons, cause, pd=pd, grade=grade)

    def _limit(self, st: AccountState, ts: int, action: str, old: int, new: int, reasons: list[str], cause: str,
               *, pd: float | None = None, grade: str | None = None, frozen: bool | None = None) -> None:
        st.credit_limit = new
        if frozen is not None:
            st.frozen = frozen
        self._out.append((out.TOPIC_LIMIT_CHANGES, st.user_id, out.limit_change(
            ts=ts, user_id=st.user_id, action=action, old_limit=old, new_limit=new, reason_codes=reasons,
            score=pd if pd is not None else st.last_pd, grade=grade or st.grade,
            model_version=self.model.version, cause_id=cause)))

    def _alert(self, ts: int, kind: str, severity: str, uid: str, dedup_key: str, summary: str,
               details: dict[str, Any]) -> None:
        self._out.append((out.TOPIC_ALERTS, uid, out.alert(
            ts=ts, kind=kind, severity=severity, subject_type="user", subject_id=uid, dedup_key=dedup_key,
            summary=summary, details=details)))

    def _set_dpd(self, st: AccountState, t: int, dpd: int) -> None:
        if out.dpd_bucket(dpd) != out.dpd_bucket(st.dpd):
            overdue = sum(i.unpaid for i in st.ledger.installments if i.due <= t and _unpaid_at(i, t))
            self._out.append((out.TOPIC_DPD, st.user_id, out.dpd_snapshot(
                ts=t, user_id=st.user_id, dpd=dpd, prev_dpd=st.dpd, outstanding=st.ledger.outstanding,
                overdue=overdue)))
        st.dpd = dpd
        st.max_dpd = max(st.max_dpd, dpd)

    # ------------------------------------------------------------------ the collection timeline
    # Instants are processed in time order up to the watermark; ``st.coll_cursor`` is how far the account
    # has got. Candidates: payments that completed an installment (``paid_ts``: DPD moves, cures,
    # unfreezes), the next ladder step of the oldest installment unpaid at the cursor, pre-due reminders,
    # deferred contacts and label horizons. At the same instant a step comes before a payment: paying at
    # the very instant the threshold is crossed is too late for it (as in the simulator's ground truth).

    def _pending(self, st: AccountState) -> tuple[int, str, Any] | None:
        """The account's earliest pending timeline instant: (instant, kind, payload).

        The minimum of (instant, kind) over all candidates, the first candidate of a kind winning a tie.
        Kinds are scanned in their order ("0deferred" < "1predue" < "2step" < "3payment" < "4label") with
        a strict ``<`` on the instant, which gives exactly that minimum without building tuples: this scan
        runs for every step of every touched account's timeline and was the hottest function of the
        worker (docs/performance.md).
        """
        cur = st.coll_cursor
        bt = -1
        bk = ""
        bp: Any = None
        for d in st.deferred:
            t = d[0] if d[0] > cur else cur
            if bt < 0 or t < bt:
                bt, bk, bp = t, "0deferred", d
        # The ledger is walked oldest first (``Ledger.due_order``), which finds the oldest installment
        # unpaid at the cursor (due, then purchase, then k) at once and lets the pre-due scan stop at the
        # first installment whose earliest reminder cannot beat the best instant so far: later ones are
        # due no sooner. A mature account holds tens of installments (24-month plans), almost all due
        # months ahead, and this scan runs for every step of every touched account's timeline
        # (docs/performance.md, session 13). A tie between pre-due reminders goes to the installment
        # first in ledger order, as when the ledger was scanned in that order; hence ``bn``.
        led = st.ledger
        src = led.installments
        pay_t = -1
        pay_inst: Any = None
        for inst in src:  # the earliest payment after the cursor (the first of the ledger on a tie)
            pt = inst.paid_ts
            if pt is not None and pt > cur and (pay_t < 0 or pt < pay_t):
                pay_t, pay_inst = pt, inst
        oldest: Any = None
        if src:
            steps = self._pre_due
            lo = self._pre_due_lo
            reminded: set[str] | None = None
            bn = -1  # ledger index of the best pre-due candidate
            for n in led.due_order():
                inst = src[n]
                pt = inst.paid_ts
                if pt is not None and pt <= cur:
                    continue  # paid at the cursor: neither oldest nor reminded
                if oldest is None:
                    oldest = inst
                    if not steps:
                        break
                due = inst.due
                if bt >= 0 and (due + lo if due + lo > cur else cur) > bt:
                    break  # no reminder of this or any later installment can win, nor tie
                ref = None
                for step, off in steps:
                    at = due + off
                    if at > cur or due > cur:
                        t = at if at > cur else cur
                        if bt < 0 or t < bt or (t == bt and bk == "1predue" and n < bn):
                            if ref is None:
                                ref = f"{inst.purchase_id}:{inst.k}"
                                if reminded is None:
                                    reminded = set(st.reminded)
                                if ref in reminded:
                                    break
                            bt, bk, bp, bn = t, "1predue", (inst, step, ref), n
        if oldest is not None:
            fired = st.episode.fired if st.episode else ()
            for step in self.dpd_steps:
                if step.kind not in fired:
                    at = oldest.due + step.offset_days * MS_PER_DAY
                    t = at if at > cur else cur
                    if bt < 0 or t < bt:
                        bt, bk, bp = t, "2step", (oldest, step)
                    break
        if pay_t >= 0 and (bt < 0 or pay_t < bt):
            bt, bk, bp = pay_t, "3payment", pay_inst
        dms = self.default_ms
        for lab in st.labels:
            at = lab[1] + dms
            t = at if at > cur else cur
            if bt < 0 or t < bt:
                bt, bk, bp = t, "4label", lab
        return (bt, bk, bp) if bt >= 0 else None

    def next_timer(self, st: AccountState) -> int | None:
        """When this account's timeline next needs the clock (None: nothing pending).

        ``advance`` leaves the answer on the state (its last scan found it), so after ``process`` this
        costs nothing; any event applied since invalidates it.
        """
        if st.next_at is not False:
            return st.next_at
        p = self._pending(st)
        return p[0] if p else None

    def advance(self, st: AccountState, until: int) -> None:
        """Process the account's timeline up to ``until`` (the watermark), in time order."""
        if st.is_new:
            return
        st.coll_cursor = max(st.coll_cursor, st.opened_ts)
        # An account whose timer fired without an event has not changed since its last scan (``apply``
        # resets ``next_at``; ``prune`` removes only what no scan reads): that scan's answer stands. Such
        # accounts were ~half of a mature book's touches (docs/performance.md, session 13).
        p = st.next_p if st.next_at is not False else self._pending(st)
        st.next_at = False
        for _ in range(100_000):
            if p is None or p[0] > until:
                st.next_at = p[0] if p else None
                st.next_p = p
                return
            t, kind, payload = p
            st.coll_cursor = t
            if kind == "3payment":
                self._on_payment(st, t)
            elif kind == "0deferred":
                st.deferred.remove(payload)
                self._fire_deferred(st, payload)
            elif kind == "1predue":
                inst, step, ref = payload
                st.reminded.append(ref)
                self._customer_contact(st, t, step, ref, 0)
            elif kind == "2step":
                self._fire_step(st, t, payload[0], payload[1])
            else:
                st.labels.remove(payload)
                inst = next((i for i in st.ledger.installments
                             if i.purchase_id == payload[0] and i.k == 1), None)
                # Every label is learnt at one horizon (due + default DPD), paid or not: learning a
                # negative at payment would feed the model negatives a month before the positives of the
                # same cohort can exist (docs/model.md). Unpaid *at the horizon* is read from history.
                self._learn(st.user_id, payload, inst is not None and (inst.paid_ts is None or inst.paid_ts >= t), t)
            p = self._pending(st)

    def _on_payment(self, st: AccountState, t: int) -> None:
        """Installments got paid at ``t``: DPD moves to the next-oldest, cure, unfreeze."""
        uid = st.user_id
        overdue = [i for i in st.ledger.installments if i.due <= t and _unpaid_at(i, t)]
        if st.episode is not None and not overdue:
            ep = st.episode
            st.episode = None
            st.deferred = [d for d in st.deferred if d[1] == "repayment_reminder"]
            self._alert(t, "cured", "info", uid, f"cured:{uid}:{ep.episode_id}",
                        f"all overdue installments paid at DPD {st.dpd}",
                        {"episode_id": ep.episode_id, "dpd": st.dpd, "resolves": ep.pages})
            if st.frozen:
                st.awaiting_unfreeze, st.cure_ts = True, t
        oldest = min((i.due for i in overdue), default=None)
        self._set_dpd(st, t, dpd_at(oldest, t) if st.episode is not None else 0)
        if st.frozen and st.awaiting_unfreeze:
            on_time = [i for i in st.ledger.installments if i.paid_ts is not None
                       and st.cure_ts < i.paid_ts <= t and i.paid_ts <= i.due + self.grace_ms]
            if len(on_time) >= self.unfreeze_after:
                st.awaiting_unfreeze = False
                self._limit(st, t, "unfreeze", st.credit_limit, st.credit_limit, ["cured", "on_time_after_cure"],
                            f"unfreeze:{st.cure_ts}", frozen=False)

    def _customer_contact(self, st: AccountState, t: int, step: LadderStep, ref: str, dpd: int) -> None:
        ready = self.contact.earliest(t, st.contacts)
        if ready == t:
            self._emit_contact(st, t, step.kind, step.severity, ref, dpd, t)
        else:
            st.deferred.append([ready, step.kind, ref, dpd, t])

    def _fire_deferred(self, st: AccountState, d: list[Any]) -> None:
        ready, kind, ref, dpd, step_ts = d
        if kind == "repayment_reminder":
            pid, k = ref.rsplit(":", 1)
            inst = next((i for i in st.ledger.installments if i.purchase_id == pid and i.k == int(k)), None)
            if inst is None or not _unpaid_at(inst, ready):
                return
        elif st.episode is None or st.episode.episode_id != ref:
            return
        ready2 = self.contact.earliest(ready, st.contacts)
        step = next(s for s in self.policy.ladder_steps if s.kind == kind)
        if ready2 != ready:
            st.deferred.append([ready2, kind, ref, dpd, step_ts])
            return
        self._emit_contact(st, ready, kind, step.severity, ref, dpd, step_ts)

    def _emit_contact(self, st: AccountState, t: int, kind: str, severity: str, ref: str, dpd: int,
                      step_ts: int) -> None:
        st.contacts.append(t)
        uid = st.user_id
        if kind == "repayment_reminder":
            pid, k = ref.rsplit(":", 1)
            inst = next(i for i in st.ledger.installments if i.purchase_id == pid and i.k == int(k))
            self._alert(t, kind, severity, uid, f"{kind}:{uid}:{ref}",
                        f"installment {k} of {fmt(inst.amount)} due {fmt_ts(inst.due)[:10]}",
                        {"dpd": dpd, "purchase_id": pid, "installment": int(k), "amount": fmt(inst.amount),
                         "due": fmt_ts(inst.due), "scheduled_ts": fmt_ts(step_ts)})
        else:
            self._alert(t, kind, severity, uid, f"{kind}:{uid}:{ref}",
                        f"account {dpd} days past due", {"dpd": dpd, "episode_id": ref,
                                                         "outstanding": fmt(st.ledger.outstanding),
                                                         "scheduled_ts": fmt_ts(step_ts)})

    def _fire_step(self, st: AccountState, t: int, oldest: Any, step: LadderStep) -> None:
        uid = st.user_id
        if st.episode is None:
            st.n_episodes += 1
            st.episode = Episode(f"{uid}-e{st.n_episodes}", oldest.due)
        ep = st.episode
        ep.fired.append(step.kind)
        dpd = step.offset_days
        self._set_dpd(st, t, dpd_at(oldest.due, t))
        if step.customer_facing:
            self._customer_contact(st, t, step, ep.episode_id, dpd)
        else:
            key = f"{step.kind}:{uid}:{ep.episode_id}"
            ep.pages.append(key)
            self._alert(t, step.kind, step.severity, uid, key, f"account {dpd} days past due",
                        {"dpd": dpd, "episode_id": ep.episode_id, "outstanding": fmt(st.ledger.outstanding),
                         "first_due_unpaid": fmt_ts(oldest.due)})
        if dpd >= self.freeze_dpd and not st.frozen:
            st.awaiting_unfreeze = False
            self._limit(st, t, "freeze", st.credit_limit, st.credit_limit, [f"dpd_{dpd}"], ep.episode_id,
                        frozen=True)
        if step.bureau_report:
            owed = sum(i.unpaid for i in st.ledger.installments if _unpaid_at(i, t))
            rep = out.bureau_report(ts=t, user_id=uid, outstanding=owed, dpd=dpd,
                                    first_due_unpaid=oldest.due, episode_id=ep.episode_id)
            self._out.append((out.TOPIC_BUREAU, uid, rep))
            key = f"bureau_report:{uid}:{ep.episode_id}"
            self._alert(t, "bureau_report", "critical", uid, key, f"reported to the credit bureau at DPD {dpd}",
                        {"dpd": dpd, "episode_id": ep.episode_id, "report_id": rep["report_id"],
                         "outstanding": rep["outstanding"]})

    # ------------------------------------------------------------------ delayed labels
    def _learn(self, uid: str, lab: list[Any], y: bool, ts: int) -> None:
        x, p_decision, p_model, warm = as_dict(lab[2]), lab[3], lab[4], bool(lab[5])
        self.metrics.update(p_decision, y)
        if self.label_log is not None:
            self.label_log.append((x, p_decision, p_model, y, ts, warm, uid))
        self.model.learn_one(x, y, p_model=p_model)
        self.labels_since_checkpoint += 1
        if self.metrics.n % self.metrics_every == 0:
            self._out.append((out.TOPIC_MODEL_METRICS, self.worker_id, out.model_metric(
                ts=ts, model="default", model_version=self.model.version, n_labels=self.metrics.n,
                auc=_nz(self.metrics.auc), logloss=_nz(self.metrics.logloss), positives=self.metrics.positives,
                worker=self.worker_id)))


def _unpaid_at(inst: Any, t: int) -> bool:
    """Was the installment still (partly) unpaid at instant ``t``? Read from its payment history."""
    return inst.paid_ts is None or inst.paid_ts > t


def _nz(v: float) -> float:
    return 0.0 if v != v else v
