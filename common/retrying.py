"""The one retry policy module: every retry in CopyTrader runs on tenacity through here.

Two shapes cover every caller:

* :func:`until` — a bounded request retry (a broker call, a login): stop after ``attempts``
  or ``deadline_s``, whichever comes first, waiting with :func:`backoff`.
  :func:`call_until` runs one call under the same policy, and builds tenacity's machinery only
  once its first attempt failed with an error worth retrying (the copy path's broker calls).
* :func:`forever` — a connection or a store that must come back (a websocket, a database,
  a Kafka feed): retry until cancelled, waiting with :func:`backoff` capped at ``max_s``.
* :func:`again_now` — a blocking step that lost a race (another process took the same row):
  try again at once, a few times, in the same thread.

What is *worth* retrying stays with the caller (a predicate), because only the caller knows
whether a failed request may have been carried out (see ``brokers.retry.exactly_once``).
Waiting is injectable (``sleep``) so tests drive retries without real time.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    DoAttempt,
    DoSleep,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    stop_never,
    wait_exponential_jitter,
)
from tenacity.stop import StopBaseT, stop_base
from tenacity.wait import WaitBaseT

__all__ = ["again_now", "backoff", "call_until", "forever", "keep_running", "log_before_sleep", "until"]

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
Predicate = Callable[[BaseException], bool]
T = TypeVar("T")


def backoff(first_s: float, max_s: float, *, jitter_s: float = 0.0) -> WaitBaseT:
    """Exponential backoff ``first_s, 2·first_s, …`` capped at ``max_s`` (plus up to
    ``jitter_s`` so many sessions that lost the same server do not return in lockstep)."""
    return wait_exponential_jitter(multiplier=first_s, max=max_s, exp_base=2, jitter=jitter_s)


def log_before_sleep(
    what: str, level: int = logging.WARNING, *, traceback: bool = False
) -> Callable[[RetryCallState], None]:
    """tenacity ``before_sleep``: one line per failed attempt, saying what and how long
    (with the traceback when ``traceback``: for failures nobody expected)."""

    def report(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        sleep = state.next_action.sleep if state.next_action is not None else 0.0
        log.log(
            level,
            "%s failed (%r); attempt %d, retrying in %.2fs",
            what,
            exc,
            state.attempt_number,
            sleep,
            exc_info=exc if traceback else None,
        )

    return report


def _retry_on(predicate: Predicate) -> Any:
    def worth_it(exc: BaseException) -> bool:
        return not isinstance(exc, asyncio.CancelledError) and predicate(exc)

    return retry_if_exception(worth_it)


class _StopWhen(stop_base):
    """A plain ``(RetryCallState) -> bool`` as a tenacity stop, so it combines with ``|``."""

    def __init__(self, check: Callable[[RetryCallState], bool]) -> None:
        self.check = check

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.check(retry_state)


def _as_stop(stop: StopBaseT) -> stop_base:
    return stop if isinstance(stop, stop_base) else _StopWhen(stop)


def _sleeping(sleep: Sleep | None) -> dict[str, Any]:
    """tenacity's own sleep unless the caller injects one (tests drive retries without time)."""
    return {"sleep": sleep} if sleep is not None else {}


def until(
    predicate: Predicate,
    *,
    what: str,
    attempts: int,
    deadline_s: float,
    wait: WaitBaseT | None = None,
    stop: StopBaseT | None = None,
    before_sleep: Callable[[RetryCallState], None] | None = None,
    sleep: Sleep | None = None,
) -> AsyncRetrying:
    """A bounded retry: the last error is re-raised unchanged (``reraise``)."""
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    bound = stop_after_attempt(attempts) | stop_before_delay(deadline_s)
    return AsyncRetrying(
        retry=_retry_on(predicate),
        stop=bound | _as_stop(stop) if stop is not None else bound,
        wait=wait if wait is not None else backoff(0.05, 1.0, jitter_s=0.05),
        reraise=True,
        before_sleep=before_sleep or log_before_sleep(what, logging.INFO),
        **_sleeping(sleep),
    )


