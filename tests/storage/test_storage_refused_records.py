"""The store's split policy on SQLite and PostgreSQL: a record the database, the driver or the
mapping refuses is counted and skipped, everything else of its fetch is written, and a
connection failure is still waited out (never taken for bad data)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from sqlalchemy import Engine, select
from sqlalchemy.exc import DataError, OperationalError

from copytrader.agents.tracking import storage_sink
from copytrader.agents.tracking.store_consumer import StoreConsumer, StoredTopic
from copytrader.common.bounds import (
    MAX_BROKER_ORDER_ID_LEN,
    MAX_EXECUTION_ID_LEN,
    MAX_ID_LEN,
    MAX_SIGNAL_ID_LEN,
    MAX_SYMBOL_LEN,
)
from copytrader.core.records import (
    Execution,
    ExecutionBatch,
    OrderError,
    Position,
    PositionBatch,
    executions_of,
    positions_of,
)
from copytrader.storage import mapping
from copytrader.storage.db import session_factory
from copytrader.storage.models import ExecutionRow, PositionSnapshot

AT = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def execution(n: int) -> Execution:
    return Execution(
        execution_id=f"x{n}",
        account_id="F1",
        platform="paper",
        kind="fill",
        client_order_id=f"CT{n}",
        symbol="ESM6",
        side="buy",
        quantity=1,
        price=Decimal("5000.25"),
        occurred_at=AT,
        stamps={"detected": 1.0, "filled": 1.01},
    )


def position(account: str, net: int = 1) -> Position:
    return Position(account_id=account, symbol="ESM6", net_quantity=net, realized_pnl=Decimal(0), updated_at=AT)


def forged(record: Any, **values: Any) -> Any:
    """A record whose values changed after its door checked them (an older, looser producer's
    record, or a bug): what the store must survive even though the door refuses it now."""
    for name, value in values.items():
        setattr(record, name, value)
    return record


@pytest.fixture
async def sink(engine: Engine) -> Any:
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    s = storage_sink.StorageSink(str(engine.url.render_as_string(hide_password=False)), sleep=fake_sleep)
    s.sleeps = sleeps  # type: ignore[attr-defined]  # test hook
    await s.start()
    yield s
    await s.close()


def stored_executions(sink: storage_sink.StorageSink) -> set[str]:
    with session_factory(sink.engine)() as db:
        return set(db.scalars(select(ExecutionRow.execution_id)))


def stored_positions(sink: storage_sink.StorageSink) -> set[tuple[str, int]]:
    with session_factory(sink.engine)() as db:
        return {(row.account_id, row.net_qty) for row in db.scalars(select(PositionSnapshot))}


async def test_an_integer_the_database_cannot_hold_is_refused_and_the_rest_is_written(
    sink: storage_sink.StorageSink,
) -> None:
    """SQLite's driver raises OverflowError (not a SQLAlchemy error: it stopped the store);
    PostgreSQL answers "integer out of range" (DataError)."""
    records = [execution(0), forged(execution(1), quantity=10**30), execution(2)]
    assert await sink.store(mapping.executions_batch, records) is None
    assert sink.skipped == 1
    assert stored_executions(sink) == {"x0", "x2"}


async def test_a_batched_record_is_split_down_to_the_one_execution_refused(sink: storage_sink.StorageSink) -> None:
    flattened = storage_sink._flattened(mapping.executions_batch)
    records = [[execution(0), forged(execution(1), cumulative_quantity=2**70), execution(2)], [execution(3)]]
    assert await sink.store(flattened, records) is None
    assert sink.skipped == 1
    assert stored_executions(sink) == {"x0", "x2", "x3"}


async def test_a_record_the_mapping_cannot_read_is_refused_and_the_rest_is_written(
    sink: storage_sink.StorageSink,
) -> None:
    records = [execution(0), forged(execution(1), stamps={"detected": "soon"}), execution(2)]
    assert await sink.store(mapping.executions_batch, records) is None
    assert sink.skipped == 1
    assert stored_executions(sink) == {"x0", "x2"}


async def test_a_fetch_over_several_topics_keeps_everything_but_the_refused_position(
    sink: storage_sink.StorageSink,
) -> None:
    flat_positions = storage_sink._flattened(mapping.positions_batch)
    flat_executions = storage_sink._flattened(mapping.executions_batch)
    groups = [
        (flat_executions, [[execution(0), execution(1)]]),
        (flat_positions, [[position("F1"), forged(position("F2"), net_quantity=10**30), position("F3", 3)]]),
    ]
    assert await sink.store_groups(groups) is None
    assert sink.skipped == 1
    assert stored_executions(sink) == {"x0", "x1"}
    assert stored_positions(sink) == {("F1", 1), ("F3", 3)}


async def test_a_connection_failure_while_splitting_is_waited_out_not_taken_for_bad_data(
    sink: storage_sink.StorageSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, calls = sink.writer.write, []

    def flaky(batch: mapping.RowBatch) -> Any:
        calls.append(len(batch.executions))
        if len(calls) == 1:  # the whole batch: refused on its data
            raise DataError("INSERT", {}, Exception("value too long"))
        if len(calls) == 2:  # the first record alone: the server went away once
            raise OperationalError("INSERT", {}, Exception("server closed the connection"))
        return real(batch)

    monkeypatch.setattr(sink.writer, "write", flaky)
    assert await sink.store(mapping.executions_batch, [execution(0), execution(1)]) is None
    assert sink.skipped == 0 and sink.sleeps == [0.5]  # type: ignore[attr-defined]  # test hook
    assert stored_executions(sink) == {"x0", "x1"}


def consumer_record(topic: str, offset: int, value: bytes) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(topic, 0, offset, 0, 0, None, value, None, 0, len(value), ())


async def test_the_store_consumer_skips_a_hostile_record_and_writes_the_next(sink: storage_sink.StorageSink) -> None:
    topics = {
        "trade.executions": StoredTopic(executions_of, storage_sink._flattened(mapping.executions_batch)),
        "positions.updates": StoredTopic(positions_of, storage_sink._flattened(mapping.positions_batch)),
    }
    consumer = StoreConsumer(topics, sink.store_groups, "127.0.0.1:1", "store-test")
    hostile_execution = (
        ExecutionBatch(executions=[execution(9)]).dumps().replace(b'"quantity":1,', b'"quantity":1e308,')
    )
    hostile_position = PositionBatch(positions=[position("F9")]).dumps().replace(b'"fills":0', b'"fills":-1')
    fetched = {
        TopicPartition("trade.executions", 0): [
            consumer_record("trade.executions", 0, hostile_execution),
            consumer_record("trade.executions", 1, ExecutionBatch(executions=[execution(0)]).dumps()),
        ],
        TopicPartition("positions.updates", 0): [
            consumer_record("positions.updates", 0, hostile_position),
            consumer_record("positions.updates", 1, PositionBatch(positions=[position("F1")]).dumps()),
        ],
    }
    await consumer.write(fetched)
    assert consumer.skipped == 2 and sink.skipped == 0
    assert stored_executions(sink) == {"x0"}
    assert stored_positions(sink) == {("F1", 1)}


async def test_an_execution_at_every_text_bound_of_its_record_is_stored(sink: storage_sink.StorageSink) -> None:
    """What a record's door lets through, the database holds: an execution id of
    ``MAX_EXECUTION_ID_LEN`` characters, a signal id of ``MAX_SIGNAL_ID_LEN``, a broker order id
    of ``MAX_BROKER_ORDER_ID_LEN``, a platform of ``MAX_ID_LEN`` (PostgreSQL refused the ids,
    which were ``VARCHAR(200)``, and the platform, ``VARCHAR(32)``: the execution was left out
    of the store and the audit log)."""
    longest = Execution(
        execution_id="e" * MAX_EXECUTION_ID_LEN,
        account_id="a" * MAX_ID_LEN,
        platform="p" * MAX_ID_LEN,
        kind="fill_correction",
        client_order_id="c" * MAX_ID_LEN,
        broker_order_id="b" * MAX_BROKER_ORDER_ID_LEN,
        signal_id="s" * MAX_SIGNAL_ID_LEN,
        symbol="Y" * MAX_SYMBOL_LEN,
        side="buy",
        quantity=1,
        price=Decimal("5000.25"),
        corrects="f" * MAX_EXECUTION_ID_LEN,
        occurred_at=AT,
    )
    await sink.store(mapping.executions_batch, [longest, execution(0)])
    assert sink.skipped == 0
    assert stored_executions(sink) == {"e" * MAX_EXECUTION_ID_LEN, "x0"}


async def test_an_error_about_the_longest_signal_id_is_stored(sink: storage_sink.StorageSink) -> None:
    """The fan-out names its refusals ``<signal id>|<stage>``: the audit log's natural id holds it."""
    signal_id = "s" * MAX_SIGNAL_ID_LEN
    error = OrderError(
        error_id=f"{signal_id}|fanout", stage="fanout", reason="r", signal_id=signal_id, account_id="a" * MAX_ID_LEN
    )
    await sink.store(mapping.errors_batch, [error])
    assert sink.skipped == 0
