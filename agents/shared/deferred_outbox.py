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
it has been acknowledged by Kafka, and the executor acknowledges an intent's Kafka offset
through it, so an offset is never committed ahead of the intent's outcome records. Handing a
record to the producer is not enough, nor is the producer's ``flush`` before the commit: Faust's
and aiokafka's ``flush`` wait for the pending batches and return normally when one failed; the
failure is only in each send's delivery future. So every publishing step collects its records'
delivery futures (:data:`~.outbox.RESENDABLE`), and a record the producer gave up on (or whose
send raised) is sent again, alone, with the same topic, partition, key and bytes, ``retry_s``
later, until Kafka takes it; the callbacks queued after it wait meanwhile, so the consumer does
not commit past it. Records of one account keep their order (one FIFO), except that a record
sent again comes after those sent since: consumers already take a fill before its ack (the
fill pump and the lane race), and dedupe by record id.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from ...core.records import Execution, OrderError
from .outbox import RECEIPTS, RESENDABLE, Outbox, Resend

log = logging.getLogger(__name__)

Step = Callable[[], Awaitable[object]]


class _Delivery:
    """One publishing step's records on their way to Kafka: how many sends are unanswered, and
    the records the producer gave up on, sent again once every answer is in."""

    __slots__ = ("left", "failed")

    def __init__(self, left: int) -> None:
        self.left = left
        self.failed: list[Resend] = []


class DeferredOutbox:
    """The executor's side of an :class:`Outbox` (executions, errors), sends queued and
    published by one background task."""

    def __init__(self, outbox: Outbox, slice_s: float = 0.001, retry_s: float = 1.0, close_wait_s: float = 5.0) -> None:
        self.outbox = outbox
        self.slice_s = slice_s
        self.retry_s = retry_s  # before a record Kafka did not take is sent again
        self.close_wait_s = close_wait_s  # at most, for the records out to be acknowledged
        self._queue: deque[Step] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._executions: list[Execution] = []  # queued, waiting for their publishing step
        self._errors: list[OrderError] = []  # the same for ``order.errors``
        self._steps = 0  # publishing steps run so far: the number of the next one
        self._unacknowledged: dict[int, _Delivery] = {}  # by step number, oldest first
        self._acknowledged = asyncio.Event()  # nothing unacknowledged
        self._acknowledged.set()
        # Callbacks whose turn came while records were out: (steps run before them, callback).
        self._parked: deque[tuple[int, Step]] = deque()
        self._timers: set[asyncio.TimerHandle] = set()
        self._closed = False

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
        """Run ``callback`` once everything queued before it has been acknowledged by Kafka."""
        self._put(functools.partial(self._when_acknowledged, callback))

    async def drained(self) -> None:
        """Wait until the queue is empty (tests, shutdown)."""
        await self._idle.wait()

    async def delivered(self) -> None:
        """Wait until the queue is empty and Kafka acknowledged every record sent."""
        while True:
            await self._idle.wait()
            if not self._unacknowledged:
                if self._idle.is_set():
                    return
                continue
            await self._acknowledged.wait()

    async def close(self) -> None:
        """Publish what is queued, give the records out ``close_wait_s`` to be acknowledged
        (a record not acknowledged by then is lost to this process: its intent's offset was
        not committed, so the intent is redelivered), then stop the task."""
        if self._task is not None:
            try:
                await asyncio.wait_for(self.delivered(), self.close_wait_s)
            except TimeoutError:
                log.warning(
                    "executor records not acknowledged by Kafka at shutdown: %d step(s)", len(self._unacknowledged)
                )
        self._closed = True
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _publish_executions(self) -> None:
        pending, self._executions = self._executions, []
        await self._publish(self._next_step(), functools.partial(self.outbox.executions, pending))

    async def _publish_errors(self) -> None:
        pending, self._errors = self._errors, []
        await self._publish(self._next_step(), functools.partial(self.outbox.errors, pending))

    def _next_step(self) -> int:
        number = self._steps
        self._steps += 1
        return number

    # -- following the records until Kafka has them ----------------------------------------
    async def _publish(self, number: int, send: Step) -> None:
        """Run one publishing step (or send its failed records again) and follow every record
        it sent until Kafka answered."""
        sent: list[tuple[asyncio.Future[Any], Resend]] = []
        token = RESENDABLE.set(sent)
        try:
            await send()
        except Exception:  # noqa: BLE001 - an outbox that raises instead of handing failures over
            log.exception("publishing an executor record failed; sent again in %g s", self.retry_s)
            delivery = _Delivery(0)
            delivery.failed.append(send)
        else:
            delivery = _Delivery(len(sent))
        finally:
            RESENDABLE.reset(token)
        if not delivery.left and not delivery.failed and number not in self._unacknowledged:
            return  # nothing went to Kafka (a memory outbox): nothing to wait for
        self._unacknowledged[number] = delivery  # a step sent again keeps its place
        self._acknowledged.clear()
        if not delivery.left:
            self._settle(number, delivery)
            return
        for future, again in sent:
            future.add_done_callback(functools.partial(self._answered, number, delivery, again))

    def _answered(self, number: int, delivery: _Delivery, again: Resend, future: asyncio.Future[Any]) -> None:
        delivery.left -= 1
        if future.cancelled() or future.exception() is not None:
            delivery.failed.append(again)
        if not delivery.left:
            self._settle(number, delivery)

    def _settle(self, number: int, delivery: _Delivery) -> None:
        """Every send of the step answered: send the failed records again later, or release
        the callbacks that waited for this step."""
        if delivery.failed:
            log.error(
                "%d executor record(s) not acknowledged by Kafka; sent again in %g s (no offset is committed past them)",
                len(delivery.failed),
                self.retry_s,
            )
            self._later(functools.partial(self._publish, number, functools.partial(_send_each, delivery.failed)))
            return
        del self._unacknowledged[number]
        lowest = next(iter(self._unacknowledged), None)
        parked = self._parked
        while parked and (lowest is None or parked[0][0] <= lowest):
            self._put(parked.popleft()[1])
        if lowest is None:
            self._acknowledged.set()

    async def _when_acknowledged(self, callback: Step) -> None:
        """``callback``'s turn: every step queued before it has run; run it now if Kafka
        acknowledged all their records, else park it until it has."""
        if self._unacknowledged:
            self._parked.append((self._steps, callback))
        else:
            await callback()

    def _later(self, step: Step) -> None:
        if self._closed:
            return
        loop = asyncio.get_running_loop()

        def due() -> None:
            self._timers.discard(handle)
            self._put(step)

        handle = loop.call_later(self.retry_s, due)
        self._timers.add(handle)

    def _put(self, step: Step) -> None:
        self._queue.append(step)
        self._idle.clear()
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        # This task's own context: no consumer's collector it was started under gets its sends.
        RECEIPTS.set(None)
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


async def _send_each(sends: list[Resend]) -> None:
    """Send failed records again, in their order."""
    for send in sends:
        await send()
