"""Storage sink (role ``store``): topics → database, in batches, off the event loop.

Consumes ``trade.signals`` (raw bytes), ``orders.requests``, ``trade.executions``,
``order.errors`` and ``positions.updates`` and writes audit entries, executions, position
snapshots and the pnl series. One direct consumer (``store_consumer.py``) fetches up to
its ``BATCH_SIZE`` records, and each topic's share is mapped to rows (``storage.mapping``, pure)
and written in one transaction in a worker thread (``asyncio.to_thread``): the event loop
never waits on the database. Offsets are committed only after the write, so a crash mid-write
redelivers the batch, and the writer's natural keys make that a no-op.

Failures: a connection problem is retried with backoff until the database is back (the
consumer waits, which is the right backpressure for a sink); any other error (SQLAlchemy's
DataError or IntegrityError, the driver's OverflowError for an integer SQLite cannot hold, a
ValueError while mapping) is about the data: it splits the batch and writes record by record
(a batched topic's record down to its executions or positions), so one bad record is logged,
counted in ``skipped`` and refused instead of stopping the store or blocking the partition.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

import faust
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from ...common.retrying import forever
from ...core.records import IntentBatch, errors_of, executions_of, positions_of
from ...storage import mapping
from ...storage.configsync import sync_config
from ...storage.db import database_url_from_env, make_engine, session_factory
from ...storage.mapping import RowBatch
from ...storage.migrate import upgrade
from ...storage.writer import BatchWriter, WriteResult
from ..shared import jobs
from ..shared.context import StageContext
from .store_consumer import StoreConsumer, StoredTopic

log = logging.getLogger(__name__)

RETRY_FIRST_S = 0.5
RETRY_MAX_S = 30.0
Mapper = Callable[[Sequence[Any]], RowBatch]


def is_transient(exc: BaseException) -> bool:
    """Connection-level failures heal by waiting; everything else is about the data."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class StorageSink:
    """Owns the engine and writer of one worker; ``store`` is what the agents call."""

    def __init__(
        self, database_url: str, *, migrate: bool = True, sleep: Callable[[float], Any] = asyncio.sleep
    ) -> None:
        self.database_url = database_url
        self.migrate = migrate
        self.engine = make_engine(database_url)
        self.writer = BatchWriter(self.engine)
        self.ready = asyncio.Event()
        self.skipped = 0
        self.consumer: StoreConsumer | None = None  # set by install(): what feeds this sink
        self._sleep = sleep

    def prepare(self, config: Any | None = None) -> None:
        """Blocking start-up work (run in a thread): migrate, partitions, mirror the config."""
        if self.migrate:
            upgrade(engine=self.engine)
        if config is not None and config.accounts:
            with session_factory(self.engine).begin() as db:
                sync_config(db, config)

    async def start(self, config: Any | None = None) -> None:
        """Prepare, retrying while the database is unreachable, then let the agents write."""
        async for attempt in self._until_reachable("storage: preparing the database"):
            with attempt:
                await asyncio.to_thread(self.prepare, config)
        self.ready.set()

    def _until_reachable(self, what: str) -> Any:
        """The sink's one retry policy: connection failures wait (backoff to RETRY_MAX_S) until
        the database is back; any other error is about the data and is raised at once."""
        return forever(is_transient, what=what, first_s=RETRY_FIRST_S, max_s=RETRY_MAX_S, sleep=self._sleep)

    async def store_groups(self, groups: Sequence[tuple[Mapper, Sequence[Any]]]) -> WriteResult | None:
        """Every topic of one fetch in one transaction: a commit (and, on SQLite, a WAL sync)
        per fetch instead of one per topic (#16). A batch that fails on its data is written
        again topic by topic, each of which splits down to its records (:meth:`store`)."""
        if len(groups) == 1:
            return await self.store(*groups[0])
        await self.ready.wait()
        merged = _rows(lambda: _merged(groups))
        written = await self._write(merged) if merged is not None else None
        if written is not None:
            return written
        log.warning("storage: a fetch's batch of %d topics failed; writing them one by one", len(groups))
        for mapper, values in groups:
            await self.store(mapper, values)
        return None

    async def _write(self, batch: RowBatch) -> WriteResult | None:
        """Write one batch, waiting out connection failures; None when the database (or the
        driver) refused the data itself: the caller splits the batch."""
        try:
            async for attempt in self._until_reachable("storage: write"):
                with attempt:
                    return await asyncio.to_thread(self.writer.write, batch)
        except Exception as exc:  # noqa: BLE001 - not a connection problem (is_transient): the data
            log.info("storage: a batch was refused (%s); splitting it", type(exc).__name__)
            return None
        return None  # pragma: no cover - the retry loop returns or raises

    async def store(self, mapper: Mapper, values: Sequence[Any]) -> WriteResult | None:
        """Map and write one batch; see the module docstring for the failure policy."""
        await self.ready.wait()
        batch = _rows(lambda: mapper(values))
        written = await self._write(batch) if batch is not None else None
        if written is not None:
            return written
        log.warning("storage: batch of %d failed; writing its records one by one", len(values))
        for value in values:
            await self._store_one(mapper, value)
        return None

    async def _store_one(self, mapper: Mapper, value: Any) -> None:
        """One record, or (a batched topic's record the database refused) each of its items:
        what the database or the mapping refuses is counted and logged, and the store goes on."""
        batch = _rows(lambda: mapper([value]))
        if batch is not None and await self._write(batch) is not None:
            return
        if isinstance(value, list) and len(value) > 1:  # an ExecutionBatch/PositionBatch: its items
            for item in value:
                await self._store_one(mapper, [item])
            return
        self.skipped += 1
        log.error("storage: record refused (%s)", _describe(value))

    async def close(self) -> None:
        await asyncio.to_thread(self.engine.dispose)


