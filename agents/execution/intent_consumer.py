"""The executor's ``orders.requests`` consumer without Faust: a plain aiokafka consumer in the
worker's own event loop (``COPYTRADER_EXECUTOR_CONSUMER=direct``, the default).

Why: Faust runs its Kafka consumer in a second thread and hands every fetch across two thread
hops (a method queue into the consumer thread, a future back) plus its own drain loop and
stream queue. On a busy two-core machine each hop waits for the other thread's GIL slot and the
OS scheduler: broker append to agent took ~3x longer at the median than a plain consumer in
the worker's own loop (docs/benchmarks.md has the measurements). Here the fetch is awaited
where the intents are executed: one hop.

Delivery contract, the same as the Faust agent's manual acks: an offset is committed only once
every intent of its batch (and of every earlier batch of the partition) has finished in its
lane and Kafka acknowledged its outcome records (``agents/shared/deferred_outbox.py``), so a
crash or a rebalance redelivers unfinished intents. On revocation the consumer first
lets the revoked partitions' in-flight intents finish (bounded), then commits, so the next owner
starts after them.

Which batches may be redeliveries: every record below the partition's end offset at the moment
this consumer was assigned the partition was written before this consumer owned it, so the
previous owner (maybe another host, whose attempt journal this one cannot read) may have sent
it to the broker. Those are handed on as ``redelivered``; the executor looks their orders up at
the broker before placing. Records appended after the assignment are fresh: only this consumer
can have seen them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import partial

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from ...core.records import IntentBatch
from ..shared.direct_consumer import DirectConsumer

log = logging.getLogger(__name__)

#: Intents fetched and not finished before fetching pauses (resumes at half). Counted in
#: intents, not batches: a batch holds one signal's intents for one partition, a hundred at
#: 1,000 followers, and a backlog (a slow broker, an outage) must not fill memory with them
#: (#18, the soak). Twenty signals ahead at 200 followers; stale ones are netted anyway.
MAX_INTENTS_IN_FLIGHT = 4096
#: How long background work waits for the copies in flight before it goes ahead anyway.
COPIES_FIRST_MAX_WAIT_S = 1.0
LOG_APPEND_TIME = 1  # Kafka's timestamp type: the broker's clock when it appended the record

# submit(batch, done, redelivered): ``done`` acks the batch; ``redelivered`` says a previous
# owner of the partition may already have handled it.
Submit = Callable[[IntentBatch, Callable[[], Awaitable[object]], bool], None]
# unreadable(record, exc, done): a record that is no intent batch, to be reported; ``done``
# passes its offset once the report is out.
Unreadable = Callable[[ConsumerRecord, Exception, Callable[[], Awaitable[object]]], None]


class PartitionProgress:
    """Offsets handed to the lanes and not finished yet, per partition, and the commit points.

    The commit point of a partition is its lowest unfinished offset, or one past the last
    offset seen when nothing is pending: everything before it is finished.
    """

    def __init__(self) -> None:
        # offset → its intents, insertion order = offset order
        self._pending: dict[TopicPartition, dict[int, int]] = {}
        self._next: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._intents = 0  # in flight over every partition

    def started(self, tp: TopicPartition, offset: int, intents: int = 1) -> None:
        self._pending.setdefault(tp, {})[offset] = intents
        self._intents += intents
        self._next[tp] = offset + 1

    def finished(self, tp: TopicPartition, offset: int) -> None:
        pending = self._pending.get(tp)
        if pending is not None:
            self._intents -= pending.pop(offset, 0)

    def position(self, tp: TopicPartition) -> int | None:
        """The next offset to hand out, once the partition delivered anything."""
        return self._next.get(tp)

    def in_flight(self, tps: Iterable[TopicPartition] | None = None) -> int:
        """Batches handed out and not finished (of ``tps``, or of every partition)."""
        wanted = self._pending.keys() if tps is None else tps
        return sum(len(self._pending.get(tp, ())) for tp in wanted)

    def intents_in_flight(self) -> int:
        """The intents those batches carry: what the executor holds in memory."""
        return self._intents

    def commit_points(self, tps: Iterable[TopicPartition] | None = None) -> dict[TopicPartition, int]:
        """Points that moved since :meth:`committed` was last told about them."""
        points = {}
        for tp in list(self._next if tps is None else tps):
            if tp not in self._next:
                continue
            pending = self._pending.get(tp)
            point = next(iter(pending)) if pending else self._next[tp]
            if self._committed.get(tp) != point:
                points[tp] = point
        return points

    def committed(self, points: dict[TopicPartition, int]) -> None:
        self._committed.update(points)

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            self._intents -= sum(self._pending.pop(tp, {}).values())
            self._next.pop(tp, None)
            self._committed.pop(tp, None)


class DirectIntentConsumer(DirectConsumer):
    """Fetches intent batches and hands them to ``submit``; commits finished offsets only."""

    progress: PartitionProgress

    def __init__(
        self,
        topic: str,
        bootstrap_servers: str,
        group_id: str,
        submit: Submit,
        *,
        adopt_offsets_from: str | Sequence[str] | None = None,
        fetch_max_wait_ms: int = 5,
        commit_interval_s: float = 0.5,
        max_in_flight: int = MAX_INTENTS_IN_FLIGHT,
        revoke_wait_s: float = 5.0,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 2_000,
        before_commit: Callable[[], Awaitable[object]] | None = None,
        unreadable: Unreadable | None = None,
    ) -> None:
        super().__init__(
            topic,
            bootstrap_servers,
            group_id,
            adopt_offsets_from=adopt_offsets_from,
            fetch_max_wait_ms=fetch_max_wait_ms,
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=heartbeat_interval_ms,
        )
        self.submit = submit
        self.commit_interval_s = commit_interval_s
        self.max_in_flight = max_in_flight
        self.revoke_wait_s = revoke_wait_s
        # Awaited before every commit: the producer's flush. Not a delivery check (Faust's and
        # aiokafka's flush return normally when a send failed): the executor finishes an
        # intent only once Kafka acknowledged its outcome records (``submit_batch``).
        self.before_commit = before_commit
        self.unreadable = unreadable
        self.progress = PartitionProgress()
        self._room = asyncio.Event()
        self._room.set()
        self._finished_one = asyncio.Event()
        self._idle = asyncio.Event()  # set while no intent is in flight (see copies_first)
        self._idle.set()
        self._tasks: list[asyncio.Task[None]] = []
        # Per assigned partition: its end offset when assigned (None: not known yet). Records
        # below it may have been handled by the partition's previous owner.
        self._assigned_end: dict[TopicPartition, int | None] = {}

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        await self._open()
        self._tasks = [asyncio.ensure_future(self._fetch_loop()), asyncio.ensure_future(self._commit_loop())]

    async def stop(self) -> None:
        """Stop fetching, let in-flight intents finish (bounded), commit, leave the group."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._consumer is None:
            return
        await self._wait_finished(None, self.revoke_wait_s)
        await self._commit(None)
        await self._consumer.stop()

    # -- fetching ---------------------------------------------------------------------------
    async def _fetch_loop(self) -> None:
        while True:
            await self._room.wait()
            try:
                fetched = await self.consumer.getmany(timeout_ms=1000)
            except KafkaError as exc:  # the consumer retries on its own; do not spin
                log.warning("orders.requests fetch failed: %s", exc)
                await asyncio.sleep(0.5)
                continue
            if fetched:
                await self._let_next_fetch_go_out()
            for tp, records in fetched.items():
                for record in records:
                    self._dispatch(tp, record)

    def _dispatch(self, tp: TopicPartition, record: ConsumerRecord) -> None:
        try:
            batch = IntentBatch.loads(record.value)
            intents = len(batch.intents)  # Faust builds (and validates) the nested intents on first read
        except Exception as exc:  # noqa: BLE001 - a poison record must not block its partition forever
            log.exception("orders.requests %s@%d: undecodable intent batch skipped", tp, record.offset)
            self.progress.started(tp, record.offset)
            if self.unreadable is None:
                self._finished(tp, record.offset)
            else:  # passed once it is said on order.errors: the copies it held are not silently lost
                self.unreadable(record, exc, partial(self._done, tp, record.offset))
            return
        self.progress.started(tp, record.offset, max(intents, 1))
        self._idle.clear()

        if record.timestamp_type == LOG_APPEND_TIME:
            batch.appended = record.timestamp / 1000

        done = partial(self._done, tp, record.offset)

        self.submit(batch, done, self.redelivered(tp, record.offset))
        if self.progress.intents_in_flight() >= self.max_in_flight:
            self._room.clear()

    async def copies_first(self, max_wait_s: float = COPIES_FIRST_MAX_WAIT_S) -> None:
        """Return once no fetched intent is in flight, or after ``max_wait_s``.

        For background work in the same loop (a reconciliation round reads every follower's
        account: 0.1–0.2 ms of CPU each, 100–200 ms a round at 1,000 followers): awaited before
        each step, it runs between signals instead of inside one, so a signal's copies do not
        wait behind it. The bound keeps it going under a steady stream of copies.
        """
        if self._idle.is_set():
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._idle.wait(), max_wait_s)

    def busy(self) -> bool:
        """Whether a fetched intent is in flight (the worker's collections wait, gc_tuning.py)."""
        return not self._idle.is_set()

    def redelivered(self, tp: TopicPartition, offset: int) -> bool:
        """May a previous owner of the partition have handled this record? (See the module doc.)

        Unknown end offset (the lookup at assignment failed): the partition's high watermark
        from the first fetch stands in, which is later, so more records count as redelivered,
        never fewer. A partition never announced as assigned counts wholly as redelivered.
        """
        if tp not in self._assigned_end:
            return True
        end = self._assigned_end[tp]
        if end is None:
            end = self._assigned_end[tp] = self.consumer.highwater(tp) if self._consumer is not None else None
            if end is None:
                return True
        return offset < end

    async def _done(self, tp: TopicPartition, offset: int) -> None:
        self._finished(tp, offset)

    def _finished(self, tp: TopicPartition, offset: int) -> None:
        self.progress.finished(tp, offset)
        self._finished_one.set()
        if not self.progress.in_flight():
            self._idle.set()
        if not self._room.is_set() and self.progress.intents_in_flight() < self.max_in_flight // 2:
            self._room.set()

    # -- committing -------------------------------------------------------------------------
    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(self.commit_interval_s)
            await self._commit(None)

    async def _commit(self, tps: Iterable[TopicPartition] | None) -> None:
        assigned = self.consumer.assignment()
        points = {tp: p for tp, p in self.progress.commit_points(tps).items() if tp in assigned}
        if not points:
            return
        if self.before_commit is not None:
            try:
                await self.before_commit()
            except Exception as exc:  # noqa: BLE001 - no commit ahead of unwritten outcomes; next round retries
                log.warning("orders.requests: producer flush before commit failed (%r); not committing", exc)
                return
        try:
            await self.consumer.commit({tp: OffsetAndMetadata(p, "") for tp, p in points.items()})
        except KafkaError as exc:  # rebalancing or broker away: the next commit carries it
            log.warning("orders.requests commit of %d partition(s) failed: %s", len(points), exc)
        else:
            self.progress.committed(points)

    async def _wait_finished(self, tps: set[TopicPartition] | None, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.progress.in_flight(tps) and loop.time() < deadline:
            self._finished_one.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._finished_one.wait(), deadline - loop.time())
        left = self.progress.in_flight(tps)
        if left:
            log.warning("orders.requests: %d intent batch(es) still running; they will be redelivered", left)

    # -- rebalancing (aiokafka awaits these before it rejoins) ------------------------------
    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        tps = set(revoked)
        await self._wait_finished(tps, self.revoke_wait_s)
        await self._commit(tps)
        self.progress.forget(tps)
        if not self.progress.in_flight():
            self._idle.set()
        for tp in tps:
            self._assigned_end.pop(tp, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        """Note each new partition's end offset: the line between redelivered and fresh records.

        Fetching starts at the group's committed offsets; aiokafka awaits this first.
        """
        if not assigned:
            return
        try:
            ends = await self.consumer.end_offsets(list(assigned))
        except KafkaError as exc:  # the high watermark of the first fetch stands in
            log.warning("orders.requests: end offsets at assignment unknown (%s)", exc)
            ends = {}
        for tp in assigned:
            self._assigned_end[tp] = ends.get(tp)


__all__ = ["DirectIntentConsumer", "PartitionProgress"]
