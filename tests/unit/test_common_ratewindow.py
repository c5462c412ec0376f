"""The one sliding rate window: counting, expiry at ``t + seconds``, waits and history."""

from __future__ import annotations

import pytest

from copytrader.common.ratewindow import SlidingWindow


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_admit_counts_until_full_and_refusals_cost_nothing() -> None:
    clock = FakeClock()
    window = SlidingWindow(2, 10.0, clock=clock)
    assert window.admit() and window.admit()
    assert not window.admit()
    assert window.count() == 2  # the refused event was not counted
    clock.now += 9.5
    assert not window.room()
    clock.now += 0.5  # the first events leave at exactly t + seconds
    assert window.room() and window.count() == 0


def test_wait_names_the_event_that_must_leave_first() -> None:
    clock = FakeClock()
    window = SlidingWindow(2, 10.0, clock=clock)
    window.record()
    clock.now += 3.0
    window.record()
    clock.now += 1.0
    window.record()  # recorded although full: three inside, limit two
    assert window.count() == 3
    # Room needs two to leave: the second one (recorded at 103) leaves at 113, now is 104.
    assert window.wait() == pytest.approx(9.0)
    clock.now = 113.0
    assert window.wait() == 0.0 and window.count() == 1


def test_headroom_and_explicit_now() -> None:
    clock = FakeClock()
    window = SlidingWindow(4, 1.0, clock=clock)
    assert window.headroom() == 1.0
    window.record(now=100.0)
    assert window.headroom() == 0.75
    assert window.headroom(now=101.0) == 1.0  # an explicit instant wins over the clock


def test_history_carries_into_a_new_limit() -> None:
    clock = FakeClock()
    old = SlidingWindow(5, 60.0, clock=clock)
    for _ in range(3):
        old.record()
        clock.now += 1.0
    new = SlidingWindow(3, 60.0, clock=clock, history=old.history())
    assert not new.room()
    new.clear()
    assert new.room()


def test_zero_limit_refuses_everything() -> None:
    window = SlidingWindow(0, 1.0, clock=FakeClock())
    assert not window.admit()
    assert window.wait() == float("inf")
    assert window.headroom() == 0.0


@pytest.mark.parametrize(("limit", "seconds"), [(-1, 1.0), (1, 0.0), (1, -1.0)])
def test_invalid_windows_are_refused(limit: int, seconds: float) -> None:
    with pytest.raises(ValueError):
        SlidingWindow(limit, seconds)
