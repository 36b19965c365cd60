"""Where `riskmon bench` opens its throughput window: only once every worker is in a stable group.

Why it matters: the first worker to join takes every partition and starts at once; the second's join
then stops the group for a rebalance of seconds. A window opened on the lone first member measured that
rebalance as if it were two-worker throughput (6,084/s against 7,586/s on the same data).
"""

from __future__ import annotations

from riskmon.bench import drain


class ScriptedGroup:
    """A group whose committed total and stable membership follow a script, one entry per poll."""

    def __init__(self, total: int, script: list[tuple[int, int]]) -> None:
        self.group = "g"
        self.total = total
        self.script = script
        self.polls = 0
        self.member_checks = 0

    def committed(self) -> int:
        done, _ = self.script[min(self.polls, len(self.script) - 1)]
        self.polls += 1
        return done

    def members_stable(self) -> int:
        self.member_checks += 1
        return self.script[min(self.polls - 1, len(self.script) - 1)][1]


def test_the_window_opens_when_all_members_are_in_a_stable_group() -> None:
    # (committed, stable members): the lone first member consumes 300 during the rebalance (0 = not stable)
    group = ScriptedGroup(1000, [(0, 0), (100, 1), (300, 0), (400, 2), (700, 2), (1000, 2)])
    res = drain.watch_drain(group, {}, [], timeout_s=10, interval=0.0, members=2)  # type: ignore[arg-type]
    assert res.total == 1000 and res.counted == 600  # from the 400 committed when both were in


def test_a_single_worker_opens_at_its_first_progress_in_a_stable_group() -> None:
    group = ScriptedGroup(1000, [(0, 1), (100, 1), (1000, 1)])
    res = drain.watch_drain(group, {}, [], timeout_s=10, interval=0.0)  # type: ignore[arg-type]
    assert res.counted == 900


def test_a_group_that_drains_before_it_settles_is_measured_whole() -> None:
    group = ScriptedGroup(1000, [(0, 0), (500, 1), (1000, 1)])
    res = drain.watch_drain(group, {}, [], timeout_s=10, interval=0.0, members=2)  # type: ignore[arg-type]
    assert res.counted == 1000 and res.seconds == res.wall_s


def test_progress_is_recorded_for_a_rate_over_the_same_events() -> None:
    """(c) is compared with (d) over the messages (d) was measured on, from (c)'s own progress."""
    group = ScriptedGroup(1000, [(0, 1), (100, 1), (400, 1), (700, 1), (1000, 1)])
    res = drain.watch_drain(group, {}, [], timeout_s=10, interval=0.0)  # type: ignore[arg-type]
    assert [n for _, n in res.progress] == [0, 100, 400, 700, 1000]
    t400 = dict((n, t) for t, n in res.progress)[400]
    assert res.rate_from(400) == 600 / (res.progress[-1][0] - t400)
    assert res.rate_from(1000) is None  # nothing after the last message


def test_rate_from_reads_the_first_sample_at_or_past_the_count() -> None:
    res = drain.DrainResult(100, 9.0, 90, 10.0, progress=[(1.0, 10), (3.0, 40), (10.0, 100)])
    assert res.rate_from(30) == 60 / 7.0  # from (3.0, 40): the first sample at or past 30
    assert res.rate_from(0) == 90 / 9.0
    assert drain.DrainResult(100, 9.0, 90, 10.0).rate_from(10) is None  # no samples
