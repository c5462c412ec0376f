"""Keep Python's full garbage collections off the copy path.

A worker's heap is mostly what start-up made: ~130 000 modules, functions, types and
descriptors of Faust, aiokafka, aiohttp and SQLAlchemy, alive until the process ends. Every
full (generation 2) collection still walked all of them: 60–130 ms of CPU on this machine,
every ~5 s under load, in the middle of whatever the loop was doing; at 200 followers that was
a lane stalled for the whole collection, the p99 of the copy latency. ``gc.freeze()`` moves
the objects alive at that moment into the permanent generation, which collections skip;
they are still freed by reference counting if they die, only cycles among them would be kept.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)


def freeze_startup_heap() -> int:
    """Collect once, then exempt every surviving object from later collections; returns
    how many objects are frozen now."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("gc: %d start-up objects frozen out of future collections", frozen)
    return frozen
