"""Consumers with latent segments: sign-up, purchases and repayments driven by the installment ledger.

Each customer is simulated on their own event-time queue with their own RNG (seeded from the run seed
and the customer index), so customers are independent of each other and of generation order. Every
purchase is booked into a :class:`RepaymentSchedule` with the exact ledger rule and the segment decides
when to pay what is due; the ground truth is read from that schedule at the end of the window.

Segments (latent; the applicant attributes correlate with them but overlap):

- ``prime``: pays each installment 0.5-5 days before it is due, sometimes the whole balance in a lump.
- ``near_prime``: mostly before the due date, a quarter of installments 1-10 days late.
- ``subprime``: often 1-25 days late, sometimes partial; ~45% stop paying for good at some point.
- ``cure_after_late``: on time, except one episode 10-40 days late, after which it pays all that is
  overdue at once (cures) and is on time again.
- ``bust_out``: behaves like prime for 1-3 months, then within a day or two buys up to and beyond the
  limit, and never pays again.
"""

from __future__ import annotations

import bisect
import heapq
import random
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from orjson import dumps

from riskmon.contract import TOPIC_ACCOUNTS, TOPIC_PURCHASES, TOPIC_REPAYMENTS
from riskmon.eventtime import MS_PER_DAY, MS_PER_HOUR
from riskmon.money import fmt
from simulator.clock import HourOfDay, TsFormatter
from simulator.merchants import BURST_CATEGORIES, Merchants, basket_fen, plan_for
from simulator.schedule import RepaymentSchedule

INCOME_BANDS = ("low", "mid", "high", "very_high")
AGE_BANDS = ("18-25", "26-35", "36-50", "51+")
METHODS = ("bank_transfer", "card", "wallet", "auto_debit")
_INCOME_FACTOR = {"low": 0.6, "mid": 1.0, "high": 1.5, "very_high": 2.2}

MIN_LIMIT_FEN = 1000_00
MAX_LIMIT_FEN = 20000_00

# A simulated event: (sort ts, subject index, sequence, topic, key, payload bytes)
Entry = tuple[int, int, int, str, str, bytes]


@dataclass(frozen=True, slots=True)
class SegmentProfile:
    """How a segment looks on paper and behaves."""

    bureau: tuple[float, float]  # mean, sd of the bureau score
    income: tuple[float, ...]  # weights over INCOME_BANDS
    age: tuple[float, ...]  # weights over AGE_BANDS
    city: tuple[float, ...]  # weights over city tiers 1..4
    methods: tuple[float, ...]  # weights over METHODS (preferred repayment method)
    purchases_per_day: float
    night_share: float
    lump_share: float  # chance a purchase is later repaid in one lump


PROFILES: dict[str, SegmentProfile] = {
    "prime": SegmentProfile((720, 70), (10, 35, 35, 20), (8, 35, 42, 15), (35, 35, 20, 10),
                            (20, 20, 25, 35), 0.22, 0.03, 0.12),
    "near_prime": SegmentProfile((680, 70), (20, 45, 25, 10), (20, 40, 30, 10), (25, 35, 25, 15),
                                 (25, 25, 30, 20), 0.25, 0.05, 0.05),
    "subprime": SegmentProfile((625, 75), (40, 40, 15, 5), (35, 40, 20, 5), (15, 30, 30, 25),
                               (35, 25, 35, 5), 0.28, 0.09, 0.0),
    "cure_after_late": SegmentProfile((665, 70), (25, 45, 22, 8), (25, 40, 28, 7), (20, 35, 28, 17),
                                      (30, 25, 30, 15), 0.25, 0.06, 0.05),
    "bust_out": SegmentProfile((700, 75), (20, 40, 28, 12), (30, 45, 20, 5), (30, 35, 20, 15),
                               (30, 30, 30, 10), 0.22, 0.12, 0.10),
}

SUBPRIME_DEFAULT_SHARE = 0.45
LIMIT_OMIT_SHARE = 0.10  # accounts sent without credit_limit (the pipeline applies its default)
NUMERIC_AMOUNT_SHARE = 0.2  # amounts sent as JSON numbers rather than decimal strings

