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
from contextvars import ContextVar, Token

__all__ = ["DeadlineExceeded", "copy_deadline", "expired", "remaining"]

_deadline: ContextVar[float | None] = ContextVar("copytrader_copy_deadline", default=None)


class DeadlineExceeded(TimeoutError):
    """The copy's total time budget ran out before this layer could try (again)."""


class copy_deadline:  # noqa: N801 - used like the function it was: ``with copy_deadline(5.0):``
    """Everything awaited inside shares one monotonic deadline ``seconds`` from now.

    A nested call never extends an outer deadline: the earlier of the two holds. A class, not
    a ``@contextmanager`` generator: it is entered once per copied order (#16).
    """

    __slots__ = ("_seconds", "_token")

    def __init__(self, seconds: float) -> None:
        if not seconds > 0:
            raise ValueError(f"deadline must be positive, got {seconds!r}")
        self._seconds = seconds
        self._token: Token[float | None] | None = None

    def __enter__(self) -> float:
        outer = _deadline.get()
        at = time.monotonic() + self._seconds
        if outer is not None and outer < at:
            at = outer
        self._token = _deadline.set(at)
        return at

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _deadline.reset(self._token)
            self._token = None


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
