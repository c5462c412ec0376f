"""The one retry policy module: backoff timings, bounded and endless retries, keep_running."""

from __future__ import annotations

import asyncio
import logging
import warnings

import pytest
from tenacity import RetryCallState

from copytrader.common.retrying import backoff, forever, keep_running, until


class Sleeps:
    def __init__(self, stop_after: int | None = None) -> None:
        self.waits: list[float] = []
        self.stop_after = stop_after

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.stop_after is not None and len(self.waits) >= self.stop_after:
            raise asyncio.CancelledError


def _state(attempt: int) -> RetryCallState:
    state = RetryCallState(None, None, (), {})  # type: ignore[arg-type]  # a bare state for the wait only
    state.attempt_number = attempt
    return state


def test_backoff_doubles_to_the_cap_without_deprecation() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wait = backoff(0.05, 0.3)
    assert [wait(_state(n)) for n in range(1, 6)] == pytest.approx([0.05, 0.1, 0.2, 0.3, 0.3])


async def test_until_reraises_the_last_error_after_the_attempts() -> None:
    calls, sleeps = 0, Sleeps()
    with pytest.raises(ConnectionError, match="down 3"):
        async for attempt in until(
            lambda exc: isinstance(exc, ConnectionError),
            what="t",
            attempts=3,
            deadline_s=60.0,
            wait=backoff(0.01, 1.0),
            sleep=sleeps,
        ):
            with attempt:
                calls += 1
                raise ConnectionError(f"down {calls}")
    assert calls == 3 and sleeps.waits == pytest.approx([0.01, 0.02])


async def test_forever_stops_on_an_error_the_predicate_calls_fatal() -> None:
    errors = [ConnectionError("blip"), ConnectionError("blip"), PermissionError("refused")]
    sleeps = Sleeps()
    with pytest.raises(PermissionError):
        async for attempt in forever(
            lambda exc: isinstance(exc, ConnectionError), what="t", first_s=0.5, max_s=0.75, sleep=sleeps
        ):
            with attempt:
                raise errors.pop(0)
    assert sleeps.waits == pytest.approx([0.5, 0.75])


async def test_keep_running_restarts_failed_steps_with_growing_pauses(caplog: pytest.LogCaptureFixture) -> None:
    runs = 0

    async def step() -> None:
        nonlocal runs
        runs += 1
        if runs == 2:
            return  # a clean return starts the step again at once
        raise RuntimeError(f"run {runs}")

    sleeps = Sleeps(stop_after=3)
    with caplog.at_level(logging.WARNING), pytest.raises(asyncio.CancelledError):
        await keep_running(step, "renewal", first_s=1.0, max_s=3.0, sleep=sleeps, level=logging.WARNING)
    # run 1 fails (wait 1), run 2 returns (no wait, fresh backoff), runs 3 and 4 fail (1, 2).
    assert sleeps.waits == pytest.approx([1.0, 1.0, 2.0])
    failures = [r for r in caplog.records if "renewal failed" in r.getMessage()]
    assert failures and all(r.levelno == logging.WARNING and r.exc_info is None for r in failures)


def test_again_now_retries_a_lost_race_at_once_and_gives_up_with_the_last_error() -> None:
    from copytrader.common.retrying import again_now

    tries: list[int] = []

    def lost_twice() -> str:
        tries.append(1)
        if len(tries) < 3:
            raise KeyError("taken")
        return "won"

    for attempt in again_now(lambda exc: isinstance(exc, KeyError), what="race", attempts=3):
        with attempt:
            result = lost_twice()
    assert result == "won" and len(tries) == 3

    tries.clear()
    with pytest.raises(KeyError):
        for attempt in again_now(lambda exc: isinstance(exc, KeyError), what="race", attempts=2):
            with attempt:
                lost_twice()
    assert len(tries) == 2
    with pytest.raises(ValueError):
        for attempt in again_now(lambda exc: isinstance(exc, KeyError), what="race", attempts=3):
            with attempt:
                raise ValueError("not a race")
