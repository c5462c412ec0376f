"""RateBudget: sliding windows, strict priority then FIFO, penalties, headroom.

Deterministic: a fake clock drives the budget; the only real waiting is ``asyncio.sleep(0)``.
"""

from __future__ import annotations

import asyncio

import pytest

from copytrader.brokers.ratebudget import Priority, RateBudget


class FakeClock:
    """``clock()`` returns ``now``; ``sleep`` resolves only when ``advance`` passes its deadline."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + seconds, future))
        await future

    async def advance(self, seconds: float) -> None:
        """Move time and let every task that can run now run (a few loop turns, no real sleep)."""
        self.now += seconds
        for deadline, future in list(self._sleepers):
            if deadline <= self.now + 1e-9 and not future.done():
                future.set_result(None)
        self._sleepers = [(d, f) for d, f in self._sleepers if not f.done()]
        await settle()


async def settle(turns: int = 10) -> None:
    """Yield to the loop a few times so woken tasks reach their next await."""
    for _ in range(turns):
        await asyncio.sleep(0)


def make_budget(clock: FakeClock, limits: list[tuple[int, float]]) -> RateBudget:
    return RateBudget(limits, name="test", clock=clock, sleep=clock.sleep)


def spawn(budget: RateBudget, label: str, priority: Priority, served: list[str]) -> asyncio.Task[None]:
    async def go() -> None:
        await budget.acquire(priority)
        served.append(label)

    return asyncio.get_running_loop().create_task(go())


async def test_grants_immediately_while_room() -> None:
    clock = FakeClock()
    budget = make_budget(clock, [(3, 1.0)])
    for _ in range(3):
        await asyncio.wait_for(budget.acquire(), timeout=1)
    assert budget.headroom == 0.0


async def test_no_burst_beyond_budget_and_sliding_window() -> None:
    clock = FakeClock()
    budget = make_budget(clock, [(2, 1.0)])
    served: list[str] = []
    tasks = [spawn(budget, f"e{i}", Priority.ENTRY, served) for i in range(5)]
    await settle()
    assert served == ["e0", "e1"]
    await clock.advance(0.5)
    assert served == ["e0", "e1"]
    await clock.advance(0.5)
    assert served == ["e0", "e1", "e2", "e3"]
    await clock.advance(1.0)
    assert served == ["e0", "e1", "e2", "e3", "e4"]
    await asyncio.gather(*tasks)


async def test_window_slides_rather_than_resets() -> None:
    clock = FakeClock()
    budget = make_budget(clock, [(2, 1.0)])
    served: list[str] = []
    await budget.acquire()  # t=0
    await clock.advance(0.6)
    await budget.acquire()  # t=0.6
    task = spawn(budget, "third", Priority.ENTRY, served)
    await settle()
    assert served == []
    await clock.advance(0.4)  # t=1.0: the t=0 grant leaves the window
    assert served == ["third"]
    await task


async def test_priority_overtakes_queued_entries_then_fifo() -> None:
    clock = FakeClock()
    budget = make_budget(clock, [(1, 1.0)])
    served: list[str] = []
    await budget.acquire()
    tasks = [
        spawn(budget, "entry1", Priority.ENTRY, served),
        spawn(budget, "entry2", Priority.ENTRY, served),
        spawn(budget, "modify", Priority.MODIFY, served),
        spawn(budget, "exit1", Priority.EXIT, served),
        spawn(budget, "cancel", Priority.CANCEL, served),
        spawn(budget, "exit2", Priority.EXIT, served),
    ]
    await settle()
    assert budget.waiting == 6
    for _ in range(6):
        await clock.advance(1.0)
    assert served == ["cancel", "exit1", "exit2", "modify", "entry1", "entry2"]
    await asyncio.gather(*tasks)


async def test_cancel_arriving_while_pump_sleeps_goes_next() -> None:
    clock = FakeClock()
    budget = make_budget(clock, [(1, 1.0)])
    served: list[str] = []
    await budget.acquire()
    tasks = [spawn(budget, f"entry{i}", Priority.ENTRY, served) for i in range(2)]
    await settle()
    await clock.advance(0.5)
    tasks.append(spawn(budget, "cancel", Priority.CANCEL, served))
    await settle()
    await clock.advance(0.5)
    assert served == ["cancel"]
    await clock.advance(1.0)
    await clock.advance(1.0)
    assert served == ["cancel", "entry0", "entry1"]
    await asyncio.gather(*tasks)


async def test_newcomer_does_not_jump_queue_when_slot_frees() -> None:
    clock = FakeClock()
    budget = make_budget(clock, [(1, 1.0)])
    served: list[str] = []
    await budget.acquire()
    first = spawn(budget, "queued", Priority.ENTRY, served)
    await settle()
    clock.now += 1.0  # slot free, but the pump has not run yet
    late = spawn(budget, "late", Priority.ENTRY, served)
    await clock.advance(0)
    await clock.advance(1.0)
    assert served == ["queued", "late"]
    await asyncio.gather(first, late)


async def test_every_window_must_have_room() -> None:
    clock = FakeClock()
    budget = make_budget(clock, [(3, 1.0), (4, 10.0)])
    served: list[str] = []
    for _ in range(3):
        await budget.acquire()
    tasks = [spawn(budget, f"e{i}", Priority.ENTRY, served) for i in range(2)]
    await clock.advance(1.0)
    assert served == ["e0"]  # the long window now holds 4
    await clock.advance(8.0)
    assert served == ["e0"]
    await clock.advance(1.0)
    assert served == ["e0", "e1"]
    await asyncio.gather(*tasks)


async def test_penalize_blocks_everyone_until_expiry() -> None:
    clock = FakeClock()
    budget = make_budget(clock, [(10, 1.0)])
    budget.penalize(5.0)
    assert budget.headroom == 0.0
    served: list[str] = []
    tasks = [
        spawn(budget, "entry", Priority.ENTRY, served),
        spawn(budget, "cancel", Priority.CANCEL, served),
    ]
    await clock.advance(4.9)
    assert served == []
    await clock.advance(0.1)
    assert served == ["cancel", "entry"]
    assert budget.headroom == pytest.approx(0.8)
    await asyncio.gather(*tasks)


async def test_penalize_extends_never_shortens() -> None:
    clock = FakeClock()
    budget = make_budget(clock, [(10, 1.0)])
    budget.penalize(5.0)
    budget.penalize(1.0)
    assert budget.wait_time() == pytest.approx(5.0)
    budget.penalize(0)
    assert budget.wait_time() == pytest.approx(5.0)


async def test_penalty_during_pump_sleep_is_honoured() -> None:
    clock = FakeClock()
    budget = make_budget(clock, [(1, 1.0)])
    served: list[str] = []
    await budget.acquire()
    task = spawn(budget, "entry", Priority.ENTRY, served)
    await settle()
    budget.penalize(3.0)
    await clock.advance(1.0)
    assert served == []
    await clock.advance(2.0)
    assert served == ["entry"]
    await task


async def test_cancelled_waiter_is_skipped() -> None:
    clock = FakeClock()
    budget = make_budget(clock, [(1, 1.0)])
    served: list[str] = []
    await budget.acquire()
    doomed = spawn(budget, "doomed", Priority.CANCEL, served)
    survivor = spawn(budget, "survivor", Priority.ENTRY, served)
    await settle()
    doomed.cancel()
    await settle()
    assert budget.waiting == 1
    await clock.advance(1.0)
    assert served == ["survivor"]
    await survivor
    assert doomed.cancelled()


async def test_headroom_reports_tightest_window() -> None:
    clock = FakeClock()
    budget = make_budget(clock, [(4, 1.0), (10, 60.0)])
    assert budget.headroom == 1.0
    for _ in range(2):
        await budget.acquire()
    assert budget.headroom == pytest.approx(0.5)
    await clock.advance(1.0)
    assert budget.headroom == pytest.approx(0.8)


async def test_unlimited_budget_and_validation() -> None:
    budget = RateBudget([], name="free")
    await asyncio.wait_for(budget.acquire(), timeout=1)
    assert budget.headroom == 1.0
    with pytest.raises(ValueError):
        RateBudget([(0, 1.0)])
    with pytest.raises(ValueError):
        RateBudget([(1, 0.0)])


async def test_real_clock_smoke() -> None:
    """Default clock/sleep: a tiny window so the real wait is a few milliseconds."""
    budget = RateBudget([(1, 0.01)], name="real")
    await budget.acquire()
    await asyncio.wait_for(budget.acquire(Priority.EXIT), timeout=1)
    assert "real" in repr(budget)


async def test_try_acquire_grants_a_free_slot_and_refuses_when_full_waited_for_or_penalized() -> None:
    """The fast path the transports take before bounding ``acquire`` by the copy's deadline:
    a slot counted exactly as ``acquire`` counts it, and never one that ``acquire`` would make
    its caller wait for (full windows, a caller already waiting, a penalty)."""
    clock = FakeClock()
    budget = make_budget(clock, [(2, 1.0)])
    assert budget.try_acquire() and budget.try_acquire()
    assert not budget.try_acquire()  # the window is full: nothing granted, nothing changed
    assert budget.headroom == 0.0
    served: list[str] = []
    waiting = spawn(budget, "w", Priority.ENTRY, served)
    await asyncio.sleep(0)
    await clock.advance(1.0)
    assert served == ["w"]
    await waiting
    assert budget.try_acquire()  # one slot of the slid window left
    budget.penalize(5.0)
    await clock.advance(1.0)
    assert not budget.try_acquire()  # room in the window, but the server said wait
    await clock.advance(4.0)
    assert budget.try_acquire()
    queued = spawn(budget, "q1", Priority.ENTRY, served)
    queued2 = spawn(budget, "q2", Priority.ENTRY, served)
    await asyncio.sleep(0)
    assert not budget.try_acquire()  # callers wait: a newcomer never jumps the queue
    await clock.advance(1.0)
    await clock.advance(1.0)
    await asyncio.gather(queued, queued2)
    assert served == ["w", "q1", "q2"]