_PURCHASE, _PAY, _LUMP, _CURE, _BUST = range(5)


def _pick(rng: random.Random, options: tuple, weights: tuple[float, ...]) -> Any:
    cum = list(accumulate(weights))
    return options[bisect.bisect_right(cum, rng.random() * cum[-1])]


class Context:
    """What every customer simulation shares: window, formatter, merchants, hour-of-day samplers."""

    def __init__(self, seed: int, start_ms: int, end_ms: int, default_limit_fen: int,
                 default_dpd: int, installments_truth: bool) -> None:
        self.seed = seed
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.days = (end_ms - start_ms) // MS_PER_DAY
        self.default_limit_fen = default_limit_fen
        self.default_dpd = default_dpd
        self.installments_truth = installments_truth
        self.fmt_ts = TsFormatter()
        self.merchants = Merchants(seed)
        self.shopping_hours = {name: HourOfDay(p.night_share) for name, p in PROFILES.items()}
        self.paying_hours = HourOfDay(0.01)

    def at_day(self, day: int, hours: HourOfDay, rng: random.Random) -> int:
        """An instant on simulated day ``day`` (from the window start) at a drawn time of day."""
        return self.start_ms + day * MS_PER_DAY + hours.offset_ms(rng)

    def day_of(self, ts: int) -> int:
        """Window day index of an instant."""
        return (ts - self.start_ms) // MS_PER_DAY


def draw_applicant(rng: random.Random, profile: SegmentProfile) -> dict[str, Any]:
    """Applicant attributes, correlated with the segment but noisy (and each sometimes missing)."""
    attrs: dict[str, Any] = {
        "income_band": _pick(rng, INCOME_BANDS, profile.income),
        "age_band": _pick(rng, AGE_BANDS, profile.age),
        "bureau_score": int(min(900, max(300, round(rng.gauss(*profile.bureau))))),
        "city_tier": _pick(rng, (1, 2, 3, 4), profile.city),
    }
    for name in list(attrs):
        if rng.random() < 0.03:
            del attrs[name]
    return attrs


def limit_for(rng: random.Random, attrs: dict[str, Any]) -> int:
    """Initial credit limit in fen (1,000-20,000 CNY, whole hundreds) from score and income."""
    score = attrs.get("bureau_score", 650)
    income = _INCOME_FACTOR[attrs.get("income_band", "mid")]
    cny = max(0.0, (score - 480) * 22.0) * income * rng.lognormvariate(0.0, 0.25)
    return max(MIN_LIMIT_FEN, min(MAX_LIMIT_FEN, int(cny / 100) * 100_00))


