"""Request budgets for rate-limited platforms.

Why a budget instead of reacting to 429s: a throttled broker often answers with a penalty
(Tradovate's ``p-ticket``/``p-time``) that blocks *every* request, exits included. Spending
our own budget first, and spending it on the most urgent requests first, keeps protective
orders flowing when a burst of follower entries arrives. Cancels and exits overtake queued
entries; nobody bursts beyond the budget.

The budget is a set of sliding windows ``(max_requests, window_seconds)``: a request may go
when every window has had fewer than ``max_requests`` grants in its last ``window_seconds``.
Time comes from an injectable monotonic ``clock`` and waiting from an injectable ``sleep``
so tests can drive the budget deterministically with a fake clock.

An adapter names the priority of each request by its kind (a cancel, a place, a search), but a
place can be an entry or an exit: only the caller knows. :func:`urgent` lets the executor raise
every request of one copy (an exit, a flatten, the lookups of a stale copy) to at least
``Priority.EXIT`` without the adapter contract growing an argument, as ``brokers.deadline``
does for the copy's deadline.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from enum import IntEnum

from ..common.ratewindow import EPSILON as _EPSILON
from ..common.ratewindow import SlidingWindow

__all__ = ["Priority", "RateBudget", "urgent"]


class Priority(IntEnum):
    """Lower value is served first: a cancel or exit must never wait behind new entries."""

    CANCEL = 0
    EXIT = 1
    MODIFY = 2
    ENTRY = 3


_urgency: ContextVar[Priority | None] = ContextVar("copytrader_request_urgency", default=None)


@contextmanager
def urgent(priority: Priority) -> Iterator[None]:
    """Every request awaited inside is served at ``priority`` or more urgently (never less:
    a cancel inside an exit stays a cancel)."""
    token = _urgency.set(priority)
    try:
        yield
    finally:
        _urgency.reset(token)


class RateBudget:
    """Priority-ordered admission to a platform's request budget.

    ``acquire`` returns when the caller may send one request; the grant is counted at that
    moment. Waiters are served strictly by priority, then in arrival order. A caller that
    arrives while others wait never jumps the queue, even if a slot is free right then,
    unless it outranks all of them (the pump serves it first anyway).
    """

    def __init__(
        self,
        limits: list[tuple[int, float]],
        name: str = "",
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.name = name
        if any(limit <= 0 or seconds <= 0 for limit, seconds in limits):
            raise ValueError(f"rate limit needs positive values, got {limits}")
        self._windows = [SlidingWindow(limit, seconds, clock=clock) for limit, seconds in limits]
        self._clock = clock
        self._sleep = sleep
        self._blocked_until = float("-inf")
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._pump: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"RateBudget({self.name!r}, headroom={self.headroom:.2f}, waiting={self.waiting})"

    # -- public ----------------------------------------------------------------------
    def try_acquire(self) -> bool:
        """A slot now, if every window has room and nobody waits (granted and counted, as
        :meth:`acquire` would); False otherwise, and nothing changes.

        Why: callers bound :meth:`acquire` by the copy's deadline with ``asyncio.wait_for``,
        which on Python 3.11 wraps the coroutine in a task and costs a loop turn even when
        the slot is free, as it nearly always is: once per broker request (#16)."""
        if not self._live_waiters() and self._wait_time() <= _EPSILON:
            self._grant()
            return True
        return False

    async def acquire(self, priority: Priority = Priority.ENTRY) -> None:
        """Wait until every window has room and no more urgent (or earlier) caller waits."""
        if self.try_acquire():
            return
        raised = _urgency.get()
        if raised is not None:
            priority = min(priority, raised)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (int(priority), next(self._seq), future))
        self._ensure_pump()
        # If the caller is cancelled the future is cancelled too and the pump skips it; a
        # slot granted just before the cancellation is spent (it may already be on the wire).
        await future

    def penalize(self, seconds: float) -> None:
        """The server said wait (p-time, Retry-After): nobody gets a slot before then."""
        if seconds <= 0:
            return
        self._blocked_until = max(self._blocked_until, self._clock() + seconds)

    @property
    def headroom(self) -> float:
        """Fraction (0..1) of the tightest window left now; 0 while penalized."""
        now = self._clock()
        if now + _EPSILON < self._blocked_until:
            return 0.0
        return min((window.headroom(now) for window in self._windows), default=1.0)

    @property
    def waiting(self) -> int:
        """Callers queued for a slot (for health reporting and tests)."""
        return self._live_waiters()

    def wait_time(self) -> float:
        """Seconds until a slot is free for a caller with nobody ahead of it."""
        return self._wait_time()

    # -- internals -------------------------------------------------------------------
    def _live_waiters(self) -> int:
        return sum(1 for _, _, future in self._waiters if not future.done())

    def _wait_time(self) -> float:
        now = self._clock()
        wait = max(0.0, self._blocked_until - now)
        for window in self._windows:
            wait = max(wait, window.wait(now))
        return wait

    def _grant(self) -> None:
        now = self._clock()
        for window in self._windows:
            window.record(now)

    def _ensure_pump(self) -> None:
        if self._pump is None or self._pump.done():
            self._pump = asyncio.get_running_loop().create_task(self._run_pump(), name=f"ratebudget-{self.name}")

    async def _run_pump(self) -> None:
        """Hand out slots to the head of the queue as the windows free up.

        One task owns the queue so ordering is decided in one place; it re-reads the head
        after every sleep, so a cancel that arrived meanwhile goes before queued entries.
        """
        while True:
            while self._waiters and self._waiters[0][2].done():
                heapq.heappop(self._waiters)  # caller gave up
            if not self._waiters:
                return
            wait = self._wait_time()
            if wait > _EPSILON:
                await self._sleep(wait)
                continue
            _, _, future = heapq.heappop(self._waiters)
            self._grant()
            future.set_result(None)
