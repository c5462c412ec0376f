"""Waits on conditions, for tests: never a fixed sleep before an assertion.

A fixed sleep is either too short on a busy CI machine (a flaky failure) or too long everywhere
(a slow suite). ``wait_until`` polls a predicate until it holds and, when it never does, fails
with what was awaited and the last value it saw, so the failure says more than "timed out".

The predicate returns a value: anything truthy ends the wait and is returned, so a test can
wait for a thing and use it (``row = await wait_until(lambda: find(rows), ...)``).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

T = TypeVar("T")
POLL_S = 0.02


class WaitTimeout(AssertionError):
    """What was awaited did not happen in time (an assertion failure, as pytest reports it)."""


def _failure(what: str, timeout_s: float, last: object) -> WaitTimeout:
    return WaitTimeout(f"waited {timeout_s:g} s for {what}; last observed: {last!r}")


async def wait_until(
    predicate: Callable[[], T | Awaitable[T]],
    *,
    timeout_s: float,
    what: str,
    observe: Callable[[], object] | None = None,
    poll_s: float = POLL_S,
) -> T:
    """Await ``predicate()`` (sync or async) until it returns something truthy; return that.

    Raises :class:`WaitTimeout` naming ``what`` and the last value observed: the predicate's,
    or ``observe()``'s when given (for a predicate that can only say False).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return cast(T, value)
        if time.monotonic() >= deadline:
            raise _failure(what, timeout_s, observe() if observe is not None else value)
        await asyncio.sleep(poll_s)


def wait_until_sync(
    predicate: Callable[[], T],
    *,
    timeout_s: float,
    what: str,
    observe: Callable[[], object] | None = None,
    poll_s: float = POLL_S,
) -> T:
    """The blocking twin of :func:`wait_until`, for tests without an event loop."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _failure(what, timeout_s, observe() if observe is not None else value)
        time.sleep(poll_s)
