"""One total deadline per copy, shared by every layer that might retry or wait.

Without it, retries nest: executor × transport × re-authentication each had their own budget
and a copy could spend tens of seconds before it was reported. The executor opens a deadline
around one intent (:func:`copy_deadline`); transports, re-auth and lookups read
:func:`remaining` to size their timeouts and stop retrying when it runs out. Code that runs
outside any copy (connect, snapshots from a CLI) sees no deadline and uses its own default.

A context variable, not a parameter: the deadline crosses the adapter contract without every
method signature growing an argument, and each asyncio task (one lane per account) has its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["DeadlineExceeded", "copy_deadline", "expired", "remaining"]

_deadline: ContextVar[float | None] = ContextVar("copytrader_copy_deadline", default=None)


class DeadlineExceeded(TimeoutError):
    """The copy's total time budget ran out before this layer could try (again)."""


@contextmanager
def copy_deadline(seconds: float) -> Iterator[float]:
    """Everything awaited inside shares one monotonic deadline ``seconds`` from now.

    A nested call never extends an outer deadline: the earlier of the two holds.
    """
    if not seconds > 0:
        raise ValueError(f"deadline must be positive, got {seconds!r}")
    outer = _deadline.get()
    at = time.monotonic() + seconds
    if outer is not None:
        at = min(at, outer)
    token = _deadline.set(at)
    try:
        yield at
    finally:
        _deadline.reset(token)


def remaining(default: float) -> float:
    """Seconds left in the current copy's budget, or ``default`` outside a copy (never below 0).

    Inside a copy the answer is ``min(default, left)``: a layer's own timeout still applies.
    """
    at = _deadline.get()
    if at is None:
        return default
    return max(0.0, min(default, at - time.monotonic()))


def expired() -> bool:
    """True when a copy deadline is set and has passed."""
    at = _deadline.get()
    return at is not None and time.monotonic() >= at
