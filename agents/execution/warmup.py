"""The executor's part of the warm-up (``agents/shared/warmup.py``): its intent consumer holds
a fetch position on every partition it was assigned before the worker says it is ready.

Why: right after assignment aiokafka still has to look up each partition's committed offset
(and reset it when the group has none) before its first fetch; a signal arriving then waits
for those round trips on top of its own fetch.
"""

from __future__ import annotations

from ..shared.warmup import Warmup, wait_for
from .intent_consumer import DirectIntentConsumer


async def warm_positions(consumer: DirectIntentConsumer) -> int:
    """Wait for the consumer's first assignment, then resolve the fetch position of each of
    its partitions; returns how many (bounded by the warm-up's timeout)."""
    await wait_for("orders.requests assigned", lambda: bool(consumer.assignment()))
    assigned = sorted(consumer.assignment())
    for tp in assigned:
        await consumer.consumer.position(tp)
    return len(assigned)


def install(warmup: Warmup, consumer: DirectIntentConsumer | None) -> None:
    """Add the executor's step; the Faust-agent consumer (``COPYTRADER_EXECUTOR_CONSUMER=faust``)
    is Faust's own and is ready when Faust assigned it partitions."""
    if consumer is not None:
        warmup.add("execute: orders.requests positions", lambda: warm_positions(consumer))


__all__ = ["install", "warm_positions"]
