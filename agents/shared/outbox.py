"""Where agents put their results: one small interface over the output topics.

Agents never call ``topic.send`` directly, so tests run them against :class:`MemoryOutbox`
(Faust's ``test_context`` would otherwise try to reach Kafka on an unpatched send) and the
hot path has one place to measure.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from functools import lru_cache, partial
from typing import Any, Protocol, TypeVar, cast

import orjson
from faust.types import TopicT
from faust.utils.json import on_default

from ...core.records import (
    MAX_ERRORS_PER_RECORD,
    MAX_PER_RECORD,
    AccountStatus,
    ErrorBatch,
    Execution,
    ExecutionBatch,
    IntentBatch,
    OrderError,
    OrderIntent,
    Position,
    PositionBatch,
)
from ...core.topics import SPEC, Topics, partition_for

INTENT_PARTITIONS = SPEC["orders.requests"].partitions
EXECUTION_PARTITIONS = SPEC["trade.executions"].partitions
POSITION_PARTITIONS = SPEC["positions.updates"].partitions
ERROR_PARTITIONS = SPEC["order.errors"].partitions

log = logging.getLogger(__name__)

#: Most bytes one record of ours may take on the wire. Faust's producer refuses a record over
#: its ``producer_max_request_size`` (1,000,000 by default) and Kafka one over its
#: ``message.max.bytes`` (1 MiB): such a record is never taken, so a sender that sees its
#: records through (the executor, the fan-out) would send it again forever and commit nothing
#: after it. Counted batches alone do not keep under that: 500 rejects whose broker reason is
#: 4,000 characters of non-ASCII text come to megabytes. Half the limit leaves room for the
#: record batch's framing and a lowered setting.
MAX_RECORD_BYTES = 512 * 1024


#: Set by a consumer around the handling of one record (the fan-out's direct consumer,
#: ``agents/fanout/signal_consumer.py``): every send :class:`TopicOutbox` makes meanwhile adds
#: the producer's delivery future here, so the record's offset is committed only once Kafka
#: acknowledged everything it produced. Task-local; ``None`` (no one collects) elsewhere.
RECEIPTS: ContextVar[list[asyncio.Future[Any]] | None] = ContextVar("outbox_receipts", default=None)


#: Sends one record again: the same topic, partition, key and bytes (what
#: :data:`RESENDABLE` pairs with each delivery future).
Resend = Callable[[], Awaitable[object]]

#: Set by a sender that sees its records through to Kafka itself (the executor's
#: :class:`~.deferred_outbox.DeferredOutbox`): every send :class:`TopicOutbox` makes meanwhile
#: adds (delivery future, how to send that record again) here, so a record the producer gave
#: up on is sent again, alone, and no record Kafka acknowledged is sent twice. A send that
#: raised is handed over the same way, as a failed future, with every record of the call that
#: was not appended after it. Task-local; ``None`` (no one resends) elsewhere.
RESENDABLE: ContextVar[list[tuple[asyncio.Future[Any], Resend]] | None] = ContextVar("outbox_resendable", default=None)


def note_receipt(sent: object) -> None:
    """Hand a send's delivery future to the consumer collecting them, if any."""
    receipts = RECEIPTS.get()
    if receipts is not None:
        receipts.append(cast(asyncio.Future[Any], sent))


def _not_sent(resendable: list[tuple[asyncio.Future[Any], Resend]], exc: Exception, resends: list[Resend]) -> None:
    """Records whose send raised (or never started), handed to the collector as failed sends."""
    loop = asyncio.get_running_loop()
    for again in resends:
        failed: asyncio.Future[Any] = loop.create_future()
        failed.set_exception(exc)
        resendable.append((failed, again))


class _Keyed(Protocol):
    account_id: str


T = TypeVar("T", bound=_Keyed)
U = TypeVar("U")


@lru_cache(maxsize=16_384)
def _partition(account_id: str, partitions: int) -> int:
    """:func:`partition_for`, remembered: murmur2 in Python costs a few µs per record, and
    the keys are accounts (the configured ones), so the cache stays their size."""
    return partition_for(account_id, partitions)


