"""CircuitBreaker: only retriable failures count; open fails fast; half-open admits one trial."""

from __future__ import annotations

import asyncio

import pytest

from copytrader.brokers.breaker import CircuitBreaker
from copytrader.brokers.errors import (
    BrokerUnavailable,
    CircuitOpen,
    OrderRejected,
    RateLimited,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def ok() -> str:
    return "ok"


async def down() -> str:
    raise BrokerUnavailable("connection refused")


async def rejected() -> str:
    raise OrderRejected("insufficient margin")


def make(clock: Clock, **kw: object) -> tuple[CircuitBreaker, list[tuple[str, str, str]]]:
    changes: list[tuple[str, str, str]] = []
    breaker = CircuitBreaker(
        "tradovate:demo",
        failure_threshold=3,
        reset_timeout=5.0,
        clock=clock,
        on_change=lambda *change: changes.append(change),
        **kw,  # type: ignore[arg-type]  # test kwargs
    )
    return breaker, changes


async def trip(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        with pytest.raises(BrokerUnavailable):
            await breaker.call(down)


async def test_opens_after_consecutive_retriable_failures_and_fails_fast() -> None:
    clock = Clock()
    breaker, changes = make(clock)
    await trip(breaker, 2)
    assert breaker.state == "closed"
    await trip(breaker, 1)
    assert breaker.state == "open"
    assert changes == [("tradovate:demo", "closed", "open")]
    calls = 0

    async def counted() -> str:
        nonlocal calls
        calls += 1
        return "ok"

    with pytest.raises(CircuitOpen) as info:
        await breaker.call(counted)
    assert calls == 0
    assert info.value.retriable is False
    assert breaker.retry_after == pytest.approx(5.0)
    assert isinstance(breaker.last_error, BrokerUnavailable)


async def test_success_resets_consecutive_count() -> None:
    breaker, _ = make(Clock())
    await trip(breaker, 2)
    assert await breaker.call(ok) == "ok"
    await trip(breaker, 2)
    assert breaker.state == "closed"


async def test_permanent_errors_do_not_count() -> None:
    breaker, _ = make(Clock())
    for _ in range(10):
        with pytest.raises(OrderRejected):
            await breaker.call(rejected)
    assert breaker.state == "closed"
    await trip(breaker, 2)
    with pytest.raises(OrderRejected):
        await breaker.call(rejected)  # the broker answered: the streak ends
    await trip(breaker, 2)
    assert breaker.state == "closed"


async def test_raw_timeouts_count_as_retriable() -> None:
    breaker, _ = make(Clock())
    for _ in range(3):
        with pytest.raises(TimeoutError):
            async with breaker.guard():
                raise TimeoutError
    assert breaker.state == "open"


async def test_half_open_trial_success_closes() -> None:
    clock = Clock()
    breaker, changes = make(clock)
    await trip(breaker, 3)
    clock.now += 5.0
    assert breaker.state == "half_open"
    assert breaker.retry_after == 0.0
    assert await breaker.call(ok) == "ok"
    assert breaker.state == "closed"
    assert [new for _, _, new in changes] == ["open", "half_open", "closed"]


async def test_half_open_trial_failure_reopens_with_new_cooldown() -> None:
    clock = Clock()
    breaker, changes = make(clock)
    await trip(breaker, 3)
    clock.now += 5.0
    await trip(breaker, 1)
    assert breaker.state == "open"
    clock.now += 4.9
    assert breaker.state == "open"
    clock.now += 0.1
    assert breaker.state == "half_open"
    assert [new for _, _, new in changes] == ["open", "half_open", "open", "half_open"]


async def test_half_open_permanent_error_closes() -> None:
    clock = Clock()
    breaker, _ = make(clock)
    await trip(breaker, 3)
    clock.now += 5.0
    with pytest.raises(OrderRejected):
        await breaker.call(rejected)
    assert breaker.state == "closed"


async def test_half_open_admits_only_one_trial() -> None:
    clock = Clock()
    breaker, _ = make(clock)
    await trip(breaker, 3)
    clock.now += 5.0
    release = asyncio.Event()

    async def slow() -> str:
        await release.wait()
        return "ok"

    trial = asyncio.ensure_future(breaker.call(slow))
    await asyncio.sleep(0)
    with pytest.raises(CircuitOpen, match="trial call in flight"):
        await breaker.call(ok)
    release.set()
    assert await asyncio.wait_for(trial, timeout=1) == "ok"
    assert breaker.state == "closed"


async def test_cancelled_trial_frees_the_slot() -> None:
    clock = Clock()
    breaker, _ = make(clock)
    await trip(breaker, 3)
    clock.now += 5.0
    trial = asyncio.ensure_future(breaker.call(asyncio.sleep, 10))
    await asyncio.sleep(0)
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial
    assert breaker.state == "half_open"
    assert await breaker.call(ok) == "ok"


async def test_failure_ratio_opens_a_flapping_circuit() -> None:
    clock = Clock()
    breaker, _ = make(clock, failure_ratio=0.5, ratio_window=10.0, min_calls=6)
    for _ in range(3):
        await breaker.call(ok)
        await trip(breaker, 1)
        clock.now += 1.0
    assert breaker.state == "open"


async def test_failure_ratio_forgets_old_calls() -> None:
    clock = Clock()
    breaker, _ = make(clock, failure_ratio=0.5, ratio_window=10.0, min_calls=4)
    await trip(breaker, 2)
    await breaker.call(ok)
    clock.now += 11.0
    await breaker.call(ok)
    await breaker.call(ok)
    await trip(breaker, 1)
    assert breaker.state == "closed"


async def test_guard_form_and_rate_limit_counts() -> None:
    breaker, _ = make(Clock())
    for _ in range(3):
        with pytest.raises(RateLimited):
            async with breaker.guard():
                raise RateLimited("slow down", retry_after=1.0)
    assert breaker.state == "open"


async def test_trip_reset_and_hook_errors_are_contained(caplog: pytest.LogCaptureFixture) -> None:
    def bad_hook(name: str, old: str, new: str) -> None:
        raise RuntimeError("dashboard down")

    breaker = CircuitBreaker("s", clock=Clock(), on_change=bad_hook)
    breaker.trip()
    assert breaker.state == "open"
    assert "on_change hook" in caplog.text
    breaker.reset()
    assert breaker.state == "closed"
    assert "closed" in repr(breaker)


def test_validation() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker("x", failure_threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker("x", failure_ratio=1.5)


async def cancelled() -> str:
    raise asyncio.CancelledError


@pytest.mark.parametrize("ratio", [None, 0.5])
async def test_call_keeps_the_books_exactly_as_guard_does(ratio: float | None) -> None:
    """``call`` is ``guard`` written out (the copy path's cost): the same outcomes, step by
    step, give the same state, answers, streak and transitions on both."""
    steps = [ok, down, down, rejected, down, down, cancelled, down, ok, down, down, down, ok, rejected, down]
    kw = {"min_calls": 4} if ratio is None else {"failure_ratio": ratio, "min_calls": 4}
    seen: list[list[tuple[str, str, int]]] = []
    for form in ("call", "guard"):
        clock = Clock()
        breaker, changes = make(clock, **kw)
        trace: list[tuple[str, str, int]] = []
        for step in steps:
            clock.now += 2.0  # an open circuit turns half-open after 5 s: every path is walked
            try:
                if form == "call":
                    answer = await breaker.call(step)
                else:
                    async with breaker.guard():
                        answer = await step()
            except BaseException as exc:  # noqa: BLE001 - the outcome is what is compared
                answer = type(exc).__name__
            trace.append((answer, breaker.state, breaker._consecutive))
        trace.extend((old, new, 0) for _, old, new in changes)
        seen.append(trace)
    assert seen[0] == seen[1]
    assert {"open", "half_open", "closed"} <= {state for _, state, _ in seen[0]}
