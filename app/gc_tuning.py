"""Keep Python's garbage collections off the copy path.

A worker's heap is mostly what start-up made: ~130 000 modules, functions, types and
descriptors of Faust, aiokafka, aiohttp and SQLAlchemy, alive until the process ends. Every
full (generation 2) collection still walked all of them: 60–130 ms of CPU on this machine,
every ~5 s under load, in the middle of whatever the loop was doing; at 200 followers that was
a lane stalled for the whole collection, the p99 of the copy latency. ``gc.freeze()`` moves
the objects alive at that moment into the permanent generation, which collections skip;
they are still freed by reference counting if they die, only cycles among them would be kept.

What is left are the collections a burst of copies sets off itself. Python collects the young
generation after every 700 new container objects; a 200-follower signal makes about 9,000
(45 per copy), so its copies ran about 13 young collections and one or two middle ones (2–5
ms each, finding nothing) and, every few seconds, a full one of 5–13 ms: all inside the burst,
since the burst is what allocates. :class:`IdleCollector` raises the automatic thresholds so that a
burst runs none, and collects what Python would have, between bursts (#16).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

#: Automatic collections once a burst outgrows these: the young generation after this many new
#: container objects (a 1,000-follower signal, 45,000, still sets off one or two), the older
#: ones after ten of the younger, as Python's own.
BURST_THRESHOLDS = (25_000, 10, 10)
#: How often the loop is checked for a quiet moment, and the young objects worth a collection.
IDLE_CHECK_S = 0.05
IDLE_MIN_YOUNG = 1_000
#: While there is nothing worth collecting, the checks back off (doubling) to this: twenty
#: wake-ups a second were 1.4 ms of CPU a second in every idle worker (#16, session 31). A burst
#: cannot outgrow the raised thresholds in that time, and the first check that finds work, or
#: finds the loop busy, returns to ``IDLE_CHECK_S``.
IDLE_CHECK_MAX_S = 0.4
#: A full collection at most this often. Python runs one only once the objects promoted since
#: the last have grown by a quarter of the old generation (a rule it keeps to itself), so a
#: worker with a large heap (the watching worker's tables and dashboard state) seldom runs one;
#: one every tenth middle collection would walk that heap every few seconds.
FULL_EVERY_S = 60.0


def freeze_startup_heap() -> int:
    """Collect once, then exempt every surviving object from later collections; returns
    how many objects are frozen now."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("gc: %d start-up objects frozen out of future collections", frozen)
    return frozen


class IdleCollector:
    """Runs the collections a worker's copies would set off, when none is in flight.

    ``busy``: one check per consumer of the copy path (an intent or a signal being handled).
    Under a load with no quiet moment, the automatic thresholds still collect: memory is
    bounded either way, only the moment moves.
    """

    def __init__(
        self,
        busy: Sequence[Callable[[], bool]],
        *,
        interval_s: float = IDLE_CHECK_S,
        max_interval_s: float = IDLE_CHECK_MAX_S,
        min_young: int = IDLE_MIN_YOUNG,
        full_every_s: float = FULL_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.busy = busy
        self.interval_s = interval_s
        self.max_interval_s = max(interval_s, max_interval_s)
        self.next_check_s = interval_s
        self.min_young = min_young
        self.full_every_s = full_every_s
        self.clock = clock
        self.collections = [0, 0, 0]  # run here, by generation
        self._last_full = clock()

    def install(self) -> None:
        gc.set_threshold(*BURST_THRESHOLDS)

    def step(self) -> int | None:
        """Collect the generation Python's rule picks, if nothing is busy and enough young
        objects are there; returns the generation collected (None: not now)."""
        young, middle, old = gc.get_count()
        if young < self.min_young:
            self.next_check_s = min(self.next_check_s * 2, self.max_interval_s)  # nothing to do: back off
            return None
        self.next_check_s = self.interval_s
        if any(check() for check in self.busy):
            return None
        _, middle_every, old_every = BURST_THRESHOLDS
        generation = 0
        if middle >= middle_every:  # ten young collections since the last middle one
            generation = 1
            if old >= old_every and self.clock() - self._last_full >= self.full_every_s:
                generation = 2
                self._last_full = self.clock()
        gc.collect(generation)
        self.collections[generation] += 1
        return generation

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.next_check_s)
            self.step()