def fitted(
    group: list[U], encode: Callable[[list[U]], bytes], limit: int = MAX_RECORD_BYTES
) -> list[tuple[list[U], bytes]]:
    """``group`` encoded as one record, or, when that comes to more than ``limit`` bytes, cut
    in halves until each piece fits (a single item always goes as it is: every record's fields
    are bounded), pieces in order. The usual batch is encoded once, as before."""
    encoded = encode(group)
    if len(encoded) <= limit or len(group) == 1:
        return [(group, encoded)]
    half = (len(group) + 1) // 2
    return fitted(group[:half], encode, limit) + fitted(group[half:], encode, limit)


def intent_records(signal_id: str, intents: list[OrderIntent]) -> list[tuple[int, bytes, bytes]]:
    """One signal's ``orders.requests`` records: (partition, key, value), one per partition
    (:func:`intent_groups`), or more when a partition's batch would not fit one record
    (thousands of followers on a partition); a piece's batch id then ends in ``.<n>``."""
    records = []
    for partition, batch_id, group in intent_groups(signal_id, intents):
        pieces = fitted(group, partial(encode_intents, batch_id))
        if len(pieces) > 1:
            pieces = [(piece, encode_intents(f"{batch_id}.{n}", piece)) for n, (piece, _) in enumerate(pieces)]
        key = batch_id.encode()
        records += [(partition, key, value) for _, value in pieces]
    return records


def intent_groups(signal_id: str, intents: list[OrderIntent]) -> list[tuple[int, str, list[OrderIntent]]]:
    """One signal's intents grouped by the ``orders.requests`` partition of their account:
    (partition, batch id, intents), in the order the partitions first appear."""
    groups: dict[int, list[OrderIntent]] = {}
    for intent in intents:
        groups.setdefault(_partition(intent.account_id, INTENT_PARTITIONS), []).append(intent)
    return [(p, f"{signal_id}|p{p}", group) for p, group in groups.items()]


def batch_intents(signal_id: str, intents: list[OrderIntent]) -> dict[int, IntentBatch]:
    """Group one signal's intents by the ``orders.requests`` partition of their account (one
    batch per partition: what :func:`intent_records` sends while a partition's batch fits)."""
    return {
        p: IntentBatch(batch_id=batch_id, intents=group) for p, batch_id, group in intent_groups(signal_id, intents)
    }


#: What Faust's JSON codec passes to orjson (``faust.utils.json.dumps``).
_FAUST_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z
_INTENT_FIELDS = tuple(OrderIntent._options.fields)
_INTENT_META = {"ns": OrderIntent._options.namespace}
_BATCH_META = {"ns": IntentBatch._options.namespace}


def encode_intents(batch_id: str, intents: list[OrderIntent], appended: float | None = None) -> bytes:
    """``IntentBatch(batch_id=..., intents=..., appended=...).dumps()``, byte for byte, without
    building the batch record or taking Faust's way there.

    Why: Faust encodes a batch through ``to_representation`` and orjson's ``default`` hook,
    which calls back into Python for every intent (``__json__`` → ``asdict``) and every
    Decimal, and building the batch coerces its list of intents one by one; all of it runs
    after the copy's ``fanned_out`` stamp, inside the produce stage. Here each intent's dict
    is read from its fields in their declared order, followed by Faust's ``__faust``
    namespace, as ``to_representation`` writes it, and the batch's fields follow in theirs;
    anything orjson cannot write itself (Decimal) goes through Faust's own ``on_default``
    with Faust's options. A property test compares the bytes with ``IntentBatch.dumps()``.
    """
    encoded = []
    for intent in intents:
        values = intent.__dict__
        fields = {name: values[name] for name in _INTENT_FIELDS}
        fields["__faust"] = _INTENT_META
        encoded.append(fields)
    payload = {"batch_id": batch_id, "intents": encoded, "appended": appended, "__faust": _BATCH_META}
    return orjson.dumps(payload, default=on_default, option=_FAUST_JSON_OPTIONS)


_EXECUTION_FIELDS = tuple(Execution._options.fields)
#: An execution's ``__dict__`` as Faust's ``__init__`` and the router's maker leave it: Faust's
#: bookkeeping, then every field in declared order.
_BUILT_EXECUTION_KEYS = ("__evaluated_fields__", *_EXECUTION_FIELDS)
_EXECUTION_META = {"ns": Execution._options.namespace}
_EXECUTION_BATCH_META = {"ns": ExecutionBatch._options.namespace}


