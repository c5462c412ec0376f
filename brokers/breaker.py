"""A per-session circuit breaker: stop queueing orders behind a broker that is down.

Why: when a platform stops answering, every follower order would wait for its own timeout
and then be retried, multiplying load on a broker that is already failing and delaying the
error the user needs to see. After enough *retriable* failures the breaker opens and calls
fail at once with ``CircuitOpen``; after a cool-down one trial call is let through
(half-open) and its outcome closes or re-opens the circuit.

Only retriable errors count. A permanent error (``OrderRejected``, ``UnknownOrder``) is a
perfectly healthy broker saying no, so it counts as a success for the breaker.

States are plain strings (``closed``/``open``/``half_open``) because that is what
``SessionHealth.circuit`` and the dashboard carry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeVar

from ..common.ratewindow import SlidingWindow
from .errors import CircuitOpen
from .retry import is_retriable

__all__ = ["CircuitBreaker", "CircuitState"]

log = logging.getLogger(__name__)

CircuitState = Literal["closed", "open", "half_open"]
ChangeHook = Callable[[str, str, str], None]
T = TypeVar("T")


class CircuitBreaker:
    """Closed → open → half-open → closed, driven by the outcomes of guarded calls.

    Opens after ``failure_threshold`` consecutive retriable failures, or — when
    ``failure_ratio`` is set — when at least ``min_calls`` calls in the last ``ratio_window``
    seconds failed at that ratio or worse (catches a flapping broker that never fails five
    times in a row). ``on_change(name, old, new)`` is called on every transition; it must not
    raise (health reporting must never break order flow, so its errors are logged only).
    """

    def __init__(
        self,
        name: str,
        failure_threshold: int = 5,
        reset_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        failure_ratio: float | None = None,
        ratio_window: float = 30.0,
        min_calls: int = 10,
        on_change: ChangeHook | None = None,
    ) -> None:
        if failure_threshold < 1 or reset_timeout < 0:
            raise ValueError("failure_threshold must be >= 1 and reset_timeout >= 0")
        if failure_ratio is not None and not 0 < failure_ratio <= 1:
            raise ValueError("failure_ratio must be in (0, 1]")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.failure_ratio = failure_ratio
        self.ratio_window = ratio_window
        self.min_calls = min_calls
        self.on_change = on_change
        self._clock = clock
        self._state: CircuitState = "closed"
        self._consecutive = 0
        self._opened_at = 0.0
        self._trial_in_flight = False
        # Calls and failures of the last ``ratio_window`` seconds (only kept with a ratio); the
        # calls window is "full" once it holds ``min_calls``, enough to judge the ratio.
        self._calls = SlidingWindow(max(1, min_calls), ratio_window, clock=clock)
        self._failures = SlidingWindow(max(1, min_calls), ratio_window, clock=clock)
        self.last_error: BaseException | None = None

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self.state})"

    # -- state -----------------------------------------------------------------------
    @property
    def state(self) -> CircuitState:
        """Current state; an open circuit whose cool-down has passed reads as half-open."""
        if self._state == "open" and self._clock() >= self._opened_at + self.reset_timeout:
            self._transition("half_open")
        return self._state

    @property
    def retry_after(self) -> float:
        """Seconds until an open circuit lets a trial through (0 unless open)."""
        if self.state != "open":
            return 0.0
        return max(0.0, self._opened_at + self.reset_timeout - self._clock())

    # -- guarded calls -----------------------------------------------------------------
    async def call(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Await ``fn(*args, **kwargs)`` through the breaker.

        What :meth:`guard` does, written out: every broker request of a copy passes here,
        and a generator-based context manager costs more than the bookkeeping it wraps.
        """
        trial = self._admit()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            self._record_error(exc)
            raise
        else:
            self.record_success()
            return result
        finally:
            if trial:
                self._trial_in_flight = False

    @asynccontextmanager
    async def guard(self) -> AsyncIterator[None]:
        """``async with breaker.guard(): ...`` — admit or fail fast, then record the outcome."""
        trial = self._admit()
        try:
            yield
        except BaseException as exc:
            self._record_error(exc)
            raise
        else:
            self.record_success()
        finally:
            if trial:
                self._trial_in_flight = False

    def _record_error(self, exc: BaseException) -> None:
        if is_retriable(exc):
            self.record_failure(exc)
        elif isinstance(exc, Exception):
            self.record_success()  # permanent error: the broker is alive and answering
        # CancelledError/KeyboardInterrupt say nothing about the broker.

    def _admit(self) -> bool:
        """Raise ``CircuitOpen`` or admit; True when the admitted call is the half-open trial."""
        state = self.state
        if state == "closed":
            return False
        if state == "half_open" and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        wait = self.retry_after
        detail = f"retry in {wait:.1f}s" if state == "open" else "trial call in flight"
        raise CircuitOpen(f"circuit {self.name!r} is {state}: {detail}", code="CIRCUIT_OPEN")

    # -- outcomes (also usable by adapters that see failures outside a call) ----------
    def record_success(self) -> None:
        self._consecutive = 0
        self._remember(failed=False)
        if self._state != "closed":
            self._transition("closed")

    def record_failure(self, exc: BaseException | None = None) -> None:
        self.last_error = exc
        self._consecutive += 1
        self._remember(failed=True)
        if self._state == "half_open" or self._should_open():
            self._open()

    def trip(self) -> None:
        """Open now (e.g. the transport saw the socket die): fail fast until the cool-down ends."""
        self._open()

    def reset(self) -> None:
        """Close and forget history (an operator reconnected the session by hand)."""
        self._consecutive = 0
        self._forget()
        self._trial_in_flight = False
        if self._state != "closed":
            self._transition("closed")

    # -- internals -------------------------------------------------------------------
    def _remember(self, *, failed: bool) -> None:
        if self.failure_ratio is None:
            return
        now = self._clock()
        self._calls.record(now)
        if failed:
            self._failures.record(now)

    def _forget(self) -> None:
        self._calls.clear()
        self._failures.clear()

    def _should_open(self) -> bool:
        if self._state != "closed":
            return False
        if self._consecutive >= self.failure_threshold:
            return True
        if self.failure_ratio is None:
            return False
        now = self._clock()
        if self._calls.room(now):  # fewer than ``min_calls`` recent calls: too few to judge
            return False
        return self._failures.count(now) / self._calls.count(now) >= self.failure_ratio

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._forget()
        if self._state != "open":
            self._transition("open")

    def _transition(self, new: CircuitState) -> None:
        old, self._state = self._state, new
        if new == "closed":
            self._consecutive = 0
        if self.on_change is not None:
            try:
                self.on_change(self.name, old, new)
            except Exception:  # noqa: BLE001 - see class docstring
                log.exception("on_change hook of circuit %r failed", self.name)
