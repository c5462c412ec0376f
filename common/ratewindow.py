"""The one sliding rate window: "at most ``limit`` events in any ``seconds``".

Why one class: client budgets (our own request pacing, the login budget that keeps two clients
of one user from logging each other out), the simulators' server-side limits (429s, penalty
tickets) and the circuit breaker's failure ratio all count events in a sliding time window.
Written by hand five times they disagreed on the edge (is an event exactly ``seconds`` old
still inside?); here an event leaves the window at ``t + seconds`` (with a float slack, so a
fake clock advanced to exactly that instant frees the slot).

Time comes from an injectable monotonic ``clock`` (never wall-clock: a window must not jump
when NTP steps the system time), so tests drive a window with a fake clock. Every method also
takes an explicit ``now`` for callers that check several windows at one instant.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable

__all__ = ["EPSILON", "SlidingWindow"]

#: Float slack: ``t + seconds`` computed from floats may miss ``now`` by an ulp; without it a
#: fake clock advanced to exactly the expiry instant would leave a waiter sleeping forever.
EPSILON = 1e-9

Clock = Callable[[], float]


class SlidingWindow:
    """Event times of the last ``seconds``; room while fewer than ``limit`` are inside
    (``limit`` 0: never room, a server told to refuse everything).

    The window only counts: whether an event that found no room is recorded anyway is the
    caller's decision (a refused request usually costs nothing, so callers ``admit``).
    """

    __slots__ = ("limit", "seconds", "clock", "_events")

    def __init__(
        self, limit: int, seconds: float, *, clock: Clock = time.monotonic, history: Iterable[float] = ()
    ) -> None:
        if limit < 0 or seconds <= 0:
            raise ValueError(f"a rate window needs limit >= 0 and seconds > 0, got ({limit}, {seconds})")
        self.limit = int(limit)
        self.seconds = float(seconds)
        self.clock = clock
        self._events: deque[float] = deque(sorted(history))

    def __repr__(self) -> str:
        return f"SlidingWindow({self.limit}/{self.seconds:g}s, inside={len(self._events)})"

    def _now(self, now: float | None) -> float:
        current = self.clock() if now is None else now
        while self._events and self._events[0] + self.seconds <= current + EPSILON:
            self._events.popleft()
        return current

    def count(self, now: float | None = None) -> int:
        """Events inside the window now."""
        self._now(now)
        return len(self._events)

    def room(self, now: float | None = None) -> bool:
        """True when one more event fits now."""
        return self.count(now) < self.limit

    def wait(self, now: float | None = None) -> float:
        """Seconds until one more event fits (0 when it fits now)."""
        current = self._now(now)
        if len(self._events) < self.limit:
            return 0.0
        if self.limit == 0:
            return float("inf")
        # The event that must leave first is the one ``limit`` places from the newest.
        blocking = self._events[len(self._events) - self.limit]
        return max(0.0, blocking + self.seconds - current)

    def headroom(self, now: float | None = None) -> float:
        """Fraction (0..1) of the window still free now."""
        if self.limit == 0:
            return 0.0
        return max(0.0, (self.limit - self.count(now)) / self.limit)

    def record(self, now: float | None = None) -> None:
        """Count one event now, room or not."""
        self._events.append(self._now(now))

    def admit(self, now: float | None = None) -> bool:
        """Count one event if it fits; False (and nothing counted) when the window is full."""
        current = self._now(now)
        if len(self._events) >= self.limit:
            return False
        self._events.append(current)
        return True

    def history(self) -> list[float]:
        """Times of the events still inside (to carry over into a window with a new limit)."""
        self._now(None)
        return list(self._events)

    def clear(self) -> None:
        """Forget every event."""
        self._events.clear()