def encode_executions(executions: list[Execution]) -> bytes:
    """``ExecutionBatch(executions=...).dumps()``, byte for byte, the way :func:`encode_intents`
    writes an intent batch: each execution's fields in declared order, then Faust's
    ``__faust`` namespace, then the batch's; Decimals and anything else orjson cannot write
    go through Faust's ``on_default`` with Faust's options. A property test compares the
    bytes with ``ExecutionBatch.dumps()`` for executions built every way.

    An execution whose ``__dict__`` holds exactly its fields in order (every one the executor
    builds) is copied whole, less Faust's bookkeeping key: a third of reading 26 fields one
    by one, which any other execution gets. The batch's own checks are the caller's: 1 to
    ``MAX_PER_RECORD`` executions (what ``_by_partition`` groups), each an
    :class:`Execution` (each checked when it was built).
    """
    encoded = []
    for execution in executions:
        values = execution.__dict__
        if tuple(values) == _BUILT_EXECUTION_KEYS:
            fields = values.copy()
            del fields["__evaluated_fields__"]
        else:
            fields = {name: values[name] for name in _EXECUTION_FIELDS}
        fields["__faust"] = _EXECUTION_META
        encoded.append(fields)
    payload = {"executions": encoded, "__faust": _EXECUTION_BATCH_META}
    return orjson.dumps(payload, default=on_default, option=_FAUST_JSON_OPTIONS)


def _by_partition(items: list[T], partitions: int, per_record: int = MAX_PER_RECORD) -> list[tuple[int, list[T]]]:
    """Items grouped by the partition of their account, in their order, at most
    ``per_record`` to a group."""
    groups: dict[int, list[T]] = {}
    for item in items:
        groups.setdefault(_partition(item.account_id, partitions), []).append(item)
    return [
        (partition, group[start : start + per_record])
        for partition, group in groups.items()
        for start in range(0, len(group), per_record)
    ]


def batch_executions(executions: list[Execution]) -> list[tuple[int, ExecutionBatch]]:
    """One :class:`ExecutionBatch` per ``trade.executions`` partition (and per 500, and per
    :data:`MAX_RECORD_BYTES`): the records :meth:`TopicOutbox.executions` sends."""
    return [
        (p, ExecutionBatch(executions=piece))
        for p, group in _by_partition(executions, EXECUTION_PARTITIONS)
        for piece, _ in fitted(group, encode_executions)
    ]


def batch_positions(positions: list[Position]) -> list[tuple[int, PositionBatch]]:
    """One :class:`PositionBatch` per ``positions.updates`` partition (and per 500)."""
    return [(p, PositionBatch(positions=g)) for p, g in _by_partition(positions, POSITION_PARTITIONS)]


def batch_errors(errors: list[OrderError]) -> list[tuple[int, ErrorBatch]]:
    """One :class:`ErrorBatch` per ``order.errors`` partition (and per 100, and per
    :data:`MAX_RECORD_BYTES` by :func:`_error_bytes`)."""
    return [
        (p, ErrorBatch(errors=piece))
        for p, group in _by_partition(errors, ERROR_PARTITIONS, MAX_ERRORS_PER_RECORD)
        for piece in _packed(group, _error_bytes)
    ]


def _error_bytes(error: OrderError) -> int:
    """Most bytes ``error`` can take in a record, without encoding it (Faust does that when
    it sends): a character is at most six bytes of JSON (``\\u001f``), a stamp a name of
    at most 32 and a float, and the field names and punctuation well under 512."""
    texts = (error.error_id, error.stage, error.reason, error.account_id, error.signal_id)
    more = (error.client_order_id, error.code, error.payload)
    return 6 * sum(len(text) for text in (*texts, *more) if text) + 64 * len(error.stamps) + 512


def _packed(group: list[U], most_bytes: Callable[[U], int], limit: int = MAX_RECORD_BYTES) -> list[list[U]]:
    """``group`` cut, in order, into pieces whose items' ``most_bytes`` add up to at most
    ``limit`` (an item over it alone goes alone)."""
    pieces: list[list[U]] = []
    size = 0
    for item in group:
        bound = most_bytes(item)
        if not pieces or size + bound > limit:
            pieces.append([])
            size = 0
        pieces[-1].append(item)
        size += bound
    return pieces


