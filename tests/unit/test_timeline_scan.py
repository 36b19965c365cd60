"""The collection timeline's scan (``Engine._pending``) against its definition, on random ledgers.

Why: the scan walks the ledger oldest first and stops early, and ``advance`` reuses the last scan of an
account that has not changed (docs/performance.md, session 13). Both are only allowed to be faster, never
different: the reference below builds every candidate instant and takes the minimum of (instant, kind,
scan order), which is what the docstring of ``_pending`` promises. The random ledgers are built to make
ties common (purchases on the same instant or exactly one installment period apart, cursors just past
pre-due instants), since ties are where a changed scan order would show.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from riskmon.account import AccountState, Episode
from riskmon.config import Settings
from riskmon.contract import decode
from riskmon.engine import Engine
from riskmon.eventtime import MS_PER_DAY, parse_ts
from riskmon.ledger import INSTALLMENT_PERIOD_MS, Ledger
from riskmon.policy import load_policy
from tests.unit.builders import Stream

T0 = parse_ts("2026-03-01T02:00:00Z")
HOUR = 3_600_000


def _engine() -> Engine:
    return Engine(load_policy(Settings().policy_path), lateness_ms=6 * HOUR, dedup_window_ms=45 * MS_PER_DAY)


def reference_pending(engine: Engine, st: AccountState) -> tuple[int, str, Any] | None:
    """Every candidate, then the minimum of (instant, kind, order of the scan): the definition."""
    cur = st.coll_cursor
    cands: list[tuple[int, str, tuple[int, ...], Any]] = []
    for i, d in enumerate(st.deferred):
        cands.append((max(d[0], cur), "0deferred", (i,), d))
    unpaid = [(n, inst) for n, inst in enumerate(st.ledger.installments)
              if inst.paid_ts is None or inst.paid_ts > cur]
    reminded = set(st.reminded)
    for n, inst in unpaid:
        ref = f"{inst.purchase_id}:{inst.k}"
        if ref in reminded:
            continue
        for j, step in enumerate(engine.pre_due_steps):
            at = inst.due + step.offset_days * MS_PER_DAY
            if at > cur or inst.due > cur:
                cands.append((max(at, cur), "1predue", (n, j), (inst, step, ref)))
    if unpaid:
        oldest = min(unpaid, key=lambda p: (p[1].due, p[1].purchase_id, p[1].k))[1]
        fired = st.episode.fired if st.episode else ()
        step = next((s for s in engine.dpd_steps if s.kind not in fired), None)
        if step is not None:
            cands.append((max(oldest.due + step.offset_days * MS_PER_DAY, cur), "2step", (0,), (oldest, step)))
    for n, inst in enumerate(st.ledger.installments):
        if inst.paid_ts is not None and inst.paid_ts > cur:
            cands.append((inst.paid_ts, "3payment", (n,), inst))
    for i, lab in enumerate(st.labels):
        cands.append((max(lab[1] + engine.default_ms, cur), "4label", (i,), lab))
    if not cands:
        return None
    t, kind, _, payload = min(cands, key=lambda c: c[:3])
    return t, kind, payload


def _same(got: tuple[int, str, Any] | None, want: tuple[int, str, Any] | None) -> bool:
    """Equal instants and kinds, and the very same objects as payload (the timeline mutates them)."""
    if got is None or want is None:
        return got is want
    if got[:2] != want[:2]:
        return False
    if isinstance(want[2], tuple):
        return all(a is b or (isinstance(b, str) and a == b) for a, b in zip(got[2], want[2], strict=True))
    return got[2] is want[2]


def _random_account(rng: random.Random, engine: Engine) -> AccountState:
    st = AccountState(f"u{rng.randrange(10**6)}", opened_ts=T0)
    led = Ledger()
    ts = T0
    for p in range(rng.randrange(0, 9)):
        ts += rng.choice((0, 0, HOUR, MS_PER_DAY, INSTALLMENT_PERIOD_MS, rng.randrange(40 * MS_PER_DAY)))
        led.purchase(f"p{p:02d}" if rng.random() < 0.7 else f"q{rng.randrange(99)}", ts,
                     rng.randrange(100, 100_000), rng.choice((1, 3, 6, 12, 24)), engine.grace_ms)
        if rng.random() < 0.4:
            led.repay(ts + rng.randrange(60 * MS_PER_DAY), rng.randrange(1, 60_000), engine.grace_ms)
    st.ledger = led
    dues = [i.due for i in led.installments] or [T0]
    anchor = rng.choice(dues)
    # cursors just past a pre-due instant make several reminders clamp to the cursor: ties
    st.coll_cursor = anchor + rng.choice((-3 * MS_PER_DAY, -2 * MS_PER_DAY, -1, 0, 1, MS_PER_DAY,
                                          rng.randrange(-90 * MS_PER_DAY, 90 * MS_PER_DAY)))
    refs = [f"{i.purchase_id}:{i.k}" for i in led.installments]
    st.reminded = rng.sample(refs, rng.randrange(0, len(refs) + 1)) if refs else []
    st.deferred = [[st.coll_cursor + rng.randrange(-HOUR, 5 * MS_PER_DAY), "repayment_reminder", r, 0, T0]
                   for r in rng.sample(refs, min(len(refs), rng.randrange(0, 3)))]
    st.labels = [[f"p{k:02d}", rng.choice(dues) - rng.randrange(0, 40 * MS_PER_DAY), {}, 0.1, 0.1, False]
                 for k in range(rng.randrange(0, 4))]
    if rng.random() < 0.3:
        st.episode = Episode("e1", anchor, fired=rng.sample([s.kind for s in engine.dpd_steps], rng.randrange(0, 4)))
    return st


def test_pending_is_the_minimum_over_every_candidate_on_random_ledgers() -> None:
    engine = _engine()
    rng = random.Random(20261201)
    ties = 0
    for _ in range(3000):
        st = _random_account(rng, engine)
        want = reference_pending(engine, st)
        got = engine._pending(st)
        assert _same(got, want), (got, want, st)
        cur = st.coll_cursor
        ties += sum(1 for i in st.ledger.installments if i.due - 3 * MS_PER_DAY <= cur < i.due) > 1
    assert ties > 100  # the generator does produce the tied reminders this test is about


def test_oldest_unpaid_and_due_order_follow_purchases_payments_and_pruning() -> None:
    led = Ledger()
    led.purchase("b", T0, 300, 3, 0)
    led.purchase("a", T0, 300, 3, 0)  # same dues as "b": purchase id breaks the tie
    assert [(led.installments[n].purchase_id, led.installments[n].k) for n in led.due_order()] == [
        ("a", 1), ("b", 1), ("a", 2), ("b", 2), ("a", 3), ("b", 3)]
    assert led.oldest_unpaid() is led.installments[3]
    led.repay(T0 + MS_PER_DAY, 150, 0)  # pays a:1 and half of b:1; the order is unchanged, the oldest is not
    assert (led.oldest_unpaid().purchase_id, led.oldest_unpaid().k) == ("b", 1)
    led.purchase("c", T0 - 5 * MS_PER_DAY, 100, 1, 0)  # a late, older purchase goes first
    assert led.installments[led.due_order()[0]].purchase_id == "c"
    assert led.prune_paid(T0 + 2 * MS_PER_DAY) == 1  # a:1 goes: the order is rebuilt for the new list
    assert [(led.installments[n].purchase_id, led.installments[n].k) for n in led.due_order()] == [
        ("c", 1), ("b", 1), ("a", 2), ("b", 2), ("a", 3), ("b", 3)]


@pytest.mark.parametrize("seed", [1, 2])
def test_a_timer_only_advance_reuses_the_last_scan_and_changes_nothing(seed: int) -> None:
    """Accounts whose timers fire without events give the same outputs and states with and without reuse."""
    rng = random.Random(seed)
    s = Stream()
    users = [f"u{k}" for k in range(12)]
    for u in users:
        s.account(u, T0)
        for p in range(rng.randrange(1, 5)):
            s.purchase(u, T0 + HOUR + p * rng.randrange(1, 20) * MS_PER_DAY, f"{rng.randrange(100, 3000)}.00",
                       installments=rng.choice((1, 3, 6)))
        if rng.random() < 0.5:
            s.repay(u, T0 + rng.randrange(20, 80) * MS_PER_DAY, f"{rng.randrange(50, 2000)}.00")
    events = [decode(topic, value) for topic, value in s.sorted()]
    reuse = _engine()
    states_a: dict[str, AccountState] = {u: AccountState(u) for u in users}
    reuse.process(events, states_a, events[-1].ts)
    fresh, states_b = copy.deepcopy((reuse, states_a))  # the same model and states from here on
    wm = events[-1].ts
    for _ in range(60):  # then only the clock moves: every touch is a timer-only one
        wm += rng.randrange(1, 4) * MS_PER_DAY
        due = [u for u in users if (reuse.next_timer(states_a[u]) or wm + 1) <= wm]
        for u in users:
            states_b[u].next_at = False  # forget the last scan: every advance scans afresh
        out_a = reuse.process([], states_a, wm, due).outputs
        out_b = fresh.process([], states_b, wm, due).outputs
        assert out_a == out_b
        assert [states_a[u].to_bytes() for u in users] == [states_b[u].to_bytes() for u in users]
    assert any(states_a[u].labels == [] and states_a[u].reminded for u in users)  # the clock did reach them
