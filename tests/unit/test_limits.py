"""``riskmon.limits.consider_raise``: the raise rule, with peak utilisation replayed only when it matters."""

from __future__ import annotations

from riskmon.account import AccountState
from riskmon.config import Settings
from riskmon.eventtime import MS_PER_DAY
from riskmon.limits import consider_raise
from riskmon.policy import load_policy

POLICY = load_policy(Settings().policy_path)
NOW = 1_780_000_000_000


class Peak:
    """A peak-utilisation callable that counts how often it is asked."""

    def __init__(self, value: float) -> None:
        self.value = value
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return self.value


def _proven(**changes: object) -> AccountState:
    st = AccountState("u1", opened_ts=NOW - 200 * MS_PER_DAY, credit_limit=1_000_000, last_pd=0.01,
                      n_on_time=int(POLICY.limits["raise_min_on_time_installments"]))
    for k, v in changes.items():
        setattr(st, k, v)
    return st


def test_a_proven_heavy_user_gets_the_capped_raise() -> None:
    peak = Peak(0.9)
    dec = consider_raise(_proven(), POLICY, NOW, peak)
    assert dec is not None and dec.action == "raise"
    assert dec.new_limit == min(POLICY.raise_cap, 1_000_000 * (100 + int(POLICY.limits["raise_max_pct"])) // 100)
    assert peak.calls == 1


def test_low_peak_utilisation_means_no_raise() -> None:
    assert consider_raise(_proven(), POLICY, NOW, Peak(0.2)) is None


def test_peak_utilisation_is_not_replayed_when_a_cheap_condition_already_says_no() -> None:
    """The replay runs after every purchase; most accounts fail on history before it is needed."""
    for st in (_proven(n_on_time=0), _proven(frozen=True), _proven(dpd=3)):
        peak = Peak(0.9)
        assert consider_raise(st, POLICY, NOW, peak) is None
        assert peak.calls == 0
