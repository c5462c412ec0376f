"""Retry policy for idempotent broker requests, built on tenacity.

Why so narrow: a retried ``place`` that the broker had in fact accepted becomes a second
order unless the broker dedupes on our client order id. So the executor only wraps requests
of adapters whose ``capabilities.client_id_dedupe`` is true (and reads, cancels, snapshots),
and only errors that say "temporary" (``retriable = True``, the aiokafka/freqtrade split) are
retried. A permanent error (rejected, bad credentials, circuit open) surfaces at once.

The whole policy is bounded by a deadline: a copy that arrives seconds late is worse than a
reported failure, so a wait that would overrun the deadline is not started.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

from .errors import RateLimited

__all__ = ["is_retriable", "retrying_call"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_backoff = wait_exponential_jitter(multiplier=0.05, max=1.0, exp_base=2, jitter=0.05)


def is_retriable(exc: BaseException) -> bool:
    """True for errors a later attempt may cure.

    Adapters should raise ``TransientBrokerError`` subclasses, but a raw timeout or dropped
    socket that slipped through is just as temporary, so those count too.
    """
    if isinstance(exc, asyncio.CancelledError):
        return False
    if getattr(exc, "retriable", False):
        return True
    return isinstance(exc, (TimeoutError, ConnectionError))


def _wait(state: RetryCallState) -> float:
    """The platform's own Retry-After when it gave one, else short exponential backoff."""
    outcome = state.outcome
    exc = outcome.exception() if outcome is not None else None
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        return max(0.0, float(exc.retry_after))
    return float(_backoff(state))


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome is not None else None
    sleep = state.next_action.sleep if state.next_action is not None else 0.0
    log.info("retrying after %r (attempt %d, waiting %.3fs)", exc, state.attempt_number, sleep)


async def retrying_call(
    fn: Callable[[], Awaitable[T]],
    *,
    attempts: int = 3,
    deadline_s: float = 2.0,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> T:
    """Await ``fn()`` up to ``attempts`` times while it fails with retriable errors.

    The last error is re-raised unchanged (not wrapped in tenacity's ``RetryError``) so the
    caller's error handling sees the broker error it knows. ``sleep`` is injectable for tests.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    retrying = AsyncRetrying(
        retry=retry_if_exception(is_retriable),
        stop=stop_after_attempt(attempts) | stop_before_delay(deadline_s),
        wait=_wait,
        reraise=True,
        before_sleep=_log_retry,
        **({"sleep": sleep} if sleep is not None else {}),
    )
    async for attempt in retrying:
        with attempt:
            return await fn()
    raise AssertionError("unreachable: tenacity either returns, re-raises or retries")  # pragma: no cover
