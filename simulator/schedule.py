"""The simulator's own copy of the installment ledger rule, in integer fen.

The rule (issue 2): a purchase of A fen in n installments creates n installments; installment k is due
at purchase ts + 30*k days and is A // n, the remainder going to the last one. A repayment pays the
unpaid installment with the earliest due instant first (ties: purchase event_id, then k); any excess becomes a
credit balance, which a later purchase consumes at its own ts. Hence, at all times,
``unpaid - credit_balance == purchased - repaid``.

Why a separate implementation: ground truth must not share code with the pipeline's ledger, or a bug
in one would hide in both. The simulator also needs it to decide what a customer owes when it plans a
payment.
"""

from __future__ import annotations

import bisect

from riskmon.eventtime import MS_PER_DAY

INSTALLMENT_PERIOD_MS = 30 * MS_PER_DAY


class Installment:
    """One installment of a purchase (``paid_ts`` is set when it is paid in full)."""

    __slots__ = ("amount", "due", "k", "order_id", "paid", "paid_ts", "purchase_id")

    def __init__(self, due: int, purchase_id: str, k: int, amount: int, order_id: str) -> None:
        self.due = due
        self.purchase_id = purchase_id
        self.k = k
        self.amount = amount
        self.order_id = order_id
        self.paid = 0
        self.paid_ts: int | None = None

    @property
    def remaining(self) -> int:
        """Fen still owed on this installment."""
        return self.amount - self.paid


def split_installments(amount: int, n: int) -> list[int]:
    """The installment amounts of a purchase: floor to the fen, remainder on the last.

    >>> split_installments(100_00, 3)
    [3333, 3333, 3334]
    """
    base = amount // n
    return [base] * (n - 1) + [amount - base * (n - 1)]


class RepaymentSchedule:
    """One customer's installments, payments and credit balance, applied in event-time order."""

    __slots__ = ("_head", "_keys", "credit", "items", "n_purchases", "n_repayments", "purchased", "repaid")

    def __init__(self) -> None:
        self.items: list[Installment] = []  # sorted by (due, purchase event_id, k) like the pipeline
        self._keys: list[tuple[int, str, int]] = []  # the sort keys, bisected in C
        self._head = 0  # index of the first installment that may be unpaid
        self.credit = 0
        self.purchased = 0
        self.repaid = 0
        self.n_purchases = 0
        self.n_repayments = 0

    def purchase(self, ts: int, purchase_id: str, amount: int, installments: int, order_id: str = "") -> None:
        """Book a purchase (``purchase_id`` = its event_id): create its installments, then let any
        credit balance pay them."""
        self.purchased += amount
        self.n_purchases += 1
        for k, part in enumerate(split_installments(amount, installments), start=1):
            due = ts + k * INSTALLMENT_PERIOD_MS
            key = (due, purchase_id, k)
            pos = bisect.bisect_right(self._keys, key)
            self._keys.insert(pos, key)
            inst = Installment(due, purchase_id, k, part, order_id)
            if part == 0:
                inst.paid_ts = ts  # a 0-fen installment (amount < n fen) is never owed: settled at once
            self.items.insert(pos, inst)
            if pos < self._head:
                self._head = pos
        if self.credit:
            credit, self.credit = self.credit, 0
            self._allocate(ts, credit)

    def repay(self, ts: int, amount: int) -> None:
        """Book a repayment: oldest-due unpaid installment first, excess to the credit balance."""
        self.repaid += amount
        self.n_repayments += 1
        self._allocate(ts, amount)

    def _allocate(self, ts: int, amount: int) -> None:
        items = self.items
        i = self._head
        n = len(items)
        while amount and i < n:
            inst = items[i]
            rem = inst.amount - inst.paid
            if rem:
                take = rem if rem <= amount else amount
                inst.paid += take
                amount -= take
                if inst.paid == inst.amount:
                    inst.paid_ts = ts
            i += 1
        while self._head < n and items[self._head].paid == items[self._head].amount:
            self._head += 1
        self.credit += amount

    @property
    def outstanding(self) -> int:
        """Unpaid principal net of the credit balance (never negative)."""
        return max(0, self.purchased - self.repaid)

    def due_by(self, ts: int) -> int:
        """Fen owed on installments due at or before ``ts``."""
        total = 0
        for inst in self.items[self._head:]:
            if inst.due > ts:
                break
            total += inst.amount - inst.paid
        return total

    def unpaid_total(self) -> int:
        """Fen owed on all installments, due or not."""
        return sum(inst.amount - inst.paid for inst in self.items[self._head:])

    def first_unpaid_due(self) -> int | None:
        """Due instant of the oldest unpaid installment, or None."""
        for inst in self.items[self._head:]:
            if inst.paid < inst.amount:
                return inst.due
        return None

    def dpd_at(self, ts: int) -> int:
        """Days past due at ``ts``: whole days since the oldest unpaid installment fell due (0 if none)."""
        due = self.first_unpaid_due()
        if due is None or due >= ts:
            return 0
        return (ts - due) // MS_PER_DAY

    def first_reach(self, dpd_days: int, end_ms: int) -> int | None:
        """First instant before ``end_ms`` at which an installment was ``dpd_days`` past due and unpaid.

        An installment due at D reaches N DPD at D + N days unless it was fully paid strictly before.
        """
        offset = dpd_days * MS_PER_DAY
        for inst in self.items:  # sorted by due, so the first match is the earliest instant
            at = inst.due + offset
            if at >= end_ms:
                return None
            if inst.paid_ts is None or inst.paid_ts >= at:
                return at
        return None
