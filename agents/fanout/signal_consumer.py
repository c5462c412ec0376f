"""The fan-out's ``trade.signals`` consumer without Faust: a plain aiokafka consumer in the
worker's own event loop (``COPYTRADER_FANOUT_CONSUMER=direct``, the default).

Why (docs/benchmarks.md, "Fan-out without Faust's consumer"): profiling put about a quarter of
the fan-out's CPU in Faust's consumer machinery: its consumer thread, the two thread hops of
every fetch, the stream's queues and the per-event ack bookkeeping. The executor dropped it
the same way (``agents/execution/intent_consumer.py``). Here a fetch is awaited where the
signals are planned, and each signal goes to :func:`~.agent.handle_signal` as it did.

Delivery contract: a signal's offset is committed only once Kafka acknowledged every record
it produced (its intent batches on ``orders.requests``, its refusals on ``order.errors``). The
outbox hands each send's delivery future to the signal being handled
(:data:`~..shared.outbox.RECEIPTS`); the commit point of a partition is its lowest signal
whose futures have not all succeeded. A crash before the acks therefore redelivers the
signal, and redelivery is safe: everything the fan-out writes carries an id derived from the
signal (client order id from signal id and follower, batch id from signal id and partition,
refusal id from signal id, follower and stage), and the executor places a client order id
once. A send that failed (the producer gave up) rewinds its partition to that signal, which
is handled again after a pause: the redelivery a restart would make, without the restart.

Order: signals are handled one at a time in fetch order, so a partition's signals are planned
and their intents appended to the producer in offset order, and the producer keeps a
partition's records in order. Rebalances: on revocation no further signal of the fetch in
hand is handled; the one being handled finishes, the revoked partitions' unacknowledged
records get up to ``revoke_wait_s`` to be acknowledged, then their offsets are committed, so
the next owner starts after what was done here and redelivers the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from ..shared.direct_consumer import DirectConsumer
from ..shared.outbox import RECEIPTS

log = logging.getLogger(__name__)

#: Handles one signal's bytes (``handle_signal`` bound to its stage).
Handle = Callable[[bytes], Awaitable[object]]


@dataclass(slots=True)
class _Signal:
    """One signal handed to the fan-out: the delivery futures of what it sent, and whether its
    handling returned (``handled``) or raised (``failed``)."""

    receipts: list[asyncio.Future[Any]] = field(default_factory=list)
    handled: bool = False
    failed: bool = False

    def state(self) -> str:
        """``done`` (handled, every record acknowledged), ``failed`` or ``pending``."""
        if self.failed:
            return "failed"
        for receipt in self.receipts:
            if not receipt.done():
                return "pending"
            if receipt.cancelled() or receipt.exception() is not None:
                return "failed"
        return "done" if self.handled else "pending"


class SignalProgress:
    """Signals not yet known to be done, per partition, and the commit points.

    The commit point of a partition is its lowest signal not done, or one past the last
    offset handed out when every signal is done: everything before it is acknowledged.
    """

    def __init__(self) -> None:
        self._pending: dict[TopicPartition, dict[int, _Signal]] = {}  # insertion = offset order
        self._next: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}

    def started(self, tp: TopicPartition, offset: int) -> _Signal:
        signal = _Signal()
        self._pending.setdefault(tp, {})[offset] = signal
        self._next[tp] = offset + 1
        return signal

    def position(self, tp: TopicPartition) -> int | None:
        """The next offset to hand out, once the partition delivered anything."""
        return self._next.get(tp)

    def settle(
        self, tps: Iterable[TopicPartition] | None = None
    ) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
        """Drop the done signals at the head of each partition; returns the commit points that
        moved since :meth:`committed` was last told, and the partitions whose head failed (at
        that offset)."""
        points: dict[TopicPartition, int] = {}
        failed: dict[TopicPartition, int] = {}
        for tp in list(self._next if tps is None else tps):
            if tp not in self._next:
                continue
            pending = self._pending.get(tp, {})
            while pending:
                offset, signal = next(iter(pending.items()))
                state = signal.state()
                if state == "failed":
                    failed[tp] = offset
                if state != "done":
                    break
                del pending[offset]
            point = next(iter(pending)) if pending else self._next[tp]
            if self._committed.get(tp) != point:
                points[tp] = point
        return points, failed

    def unacknowledged(self, tps: Iterable[TopicPartition] | None = None) -> list[asyncio.Future[Any]]:
        """Delivery futures of the signals of ``tps`` (every partition: None) still out."""
        wanted = self._pending.keys() if tps is None else tps
        return [r for tp in wanted for s in self._pending.get(tp, {}).values() for r in s.receipts if not r.done()]

    def in_flight(self, tps: Iterable[TopicPartition] | None = None) -> int:
        """Signals handed out and not yet known to be done."""
        wanted = self._pending.keys() if tps is None else tps
        return sum(len(self._pending.get(tp, ())) for tp in wanted)

    def rewind(self, tp: TopicPartition, offset: int) -> None:
        """Forget the signals of ``tp`` from ``offset`` on: they are handled again."""
        pending = self._pending.get(tp, {})
        for later in [o for o in pending if o >= offset]:
            del pending[later]
        if self._next.get(tp, offset) > offset:
            self._next[tp] = offset

    def committed(self, points: dict[TopicPartition, int]) -> None:
        self._committed.update(points)

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            self._pending.pop(tp, None)
            self._next.pop(tp, None)
            self._committed.pop(tp, None)


class DirectSignalConsumer(DirectConsumer):
    """Fetches signals, hands each to ``handle`` in order, commits acknowledged offsets only."""

    progress: SignalProgress

    def __init__(
        self,
        topic: str,
        bootstrap_servers: str,
        group_id: str,
        handle: Handle,
        *,
        adopt_offsets_from: str | Sequence[str] | None = None,
        fetch_max_wait_ms: int = 500,
        commit_interval_s: float = 0.5,
        revoke_wait_s: float = 5.0,
        retry_after_s: float = 1.0,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 2_000,
        records_waiting: Callable[[], bool] | None = None,
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
        self.handle = handle
        self.commit_interval_s = commit_interval_s
        self.revoke_wait_s = revoke_wait_s
        self.retry_after_s = retry_after_s
        self.progress = SignalProgress()
        # Whether the producer still holds records its sender has not taken (None: unknown).
        self.records_waiting = records_waiting
        self._tasks: list[asyncio.Task[None]] = []
        self._idle = asyncio.Event()  # no signal is being handled
        self._idle.set()
        # Bumped on every revocation: the rest of the fetch in hand is not handled.
        self._generation = 0
        self._rewinds: dict[TopicPartition, int] = {}  # partitions to handle again from an offset

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        await self._open()
        self._tasks = [asyncio.ensure_future(self._fetch_loop()), asyncio.ensure_future(self._commit_loop())]
        for task in self._tasks:
            task.add_done_callback(_report_crash)

    async def stop(self) -> None:
        """Stop fetching (a signal being handled is cut short and will be redelivered), give
        the records already sent up to ``revoke_wait_s`` to be acknowledged, commit, leave."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._consumer is None:
            return
        await self._wait_acknowledged(None, self.revoke_wait_s)
        await self._commit(None)
        await self._consumer.stop()

    # -- fetching and handling ----------------------------------------------------------------
    async def _fetch_loop(self) -> None:
        while True:
            self._apply_rewinds()
            try:
                fetched = await self.consumer.getmany(timeout_ms=1000)
            except KafkaError as exc:  # the consumer retries on its own; do not spin
                log.warning("trade.signals fetch failed: %s", exc)
                await asyncio.sleep(0.5)
                continue
            if not fetched:
                continue
            await self._let_next_fetch_go_out()
            generation = self._generation
            for tp, records in fetched.items():
                for record in records:
                    if generation != self._generation or tp in self._rewinds:
                        break  # revoked (the next owner has them) or to be handled again
                    await self._handle(tp, record)

    async def _handle(self, tp: TopicPartition, record: ConsumerRecord) -> None:
        signal = self.progress.started(tp, record.offset)
        token = RECEIPTS.set(signal.receipts)
        self._idle.clear()
        try:
            await self.handle(record.value)
        except Exception:  # noqa: BLE001 - the signal is handled again; the next ones must not stop
            log.exception(
                "trade.signals %s@%d: fan-out raised; handled again after %g s", tp, record.offset, self.retry_after_s
            )
            signal.failed = True
            self._rewinds.setdefault(tp, record.offset)
        else:
            signal.handled = True
        finally:
            RECEIPTS.reset(token)
            self._idle.set()
        await self._let_records_go_out()

    async def _let_records_go_out(self) -> None:
        """Yield until the producer's sender took this signal's intents, and a turn more for
        its request to be written, before the next signal is planned (at most six turns).

        One turn was not enough: aiokafka's sender needs two or three. A cancel and a flatten
        published together at 200 followers: the cancel's intents waited in the producer while
        the flatten was planned (7 ms), so both reached Kafka together and the executor took
        the flatten's only after all the cancel's work (#16). A backlog never holds the group
        heartbeat either: every signal yields at least once."""
        await asyncio.sleep(0)
        waiting = self.records_waiting
        if waiting is None:
            return
        for _ in range(4):
            held = waiting()
            await asyncio.sleep(0)
            if not held:
                return

    def busy(self) -> bool:
        """Whether a signal is being handled (the worker's collections wait, gc_tuning.py)."""
        return not self._idle.is_set()

    def _apply_rewinds(self) -> None:
        """Handle a partition again from a signal whose records were not all written: seek
        back, and pause it for ``retry_after_s`` so a send that keeps failing does not spin."""
        if not self._rewinds:
            return
        consumer = self.consumer
        assigned = consumer.assignment()
        loop = asyncio.get_running_loop()
        for tp, offset in self._rewinds.items():
            if tp not in assigned:
                continue  # revoked meanwhile: its next owner starts at the committed offset
            log.warning("trade.signals %s: handling again from offset %d", tp, offset)
            self.progress.rewind(tp, offset)
            consumer.seek(tp, offset)
            consumer.pause(tp)
            loop.call_later(self.retry_after_s, self._resume, tp)
        self._rewinds.clear()

    def _resume(self, tp: TopicPartition) -> None:
        consumer = self._consumer
        if consumer is not None and tp in consumer.assignment() and tp in consumer.paused():
            consumer.resume(tp)

    # -- committing -------------------------------------------------------------------------
    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(self.commit_interval_s)
            await self._commit(None)

    async def _commit(self, tps: Iterable[TopicPartition] | None) -> None:
        assigned = self.consumer.assignment()
        moved, failed = self.progress.settle(tps)
        for tp, offset in failed.items():
            if tp in assigned and tp not in self._rewinds:
                log.error("trade.signals %s@%d: a record it produced was not written; handled again", tp, offset)
                self._rewinds[tp] = offset
        points = {tp: p for tp, p in moved.items() if tp in assigned}
        if not points:
            return
        try:
            await self.consumer.commit({tp: OffsetAndMetadata(p, "") for tp, p in points.items()})
        except KafkaError as exc:  # rebalancing or broker away: the next commit carries it
            log.warning("trade.signals commit of %d partition(s) failed: %s", len(points), exc)
        else:
            self.progress.committed(points)

    async def _wait_acknowledged(self, tps: set[TopicPartition] | None, timeout: float) -> None:
        """Until the signal being handled returned and every record the signals of ``tps``
        sent was acknowledged (or failed), at most ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        waiting = self.progress.unacknowledged(tps)
        if waiting and loop.time() < deadline:
            await asyncio.wait(waiting, timeout=deadline - loop.time())
        left = len(self.progress.unacknowledged(tps))
        if left:
            log.warning("trade.signals: %d record(s) not acknowledged in time; their signals will be redelivered", left)

    # -- rebalancing (aiokafka awaits these before it rejoins) ------------------------------
    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        tps = set(revoked)
        self._generation += 1
        await self._wait_acknowledged(tps, self.revoke_wait_s)
        await self._commit(tps)
        self.progress.forget(tps)
        for tp in tps:
            self._rewinds.pop(tp, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        """Nothing to note: fetching starts at the group's committed offsets."""


def _report_crash(task: asyncio.Task[None]) -> None:
    """A loop that died says so at once (not when its task is collected). Nothing is lost: no
    offset is committed past an unfinished signal, so a restart redelivers from there."""
    if not task.cancelled() and task.exception() is not None:
        log.critical("trade.signals consumer stopped: %r", task.exception(), exc_info=task.exception())


__all__ = ["DirectSignalConsumer", "Handle", "SignalProgress"]
