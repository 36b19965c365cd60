"""The exact account ledger: limit, installments, repayments, credit balance.

Rules (issue: consumer credit):
- a purchase of A fen in n installments creates n installments, installment k due at ts + 30*k days,
  each A // n fen with the remainder added to the last;
- a repayment pays the oldest unpaid installment first (by due instant, then purchase, then k); excess
  becomes a credit balance that later installments consume as soon as they are created;
- an ``event_id`` is applied at most once (the caller checks :meth:`AccountState.seen`).

So outstanding principal = max(0, purchases - repayments) whatever the arrival order; which installment
is paid when depends on order only as the rules above define. All amounts are integer fen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from riskmon.eventtime import MS_PER_DAY

INSTALLMENT_PERIOD_MS = 30 * MS_PER_DAY


@dataclass(slots=True)
class Installment:
    """One installment of a purchase; ``paid_ts`` is set when it is paid in full."""

    purchase_id: str
    k: int
    due: int
    amount: int
    paid: int = 0
    paid_ts: int | None = None

    @property
    def unpaid(self) -> int:
        """Fen still owed on this installment."""
        return self.amount - self.paid

    def to_list(self) -> list[Any]:
        """Compact form for the state blob."""
        return [self.purchase_id, self.k, self.due, self.amount, self.paid, self.paid_ts]

    @classmethod
    def from_list(cls, v: list[Any]) -> Installment:
        """Inverse of :meth:`to_list`."""
        return cls(v[0], v[1], v[2], v[3], v[4], v[5])


def _due_order(i: Installment) -> tuple[int, str, int]:
    """Oldest-first order of installments: due instant, then purchase, then k."""
    return (i.due, i.purchase_id, i.k)


def split_installments(purchase_id: str, ts: int, amount: int, n: int) -> list[Installment]:
    """Split a purchase into n installments (floor to the fen, remainder on the last).

    >>> [i.amount for i in split_installments("p", 0, 1000, 3)]
    [333, 333, 334]
    """
    base = amount // n
    out = [Installment(purchase_id, k, ts + INSTALLMENT_PERIOD_MS * k, base) for k in range(1, n + 1)]
    out[-1].amount += amount - base * n
    return out


@dataclass(slots=True)
class Payment:
    """What a repayment did: installments it completed (with whether each was on time)."""

    completed: list[tuple[Installment, bool]] = field(default_factory=list)
    to_credit: int = 0


class Ledger:
    """Installments and credit balance of one account (the money part of the account state)."""

    __slots__ = ("_by_due", "_by_due_len", "_by_due_of", "_outstanding", "credit_balance", "installments",
                 "purchased", "repaid")

    def __init__(self) -> None:
        self.installments: list[Installment] = []  # unpaid ones + recently paid (pruned by caller)
        self.credit_balance = 0
        self.purchased = 0
        self.repaid = 0
        self._outstanding: int | None = None  # cached sum; every mutation below resets it
        self._by_due: list[int] = []  # cached :meth:`due_order` of ``_by_due_of`` at ``_by_due_len`` entries
        self._by_due_of: list[Installment] | None = None
        self._by_due_len = 0

    @property
    def outstanding(self) -> int:
        """Unpaid principal in fen.

        Cached: a purchase reads it four times (utilisation before and after, features, peak utilisation)
        and each read summed every installment. Only :meth:`purchase` and :meth:`repay` change what is
        unpaid, and both reset the cache.
        """
        if self._outstanding is None:
            self._outstanding = sum(i.amount - i.paid for i in self.installments if i.paid_ts is None)
        return self._outstanding

    def unpaid(self) -> list[Installment]:
        """Unpaid installments, oldest first (in :meth:`due_order`, which is kept, rather than sorted again)."""
        src = self.installments
        return [src[n] for n in self.due_order() if src[n].paid_ts is None]

    def due_order(self) -> list[int]:
        """Indices into ``installments``, oldest first (due, purchase, k; ledger order on a tie).

        Why: the collection timeline asks, at every step of every touched account, for the oldest
        installment unpaid at its cursor and the next pre-due reminder. A mature account holds tens of
        installments (24-month plans), almost all due months ahead, so walking them oldest first and
        stopping at the first that cannot matter replaces a scan of all of them (docs/performance.md,
        session 13). Cached, and checked rather than invalidated: the order depends only on which
        installments the list holds (their due, purchase and k never change), and the list only grows
        (:meth:`purchase`) or is replaced (:meth:`prune_paid`, :meth:`from_dict`), so the same list
        object at the same length has the same order. Paying changes neither.
        """
        src = self.installments
        if self._by_due_of is not src or self._by_due_len != len(src):
            self._by_due = sorted(range(len(src)), key=lambda n: _due_order(src[n]))
            self._by_due_of, self._by_due_len = src, len(src)
        return self._by_due

    def oldest_unpaid(self) -> Installment | None:
        """The installment that drives DPD: the first of :meth:`unpaid`, the first unpaid in :meth:`due_order`."""
        src = self.installments
        for n in self.due_order():
            inst = src[n]
            if inst.paid_ts is None:
                return inst
        return None

    def purchase(self, purchase_id: str, ts: int, amount: int, n: int, grace_ms: int) -> Payment:
        """Add a purchase's installments; a credit balance pays them at once (oldest first)."""
        self.purchased += amount
        self._outstanding = None
        self.installments.extend(split_installments(purchase_id, ts, amount, n))
        if self.credit_balance:
            credit, self.credit_balance = self.credit_balance, 0
            return self._pay(credit, ts, grace_ms)
        return Payment()

    def repay(self, ts: int, amount: int, grace_ms: int) -> Payment:
        """Apply a repayment to the oldest unpaid installments; the excess becomes credit balance."""
        self.repaid += amount
        self._outstanding = None
        return self._pay(amount, ts, grace_ms)

    def _pay(self, amount: int, ts: int, grace_ms: int) -> Payment:
        result = Payment()
        for inst in self.unpaid():
            if amount <= 0:
                break
            take = min(amount, inst.unpaid)
            inst.paid += take
            amount -= take
            if inst.unpaid == 0:
                inst.paid_ts = ts
                result.completed.append((inst, ts <= inst.due + grace_ms))
        if amount > 0:
            self.credit_balance += amount
            result.to_credit = amount
        return result

    def prune_paid(self, keep_after_ts: int) -> int:
        """Forget installments paid before ``keep_after_ts`` (their effects live in counters); how many."""
        kept = [i for i in self.installments if i.paid_ts is None or i.paid_ts >= keep_after_ts]
        removed = len(self.installments) - len(kept)
        if removed:  # the same list otherwise: :meth:`due_order` stays cached (prune runs at every touch)
            self.installments = kept
        return removed

    def to_dict(self) -> dict[str, Any]:
        """Compact form for the state blob."""
        return {
            "i": [i.to_list() for i in self.installments],
            "cb": self.credit_balance,
            "pu": self.purchased,
            "re": self.repaid,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Ledger:
        """Inverse of :meth:`to_dict`."""
        led = cls()
        led.installments = [Installment.from_list(v) for v in d.get("i", ())]
        led.credit_balance = d.get("cb", 0)
        led.purchased = d.get("pu", 0)
        led.repaid = d.get("re", 0)
        return led