def _merged(groups: Sequence[tuple[Mapper, Sequence[Any]]]) -> RowBatch:
    merged = RowBatch()
    for mapper, values in groups:
        merged.extend(mapper(values))
    return merged


def _rows(build: Callable[[], RowBatch]) -> RowBatch | None:
    """Records → rows; None when a record cannot be mapped (the caller splits, as for a write
    the database refused). Only the exception's type is logged: payloads may hold account details."""
    try:
        return build()
    except Exception as exc:  # noqa: BLE001 - a record that passed its decoder but not the mapping
        log.info("storage: a batch could not be mapped (%s); splitting it", type(exc).__name__)
        return None


def _describe(value: Any) -> str:
    """Name a record by its ids only: payloads may hold account details."""
    if isinstance(value, list) and value:  # a trade.executions record: its first execution
        value = value[0]
    for attr in ("execution_id", "error_id", "signal_id", "batch_id", "account_id"):
        if hasattr(value, attr):
            return f"{attr}={getattr(value, attr)}"
    return type(value).__name__


def _flattened(mapper: Mapper) -> Mapper:
    """``trade.executions`` and ``positions.updates`` records each carry a list; the mapper
    takes them all."""
    return lambda records: mapper([execution for record in records for execution in record])


def install(app: faust.App, ctx: StageContext) -> StorageSink:
    """Role ``store``: one direct consumer of the stored topics, writing through one sink."""
    runtime = ctx
    settings = runtime.settings
    topics = runtime.topics
    sink = StorageSink(database_url_from_env(settings.database_url))
    stored = {
        topics.signals.get_topic_name(): StoredTopic(bytes, mapping.signals_batch),  # raw: the mapper decodes
        topics.intents.get_topic_name(): StoredTopic(IntentBatch.loads, mapping.intents_batch),
        topics.executions.get_topic_name(): StoredTopic(executions_of, _flattened(mapping.executions_batch)),
        topics.errors.get_topic_name(): StoredTopic(errors_of, _flattened(mapping.errors_batch)),
        topics.positions.get_topic_name(): StoredTopic(positions_of, _flattened(mapping.positions_batch)),
    }
    consumer = StoreConsumer(
        stored,
        sink.store_groups,
        settings.bootstrap_servers,
        group_id=f"{settings.app_id}.store",
        adopt_offsets_from=(*settings.adopt_offsets_from, settings.app_id),  # as the executor does
        session_timeout_ms=int(app.conf.broker_session_timeout * 1000),
        heartbeat_interval_ms=int(app.conf.broker_heartbeat_interval * 1000),
    )
    sink.consumer = consumer
    runtime.lags.append(consumer.lags)
    # The consumer stops (its batch written or left for redelivery) before the engine closes.
    runtime.shutdown_hooks.extend([consumer.stop, sink.close])

    @jobs.task(app)
    async def storage_start() -> None:
        # Together: the consumer's writes wait for the sink to be ready (migrated).
        await asyncio.gather(sink.start(runtime.config), consumer.start())

    return sink
