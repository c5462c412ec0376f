"""The executor's outcome records go out after the orders: one publishing task, in slices.

Why: a signal at 200 followers wakes 200 account lanes in one event-loop turn. When each lane
published its ack (and its fill pump its fill) itself, that turn also held 400 Kafka sends
(serialise, sensors, producer append) before the loop could read the socket again, so the
next intent batches of the same signal sat in the fetch response behind the previous
batches' reporting. Reporting is not on the copy's critical path; placing the order is. Here
the lanes only queue their records; one task publishes them in FIFO order, at most
``slice_s`` of work per loop turn, so a turn that has orders to place or intents to fetch
places and fetches first.

Queued executions leave together: the first one queues a publishing step, and that step sends
every execution queued by the time it runs, one record per ``trade.executions`` partition
(:class:`~copytrader.core.records.ExecutionBatch`). A copy's ack and its immediate fill, or a
signal's acks, then cost their consumers one record instead of one each (#16). Queued errors
leave the same way (:class:`~copytrader.core.records.ErrorBatch`): a netted run of stale
copies reports each of them (#18's soak). Sending a record earlier than its place in the
queue never breaks :meth:`after`'s promise.

Nothing is lost by deferring: :meth:`after` runs a callback once every record queued before
it has been handed to the producer, and the executor acknowledges an intent's Kafka offset
through it, so an offset is never committed ahead of the intent's ack record. Records of one
account keep their order (one FIFO).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

from ...core.records import Execution, OrderError
from .outbox import Outbox

log = logging.getLogger(__name__)

Step = Callable[[], Awaitable[object]]


class DeferredOutbox:
    """The executor's side of an :class:`Outbox` (executions, errors), sends queued and
    published by one background task."""

    def __init__(self, outbox: Outbox, slice_s: float = 0.001) -> None:
        self.outbox = outbox
        self.slice_s = slice_s
        self._queue: deque[Step] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._executions: list[Execution] = []  # queued, waiting for their publishing step
        self._errors: list[OrderError] = []  # the same for ``order.errors``

    # -- what the executor sends: queue, return at once ------------------------------------
    async def execution(self, execution: Execution) -> None:
        self.queue_execution(execution)

    async def error(self, error: OrderError) -> None:
        self.queue_error(error)

    def queue_error(self, error: OrderError) -> None:
        """Queued like an execution: one ``order.errors`` record per partition per step."""
        if not self._errors:
            self._put(self._publish_errors)
        self._errors.append(error)

    def queue_execution(self, execution: Execution) -> None:
        """:meth:`execution` without the await (a netted run queues many in one go)."""
        if not self._executions:
            self._put(self._publish_executions)
        self._executions.append(execution)

    # -- ordering and draining -------------------------------------------------------------
    def after(self, callback: Step) -> None:
        """Run ``callback`` once everything queued before it has been published."""
        self._put(callback)

    async def drained(self) -> None:
        """Wait until the queue is empty (tests, shutdown)."""
        await self._idle.wait()

    async def close(self) -> None:
        """Publish what is queued, then stop the task."""
        if self._queue and self._task is not None:
            await self.drained()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _publish_executions(self) -> None:
        pending, self._executions = self._executions, []
        await self.outbox.executions(pending)

    async def _publish_errors(self) -> None:
        pending, self._errors = self._errors, []
        await self.outbox.errors(pending)

    def _put(self, step: Step) -> None:
        self._queue.append(step)
        self._idle.clear()
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            # Let whatever woke up with these records (other lanes placing orders) go first.
            await asyncio.sleep(0)
            while self._queue:
                started = time.perf_counter()
                while self._queue and time.perf_counter() - started < self.slice_s:
                    step = self._queue.popleft()
                    try:
                        await step()
                    except Exception:  # noqa: BLE001 - one failed send must not stop the others
                        log.exception("publishing an executor record failed")
                await asyncio.sleep(0)
            self._idle.set()
