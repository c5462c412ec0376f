"""``call_until`` runs the first attempt without tenacity's machinery, yet retries exactly as the
``until`` loop it stands in for: same attempts, waits, stop decisions, log lines and errors.

Each case runs both on a fake clock (every attempt and every wait advances it), with a policy
and a script of attempt outcomes drawn by hypothesis, and compares what each one did.
"""

from __future__ import annotations

import asyncio
import random
import types
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import tenacity
from hypothesis import given, settings
from hypothesis import strategies as st
from tenacity import RetryCallState

from copytrader.common import retrying
from copytrader.common.retrying import call_until, until


class Temporary(Exception):
    """An error the predicate calls worth retrying."""


class Permanent(Exception):
    """An error the predicate refuses."""


@dataclass
class Clock:
    now: float = 1000.0

    def monotonic(self) -> float:
        return self.now


@dataclass
class Run:
    """What one retry loop did: attempts, waits, before-sleep lines, and how it ended."""

    attempts: int = 0
    waits: list[float] = field(default_factory=list)
    logged: list[tuple[int, float, str]] = field(default_factory=list)
    outcome: object = None


Outcome = tuple[str, float]  # ("ok" | "temporary" | "permanent" | "cancelled", seconds it takes)


def worth_it(exc: BaseException) -> bool:
    return isinstance(exc, Temporary)


async def run_case(loop: Callable[..., Awaitable[Any]], script: list[Outcome], clock: Clock, **policy: Any) -> Run:
    run = Run()
    errors: list[BaseException] = []

    async def attempt() -> str:
        kind, seconds = script[min(run.attempts, len(script) - 1)]
        run.attempts += 1
        clock.now += seconds
        if kind == "ok":
            return f"ok {run.attempts}"
        error: BaseException = {
            "temporary": Temporary,
            "permanent": Permanent,
            "cancelled": asyncio.CancelledError,
        }[kind](f"attempt {run.attempts}")
        errors.append(error)
        raise error

    async def sleep(seconds: float) -> None:
        run.waits.append(seconds)
        clock.now += seconds

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        sleeping = state.next_action.sleep if state.next_action is not None else -1.0
        run.logged.append((state.attempt_number, sleeping, repr(exc)))

    try:
        run.outcome = await loop(attempt, before_sleep=before_sleep, sleep=sleep, **policy)
    except BaseException as exc:  # noqa: BLE001 - what the loop raised is the result compared
        # the very object the attempt raised, not a copy or a tenacity wrapper
        assert any(exc is error for error in errors)
        run.outcome = (type(exc).__name__, str(exc))
    return run


async def tenacity_loop(fn: Callable[[], Awaitable[str]], **policy: Any) -> str:
    """The loop ``call_until`` replaces (``brokers/retry.py`` before it)."""
    async for attempt in until(worth_it, what="test", **policy):
        with attempt:
            return await fn()
    raise AssertionError("unreachable")


async def fast_path(fn: Callable[[], Awaitable[str]], **policy: Any) -> str:
    return await call_until(fn, worth_it, what="test", **policy)


def both(script: list[Outcome], **policy: Any) -> tuple[Run, Run]:
    runs = []
    for loop in (tenacity_loop, fast_path):
        clock = Clock()
        with pytest.MonkeyPatch.context() as patch:
            fake_time = types.SimpleNamespace(monotonic=clock.monotonic)
            patch.setattr(tenacity, "time", fake_time)  # RetryCallState's clock
            patch.setattr(retrying, "time", fake_time)  # call_until's start of that clock
            random.seed(7)  # the backoff's jitter draws the same
            runs.append(asyncio.run(run_case(loop, script, clock, **policy)))
    return runs[0], runs[1]


outcomes = st.lists(
    st.tuples(
        st.sampled_from(["ok", "temporary", "temporary", "permanent", "cancelled"]),
        st.sampled_from([0.0, 0.01, 0.2, 0.7]),
    ),
    min_size=1,
    max_size=10,
)


def upcoming_over(limit: float) -> Callable[[RetryCallState], bool]:
    return lambda state: state.upcoming_sleep > limit


@settings(max_examples=150, deadline=None)
@given(
    script=outcomes,
    attempts=st.integers(1, 8),
    deadline_s=st.sampled_from([0.05, 0.5, 2.0, 5.0]),
    waits=st.sampled_from(["default", "linear", "backoff"]),
    extra_stop=st.sampled_from([None, 0.15, 10.0]),
)
def test_the_fast_path_retries_exactly_like_the_tenacity_loop(
    script: list[Outcome],
    attempts: int,
    deadline_s: float,
    waits: str,
    extra_stop: float | None,
) -> None:
    policy: dict[str, Any] = {"attempts": attempts, "deadline_s": deadline_s}
    if waits == "linear":
        policy["wait"] = lambda state: 0.1 * state.attempt_number
    elif waits == "backoff":
        policy["wait"] = retrying.backoff(0.05, 1.0, jitter_s=0.05)
    if extra_stop is not None:
        policy["stop"] = upcoming_over(extra_stop)
    reference, fast = both(script, **policy)
    assert fast == reference


def test_a_first_attempt_that_succeeds_builds_no_tenacity_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("tenacity built for a call that needed no retry")

    monkeypatch.setattr(retrying, "until", refuse)
    reference, fast = both([("ok", 0.01)], attempts=3, deadline_s=1.0)
    assert fast.outcome == "ok 1" and fast.attempts == 1


def test_a_retried_call_logs_waits_and_gives_up_like_before() -> None:
    """One case spelled out: three temporary failures, attempts=3, a 0.1 s linear wait."""
    reference, fast = both([("temporary", 0.0)] * 5, attempts=3, deadline_s=5.0, wait=lambda s: 0.1 * s.attempt_number)
    assert fast == reference
    assert fast.attempts == 3
    assert fast.waits == pytest.approx([0.1, 0.2])
    assert [(n, line) for n, _, line in fast.logged] == [
        (1, "Temporary('attempt 1')"),
        (2, "Temporary('attempt 2')"),
    ]
    assert fast.outcome == ("Temporary", "attempt 3")


def test_the_deadline_counts_the_first_attempt() -> None:
    """A first attempt that took most of the deadline leaves no room for a wait: no retry."""
    reference, fast = both([("temporary", 0.45), ("ok", 0.0)], attempts=5, deadline_s=0.5)
    assert fast == reference
    assert (fast.attempts, fast.waits, fast.outcome) == (1, [], ("Temporary", "attempt 1"))


def test_attempts_below_one_are_refused_before_any_call() -> None:
    called = False

    async def fn() -> None:
        nonlocal called
        called = True

    with pytest.raises(ValueError, match="at least 1"):
        asyncio.run(call_until(fn, worth_it, what="test", attempts=0, deadline_s=1.0))
    assert not called