class Outbox(Protocol):
    async def intents(self, signal_id: str, intents: list[OrderIntent]) -> None: ...
    async def execution(self, execution: Execution) -> None: ...
    async def executions(self, executions: list[Execution]) -> None: ...
    async def error(self, error: OrderError) -> None: ...
    async def errors(self, errors: list[OrderError]) -> None: ...
    async def position(self, position: Position) -> None: ...
    async def positions(self, positions: list[Position]) -> None: ...
    async def status(self, status: AccountStatus) -> None: ...
    async def health(self, status: AccountStatus) -> None: ...
    async def signal(self, key: str, payload: bytes) -> None: ...


class TopicOutbox:
    """The production outbox: Faust topics, keyed as the topic layout says."""

    def __init__(self, topics: Topics) -> None:
        self.topics = topics

    async def intents(self, signal_id: str, intents: list[OrderIntent]) -> None:
        """One record per partition, all appended to the producer in one loop turn.

        Why: aiokafka keeps one request in flight per broker, so a batch appended after the
        sender ran waits for the previous request's answer: a signal whose batches trickle out
        a loop turn apart pays a produce round trip per turn (measured: 3.6–4.2 requests per
        signal while ``CopyTraderApp.maybe_start_producer`` had stopped working, against 1 now;
        docs/benchmarks.md, "Fan-out and the produce hop"). Here no loop turn can come between
        two batches whatever Faust does: the batches are encoded first (``encode_intents``:
        Faust's bytes), the producer is checked once, and every batch goes straight to Faust's
        producer — the one Faust's offset commit flushes, so a signal's offset is still
        committed only after its intents reached Kafka — without Faust's per-record
        ``PendingMessage`` and ``FutureMessage``. The send sensors are told as ``Topic.send``
        tells them.
        """
        await _append(self.topics.intents, intent_records(signal_id, intents))

    async def execution(self, execution: Execution) -> None:
        await self.executions([execution])

    async def executions(self, executions: list[Execution]) -> None:
        """One record per partition (see :class:`ExecutionBatch`), keyed by its first account,
        encoded to Faust's bytes (``encode_executions``) and appended to Faust's producer in one
        loop turn, as :meth:`intents` appends its batches.

        Why: ``Topic.send`` per batch built an ``ExecutionBatch`` (its checks, again), encoded it
        through Faust's codec chain (orjson's ``default`` hook into Python per execution and per
        Decimal) and made a ``PendingMessage`` and a ``FutureMessage`` for every record: the
        executor's publishing step, one to two per copy (#16). Delivery is unchanged: the
        same producer, key bytes (the first account) and partition, each delivery future handed
        to whoever collects them (the executor's ``DeferredOutbox``, which commits an intent's
        offset only once Kafka acknowledged its records, and sends a failed one again).
        """
        records = [
            (partition, piece[0].account_id.encode(), value)
            for partition, group in _by_partition(executions, EXECUTION_PARTITIONS)
            for piece, value in fitted(group, encode_executions)
        ]
        await _append(self.topics.executions, records)

    async def error(self, error: OrderError) -> None:
        await self._send_errors([partial(self.topics.errors.send, key=error.account_id, value=error)])

    async def errors(self, errors: list[OrderError]) -> None:
        """One record per partition (see :class:`ErrorBatch`), keyed by its first account; a
        lone error goes bare, as it always did."""
        if len(errors) == 1:
            await self.error(errors[0])
            return
        await self._send_errors(
            [
                partial(self.topics.errors.send, key=batch.errors[0].account_id, value=batch, partition=partition)
                for partition, batch in batch_errors(errors)
            ]
        )

    async def _send_errors(self, sends: list[Callable[[], Awaitable[Any]]]) -> None:
        """Each ``Topic.send``, its delivery noted; with :data:`RESENDABLE` collecting, each
        paired with a send of the same record (the same value and key: Faust encodes them to
        the same bytes), and a send that raises hands over the rest unsent."""
        resendable = RESENDABLE.get()
        for index, send in enumerate(sends):
            try:
                sent = await send()
            except Exception as exc:
                if resendable is None:
                    raise
                _not_sent(resendable, exc, [partial(self._send_errors, [rest]) for rest in sends[index:]])
                return
            note_receipt(sent)
            if resendable is not None:
                resendable.append((sent, partial(self._send_errors, [send])))

    async def position(self, position: Position) -> None:
        await self.positions([position])

    async def positions(self, positions: list[Position]) -> None:
        """One record per partition (see :class:`PositionBatch`), keyed by its first account."""
        for partition, batch in batch_positions(positions):
            note_receipt(
                await self.topics.positions.send(key=batch.positions[0].account_id, value=batch, partition=partition)
            )

    async def status(self, status: AccountStatus) -> None:
        note_receipt(await self.topics.status.send(key=status.account_id, value=status))

    async def health(self, status: AccountStatus) -> None:
        note_receipt(await self.topics.health.send(key=status.account_id, value=status))

    async def signal(self, key: str, payload: bytes) -> None:
        note_receipt(await self.topics.signals.send(key=key, value=payload))