async def call_until(
    fn: Callable[[], Awaitable[T]],
    predicate: Predicate,
    *,
    what: str,
    attempts: int,
    deadline_s: float,
    wait: WaitBaseT | None = None,
    stop: StopBaseT | None = None,
    before_sleep: Callable[[RetryCallState], None] | None = None,
    sleep: Sleep | None = None,
) -> T:
    """``fn()`` retried as ``until(...)`` would retry it, the last error re-raised unchanged.

    Why not ``async for attempt in until(...)``: building an ``AsyncRetrying`` and running its
    action chain costs more CPU than the executor's whole bookkeeping of a copy, and nearly
    every broker call succeeds (or fails for good) at its first attempt. So the first attempt
    runs directly. A failure ``predicate`` calls worth retrying hands over to the very
    ``until`` policy, seeded with that failure as its attempt 1 and with the clock started
    before it: the same attempt count, waits, stop decisions and ``before_sleep`` lines as if
    tenacity had run the first attempt itself. ``predicate`` sees that first failure twice
    (here, then in tenacity's check), so it must only look at the error, as all of ours do.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    started = time.monotonic()  # what tenacity's RetryCallState takes as its start
    try:
        return await fn()
    except BaseException as exc:
        if isinstance(exc, asyncio.CancelledError) or not predicate(exc):
            raise
        first_failure = sys.exc_info()
    retrying = until(
        predicate,
        what=what,
        attempts=attempts,
        deadline_s=deadline_s,
        wait=wait,
        stop=stop,
        before_sleep=before_sleep,
        sleep=sleep,
    )
    retrying.begin()
    state = RetryCallState(retrying, fn=None, args=(), kwargs={})
    state.start_time = started
    state.set_exception(first_failure)  # type: ignore[arg-type]  # inside ``except``: never (None, None, None)
    del first_failure
    while True:  # tenacity's own loop (``AsyncRetrying.__call__``) from attempt 1's outcome on
        do = await retrying.iter(retry_state=state)
        if isinstance(do, DoAttempt):
            try:
                result = await fn()
            except BaseException:
                state.set_exception(sys.exc_info())  # type: ignore[arg-type]  # as above
            else:
                state.set_result(result)
        elif isinstance(do, DoSleep):
            state.prepare_for_next_attempt()
            await retrying.sleep(do)  # type: ignore[misc]  # AsyncRetrying's sleep is a coroutine function
        else:
            return do  # type: ignore[no-any-return]  # the attempt's result


def again_now(predicate: Predicate, *, what: str, attempts: int) -> Retrying:
    """A blocking retry without a wait, for lost races (the winner has already committed, so
    the next attempt sees its row): at most ``attempts`` tries, the last error re-raised."""
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    return Retrying(
        retry=_retry_on(predicate),
        stop=stop_after_attempt(attempts),
        reraise=True,
        before_sleep=log_before_sleep(what, logging.INFO),
    )


def forever(
    predicate: Predicate,
    *,
    what: str,
    first_s: float,
    max_s: float,
    before_sleep: Callable[[RetryCallState], None] | None = None,
    sleep: Sleep | None = None,
) -> AsyncRetrying:
    """Retry until cancelled while ``predicate`` says the error is temporary; any other error
    is re-raised unchanged."""
    return AsyncRetrying(
        retry=_retry_on(predicate),
        stop=stop_never,
        wait=backoff(first_s, max_s),
        reraise=True,
        before_sleep=before_sleep or log_before_sleep(what),
        **_sleeping(sleep),
    )


async def keep_running(
    step: Callable[[], Awaitable[None]],
    what: str,
    *,
    first_s: float = 1.0,
    max_s: float = 30.0,
    sleep: Sleep | None = None,
    level: int = logging.ERROR,
) -> None:
    """Run ``step`` until cancelled, restarting it after any failure with growing pauses.

    For long-running consumer loops (feeds) that must outlive one bad broker answer. A step
    that returns normally is started again at once; a step that fails waits ``first_s``,
    doubling to ``max_s`` while failures continue. Failures are logged at ``level``, with the
    traceback at ERROR and above (below it the failure is an expected one, e.g. a token
    renewal the next request repairs anyway).
    """

    report = log_before_sleep(what, level, traceback=level >= logging.ERROR)
    while True:
        async for attempt in forever(
            lambda exc: isinstance(exc, Exception),
            what=what,
            first_s=first_s,
            max_s=max_s,
            before_sleep=report,
            sleep=sleep,
        ):
            with attempt:
                await step()
