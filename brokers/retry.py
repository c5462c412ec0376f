"""Retry policy for broker requests: what is worth trying again, and whether a failed request
may already have been carried out. *How* to wait and when to stop is
:mod:`copytrader.common.retrying` (the one retry policy module, on tenacity); this module only
adds the broker predicates (:func:`is_retriable`, :func:`outcome_unknown`) and
:func:`exactly_once`.

Two questions decide it. Is the error temporary (``retriable = True``, the aiokafka/freqtrade
split)? A permanent error (rejected, bad credentials, circuit open) surfaces at once. And may
the failed request have been carried out (:func:`outcome_unknown`)? The real platforms do not
refuse a repeated client order id, so a request that may have landed is never simply sent
again: :func:`exactly_once` first asks the broker for the order by its client id (``lookup``)
and sends again only when the broker answered that it holds none. Errors that prove the
request was not carried out (throttled, token expired, never sent) are retried directly.

Everything is bounded by the copy's one deadline (``brokers.deadline``): a wait that would
overrun it is not started, so executor, transport and re-authentication cannot add up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from tenacity import RetryCallState

from ..common.retrying import backoff, call_until
from . import deadline
from .errors import BrokerUnavailable, OutcomeUnknown, RateLimited, TokenExpired

__all__ = ["exactly_once", "is_retriable", "outcome_unknown", "retrying_call"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_backoff = backoff(0.05, 1.0, jitter_s=0.05)


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


def outcome_unknown(exc: BaseException) -> bool:
    """True when a failed request may still have been carried out by the broker.

    Only an error that proves the request never took effect says no: a throttle or an expired
    token (the platform refused it), or ``BrokerUnavailable(sent=False)``. A timeout, a reset,
    a 5xx, or any other temporary error leaves the outcome open.
    """
    if isinstance(exc, BrokerUnavailable):
        return exc.sent
    if isinstance(exc, (RateLimited, TokenExpired)):
        return False
    return is_retriable(exc)


def _past_copy_deadline(state: RetryCallState) -> bool:
    """tenacity stop: the next wait would end after the copy's deadline."""
    return deadline.remaining(float("inf")) <= state.upcoming_sleep


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


def retrying_call(
    fn: Callable[[], Awaitable[T]],
    *,
    attempts: int = 3,
    deadline_s: float = 2.0,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> Coroutine[Any, Any, T]:
    """Await ``fn()`` up to ``attempts`` times while it fails with retriable errors.

    The last error is re-raised unchanged (not wrapped in tenacity's ``RetryError``) so the
    caller's error handling sees the broker error it knows. ``sleep`` is injectable for tests.
    A plain function returning ``call_until``'s coroutine: awaiting it costs no frame of its
    own, on every broker call of every copy (#16).
    """
    return call_until(
        fn,
        is_retriable,
        what="broker request",
        attempts=attempts,
        deadline_s=deadline_s,
        wait=_wait,
        stop=_past_copy_deadline,
        before_sleep=_log_retry,
        sleep=sleep,
    )


async def exactly_once(
    send: Callable[[], Awaitable[T]],
    lookup: Callable[[], Awaitable[T | None]] | None,
    *,
    uncertain: bool = False,
    attempts: int = 8,
    deadline_s: float = 5.0,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> T:
    """Carry out ``send`` at most once at the broker, within the copy's deadline.

    ``uncertain``: an earlier attempt may already have reached the broker (a redelivery), so
    the first step is ``lookup``. ``lookup()`` returns what the broker holds (then that is the
    answer and nothing is sent) or ``None`` (the broker answered: nothing there, so send).
    ``lookup`` None means ``send`` is idempotent by nature (a modify to absolute values) and
    may be repeated after any temporary error.

    Raises :class:`OutcomeUnknown` when the request may have landed and no lookup could
    settle it before the deadline (or the platform cannot be asked); the caller reports it
    and never places blindly. Any other failure is re-raised unchanged.
    """
    maybe_sent = uncertain and lookup is not None
    why = "an earlier attempt may have reached the broker"

    async def attempt() -> T:
        nonlocal maybe_sent, why
        if maybe_sent:
            assert lookup is not None
            try:
                found = await lookup()
            except Exception as exc:
                if not is_retriable(exc):  # unsupported, circuit open, an answer we cannot read
                    raise OutcomeUnknown(f"{why}; lookup failed: {_describe(exc)}", code="OUTCOME_UNKNOWN") from exc
                why = f"{why}; lookup failed: {_describe(exc)}"
                raise
            if found is not None:
                return found
            maybe_sent = False
        try:
            return await send()
        except Exception as exc:
            if lookup is not None and outcome_unknown(exc):
                maybe_sent = True
                why = f"request outcome unknown ({_describe(exc)})"
            raise

    try:
        return await retrying_call(attempt, attempts=attempts, deadline_s=deadline_s, sleep=sleep)
    except OutcomeUnknown:
        raise
    except Exception as exc:
        if maybe_sent:
            raise OutcomeUnknown(f"{why}; gave up: {_describe(exc)}", code="OUTCOME_UNKNOWN") from exc
        raise


def _describe(exc: BaseException) -> str:
    return getattr(exc, "message", None) or str(exc) or type(exc).__name__