async def _append(topic: TopicT, records: list[tuple[int, bytes, bytes]]) -> None:
    """Append encoded ``(partition, key, value)`` records to Faust's producer in one loop turn.

    What ``Topic.send`` does for each, less its per-record ``PendingMessage`` and
    ``FutureMessage``: the producer is started (once), the sensors are told of the send and
    of its outcome, and the driver gets Faust's arguments (no timestamp, ``[]`` headers). The
    producer is the one Faust's offset commit and the executor's ``before_commit`` flush (a
    flush returns normally when a send failed: only the delivery futures tell); a consumer
    collecting delivery futures
    (:data:`RECEIPTS`) gets each one, as it does from ``Topic.send``. A sender collecting
    :data:`RESENDABLE` gets each with a send of the same bytes, and, should a send raise, the
    records not appended as failed sends instead of the exception.
    """
    app = topic.app
    resendable = RESENDABLE.get()
    appended = 0
    try:
        producer = await app.maybe_start_producer()
        name = topic.get_topic_name()
        sensors = app.sensors
        for partition, key, value in records:
            state = sensors.on_send_initiated(producer, name, message=None, keysize=len(key), valsize=len(value))  # type: ignore[arg-type]  # no PendingMessage is built; the sensors count sizes only
            sent = await producer.send(name, key, value, partition, None, [])
            cast(asyncio.Future[Any], sent).add_done_callback(partial(_report_sent, sensors, producer, state, name))
            note_receipt(sent)
            if resendable is not None:
                resendable.append((sent, partial(_append, topic, [(partition, key, value)])))
            appended += 1
    except Exception as exc:
        if resendable is None:
            raise
        _not_sent(resendable, exc, [partial(_append, topic, [record]) for record in records[appended:]])


def _report_sent(sensors: Any, producer: Any, state: Any, topic: str, sent: asyncio.Future[Any]) -> None:
    """What Faust's ``Topic._on_published`` tells the sensors when a record was sent."""
    if sent.cancelled():  # the producer stopped with it queued: nothing was sent, nothing to count
        return
    try:
        metadata = sent.result()
    except Exception as exc:  # noqa: BLE001 - logged and counted, as Faust's own callback does
        log.warning("%s record not sent: %r", topic, exc)
        sensors.on_send_error(producer, exc, state)
    else:
        sensors.on_send_completed(producer, state, metadata)


class MemoryOutbox:
    """Collects everything by kind (tests, and the bench's in-process checks)."""

    def __init__(self) -> None:
        self.sent: dict[str, list[object]] = defaultdict(list)

    async def intents(self, signal_id: str, intents: list[OrderIntent]) -> None:
        self.sent["intent"].extend(intents)

    async def execution(self, execution: Execution) -> None:
        self.sent["execution"].append(execution)

    async def executions(self, executions: list[Execution]) -> None:
        for execution in executions:
            await self.execution(execution)  # one at a time, so a test's override sees each

    async def error(self, error: OrderError) -> None:
        self.sent["error"].append(error)

    async def errors(self, errors: list[OrderError]) -> None:
        for error in errors:
            await self.error(error)  # one at a time, so a test's override sees each

    async def position(self, position: Position) -> None:
        self.sent["position"].append(position)

    async def positions(self, positions: list[Position]) -> None:
        for position in positions:
            await self.position(position)

    async def status(self, status: AccountStatus) -> None:
        self.sent["status"].append(status)

    async def health(self, status: AccountStatus) -> None:
        self.sent["health"].append(status)

    async def signal(self, key: str, payload: bytes) -> None:
        self.sent["signal"].append((key, payload))