class Customer:
    """One customer's simulation; ``run`` returns their events and ``truth`` their ground truth."""

    def __init__(self, ctx: Context, index: int, user_id: str, segment: str) -> None:
        self.ctx = ctx
        self.index = index
        self.user_id = user_id
        self.segment = segment
        self.profile = PROFILES[segment]
        self.rng = random.Random(f"{ctx.seed}:customer:{index}")
        self.sched = RepaymentSchedule()
        self.entries: list[Entry] = []
        self._heap: list[tuple[int, int, int, int]] = []
        self._hseq = 0
        self._eseq = 0
        self._n_purchase = 0
        self._n_repay = 0
        self.signup_ts = 0
        self.limit = 0
        self.limit_sent = True
        self.bust_ts: int | None = None  # planned burst start
        self.bust_out_ts: int | None = None  # actual first burst purchase
        self.stop_ts: int | None = None  # subprime: stops paying for good
        self.episode_start: int | None = None  # cure_after_late
        self.episode_until: int | None = None
        self.episode_done = False
        self.busted = False

    # -- plumbing ---------------------------------------------------------------------------------------
    def _push(self, ts: int, kind: int, arg: int = 0) -> None:
        if ts < self.ctx.end_ms:
            self._hseq += 1
            heapq.heappush(self._heap, (ts, self._hseq, kind, arg))

    def _emit(self, ts: int, topic: str, value: dict[str, Any]) -> None:
        self._eseq += 1
        self.entries.append((ts, self.index, self._eseq, topic, self.user_id, dumps(value)))

    # -- behaviour --------------------------------------------------------------------------------------
    def run(self) -> list[Entry]:
        """Simulate the customer over the window."""
        ctx, rng, p = self.ctx, self.rng, self.profile
        if rng.random() < 0.85:
            day = rng.randrange(min(30, ctx.days))
        else:
            day = rng.randrange(max(1, int(ctx.days * 0.7)))
        self.signup_ts = ctx.at_day(day, ctx.paying_hours, rng)
        attrs = draw_applicant(rng, p)
        self.limit = limit_for(rng, attrs)
        account: dict[str, Any] = {"event_id": f"a:{self.user_id}", "ts": ctx.fmt_ts(self.signup_ts),
                                   "user_id": self.user_id}
        if rng.random() < LIMIT_OMIT_SHARE:
            self.limit_sent = False
            self.limit = ctx.default_limit_fen
        else:
            account["credit_limit"] = fmt(self.limit)
        account.update(attrs)
        self._emit(self.signup_ts, TOPIC_ACCOUNTS, account)

        self.pool = ctx.merchants.pool(rng, rng.randint(3, 8))
        self.scale = (self.limit / 6000_00) ** 0.5 * rng.uniform(0.7, 1.3)
        self.method = _pick(rng, METHODS, p.methods)
        if self.segment == "bust_out":
            self.bust_ts = ctx.at_day(ctx.day_of(self.signup_ts) + rng.randint(30, 90),
                                      ctx.shopping_hours["bust_out"], rng)
            self._push(self.bust_ts, _BUST)
        elif self.segment == "subprime" and rng.random() < SUBPRIME_DEFAULT_SHARE:
            self.stop_ts = self.signup_ts + rng.randint(35, 100) * MS_PER_DAY
        elif self.segment == "cure_after_late":
            self.episode_start = self.signup_ts + rng.randint(25, 70) * MS_PER_DAY

        t = self.signup_ts + int(rng.uniform(0.02, 3.0) * MS_PER_DAY)
        hours = ctx.shopping_hours[self.segment]
        while t < ctx.end_ms and (self.bust_ts is None or t < self.bust_ts):
            self._push(ctx.at_day(ctx.day_of(t), hours, rng), _PURCHASE)
            t += int(rng.expovariate(p.purchases_per_day) * MS_PER_DAY)

        last = self.signup_ts
        heap = self._heap
        while heap:
            ts, _, kind, arg = heapq.heappop(heap)
            if ts <= last:
                ts = last + 1000  # one event per instant per customer keeps the ledger order unambiguous
            if ts >= ctx.end_ms:
                break
            if kind == _PURCHASE:
                done = self._purchase(ts)
            elif kind == _PAY:
                done = self._pay(ts, arg)
            elif kind == _LUMP:
                done = self._lump(ts)
            elif kind == _CURE:
                done = self._cure(ts)
            else:
                done = self._bust(ts)
            if done:
                last = ts
        return self.entries

    def _book_purchase(self, ts: int, merchant: int, category: str, amount: int, n: int) -> None:
        ctx, rng, uid = self.ctx, self.rng, self.user_id
        self._n_purchase += 1
        order_id = f"o:{uid}:{self._n_purchase}"
        event_id = f"p:{uid}:{self._n_purchase}"
        merchants = ctx.merchants
        # the draw order (amount form, then channel) is part of the output: keep it
        wire_amount = amount / 100 if rng.random() < NUMERIC_AMOUNT_SHARE else fmt(amount)
        self._eseq += 1
        self.entries.append((ts, self.index, self._eseq, TOPIC_PURCHASES, uid, dumps({
            "event_id": event_id,
            "ts": ctx.fmt_ts(ts),
            "user_id": uid,
            "order_id": order_id,
            "amount": wire_amount,
            "merchant_id": merchants.ids[merchant],
            "category": category,
            "channel": merchants.channel_of(rng, merchant),
            "installments": n,
        })))
        self.sched.purchase(ts, event_id, amount, n, order_id)

    def _repay(self, ts: int, amount: int) -> None:
        rng, uid = self.rng, self.user_id
        self._n_repay += 1
        r = rng.random()
        method = self.method if r < 0.85 else METHODS[int((r - 0.85) / 0.15 * 4)]
        wire_amount = amount / 100 if rng.random() < NUMERIC_AMOUNT_SHARE else fmt(amount)
        self._eseq += 1
        self.entries.append((ts, self.index, self._eseq, TOPIC_REPAYMENTS, uid, dumps({
            "event_id": f"r:{uid}:{self._n_repay}",
            "ts": self.ctx.fmt_ts(ts),
            "user_id": uid,
            "amount": wire_amount,
            "method": method,
        })))
        self.sched.repay(ts, amount)

    def _purchase(self, ts: int) -> bool:
        ctx, rng = self.ctx, self.rng
        if self.busted or (self.stop_ts is not None and ts >= self.stop_ts and rng.random() < 0.85):
            return False
        if rng.random() < 0.75:
            merchant = self.pool[int(rng.random() * len(self.pool))]
            category = ctx.merchants.category[merchant]
        else:
            category = ctx.merchants.draw_category(rng)
            merchant = ctx.merchants.in_category(rng, category)
        amount = basket_fen(rng, category, self.scale)
        available = self.limit - self.sched.outstanding
        if amount > available and rng.random() < 0.95:
            if available < 50_00:
                return False
            amount = int(available * rng.uniform(0.3, 0.95))
        n = plan_for(rng, amount)
        self._book_purchase(ts, merchant, category, amount, n)
        self._plan_payments(ts, n)
        return True

    def _plan_payments(self, ts: int, n: int) -> None:
        """Decide, when a purchase is made, when each of its installments will be paid."""
        ctx, rng, seg = self.ctx, self.rng, self.segment
        always_early = seg in ("prime", "bust_out", "cure_after_late")
        near_prime = seg == "near_prime"
        early_max = 5.0 if seg == "prime" else 3.0
        end_ms = ctx.end_ms
        for k in range(1, n + 1):
            due = ts + k * 30 * MS_PER_DAY
            if due - 6 * MS_PER_DAY >= end_ms:
                break
            if always_early or (near_prime and rng.random() < 0.75):
                early = rng.uniform(0.5, early_max)
                pay = ctx.at_day(ctx.day_of(due - int(early * MS_PER_DAY)), ctx.paying_hours, rng)
                if pay >= due - MS_PER_HOUR:
                    pay -= MS_PER_DAY
            elif seg == "near_prime":
                pay = ctx.at_day(ctx.day_of(due) + rng.randint(1, 10), ctx.paying_hours, rng)
            elif rng.random() < 0.5:  # subprime on time
                pay = ctx.at_day(ctx.day_of(due) - rng.randint(1, 2), ctx.paying_hours, rng)
            else:
                pay = ctx.at_day(ctx.day_of(due) + rng.randint(1, 25), ctx.paying_hours, rng)
            self._push(pay, _PAY, due)
        if n > 1 and rng.random() < self.profile.lump_share:
            self._push(ts + int(rng.uniform(3, 25) * MS_PER_DAY), _LUMP)

    def _paying_stopped(self, ts: int) -> bool:
        if self.busted:
            return True
        if self.stop_ts is not None and ts >= self.stop_ts:
            return True
        if self.episode_until is not None and ts < self.episode_until:
            return True
        if self.episode_start is not None and not self.episode_done and ts >= self.episode_start:
            first_due = self.sched.first_unpaid_due()
            if first_due is None:
                return False
            self.episode_done = True  # the one late episode starts now
            self.episode_until = max(ts, first_due) + self.rng.randint(10, 40) * MS_PER_DAY
            self._push(self.episode_until, _CURE)
            return True
        return False

    def _pay(self, ts: int, due: int) -> bool:
        if self._paying_stopped(ts):
            return False
        amount = self.sched.due_by(due)
        if amount <= 0:
            return False
        if self.segment == "subprime" and amount > 200_00 and self.rng.random() < 0.15:
            amount = int(amount * self.rng.uniform(0.4, 0.9)) // 100 * 100  # partial, whole CNY
        self._repay(ts, amount)
        return True

    def _lump(self, ts: int) -> bool:
        if self._paying_stopped(ts):
            return False
        amount = self.sched.unpaid_total()
        if amount <= 0:
            return False
        if self.rng.random() < 0.3:
            amount = (amount + 999) // 1000 * 1000  # rounds up to 10 CNY: leaves a credit balance
        self._repay(ts, amount)
        return True

    def _cure(self, ts: int) -> bool:
        amount = self.sched.due_by(ts)
        if amount <= 0:
            return False
        self._repay(ts, amount)
        return True

    def _bust(self, ts: int) -> bool:
        """The bust-out: within a day or two, spend up to and beyond the limit; never pay again."""
        rng, ctx = self.rng, self.ctx
        self.busted = True
        target = max(int(self.limit * rng.uniform(1.0, 1.3)) - self.sched.outstanding, self.limit // 3)
        k = rng.randint(3, 8)
        weights = [rng.uniform(0.5, 1.5) for _ in range(k)]
        total_w = sum(weights)
        amounts = [max(100_00, -(-int(target * w / total_w) // 100_00) * 100_00) for w in weights]  # whole 100s
        span = rng.uniform(0.3, 1.8) * MS_PER_DAY
        times = sorted([ts] + [ts + int(rng.random() * span) for _ in range(k - 1)])
        last = ts - 1000
        for when, amount in zip(times, amounts, strict=True):
            when = max(when, last + 1000)
            if when >= ctx.end_ms:
                break
            category = BURST_CATEGORIES[rng.randrange(len(BURST_CATEGORIES))]
            merchant = ctx.merchants.in_category(rng, category)
            n = (1, 1, 3, 3, 6)[rng.randrange(5)]
            self._book_purchase(when, merchant, category, amount, n)
            if self.bust_out_ts is None:
                self.bust_out_ts = when
            last = when
        # later events of this customer must come after the burst
        self._heap = [(max(t, last + 1000), s, kd, a) for t, s, kd, a in self._heap]
        heapq.heapify(self._heap)
        return True

    # -- truth ------------------------------------------------------------------------------------------
    def truth(self) -> dict[str, Any]:
        """Ground truth of this customer at the end of the window."""
        return user_truth(self.sched, self.ctx.end_ms, self.ctx.default_dpd, self.ctx.installments_truth,
                          segment=self.segment, signup_ts=self.signup_ts, credit_limit_fen=self.limit,
                          limit_sent=self.limit_sent, bust_out_ts=self.bust_out_ts)


def user_truth(sched: RepaymentSchedule, end_ms: int, default_dpd: int, with_installments: bool,
               **extra: Any) -> dict[str, Any]:
    """Ground truth read from a schedule that has seen exactly the customer's valid events."""
    default_ts = sched.first_reach(default_dpd, end_ms)
    truth: dict[str, Any] = dict(extra)
    truth.update({
        "purchases": sched.n_purchases,
        "repayments": sched.n_repayments,
        "purchases_fen": sched.purchased,
        "repayments_fen": sched.repaid,
        "outstanding_fen": sched.outstanding,
        "credit_balance_fen": sched.credit,
        "default_ts": default_ts,
        "first_30dpd": default_ts is not None,
        "dpd_at_end": sched.dpd_at(end_ms),
        "overdue_at_end_fen": sched.due_by(end_ms - 1),
    })
    if with_installments:
        truth["installments"] = [[i.purchase_id, i.k, i.due, i.amount, i.paid_ts] for i in sched.items]
    return truth
