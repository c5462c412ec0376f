"""The storage sink without Kafka: records → rows mapping, batching, redelivery, failures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DataError, OperationalError

from copytrader.agents.tracking import storage_sink
from copytrader.core.records import (
    Execution,
    IntentBatch,
    OrderError,
    OrderIntent,
    Position,
    TradeSignal,
)
from copytrader.storage import mapping
from copytrader.storage.audit import verify
from copytrader.storage.db import session_factory
from copytrader.storage.models import (
    AuditEntry,
    ExecutionRow,
    PnlPoint,
    PositionSnapshot,
)

T = 1_772_460_000.0  # 2026-03-02T14:00:00Z
AT = datetime.fromtimestamp(T, UTC)


def _signal(n: int = 1) -> TradeSignal:
    return TradeSignal(
        signal_id=f"L1:o{n}:new",
        leader_account="L1",
        platform="paper",
        symbol="ESM6",
        side="buy",
        quantity=1,
        occurred_at=AT,
        stamps={"detected": T, "published": T + 0.002},
    )


def _raw(signal: TradeSignal) -> bytes:
    return json.dumps(signal.to_representation(), default=str).encode()


def _execution(n: int, **kw: Any) -> Execution:
    base: dict[str, Any] = {
        "execution_id": f"x{n}",
        "account_id": "F1",
        "platform": "paper",
        "kind": "ack",
        "client_order_id": f"CT{n}",
        "signal_id": "L1:o1:new",
        "symbol": "ESM6",
        "side": "buy",
        "quantity": 1,
        "price": Decimal("5000.25"),
        "request_outcome": True,
        "occurred_at": AT,
        "stamps": {"detected": T, "sent": T + 0.004, "acked": T + 0.012},
    }
    return Execution(**{**base, **kw})


def test_signals_batch_skips_malformed() -> None:
    batch = mapping.signals_batch([_raw(_signal()), b"{not json", b'{"signal_id": "x"}', _raw(_signal(2))])
    assert batch.skipped == 2
    assert [a.natural_id for a in batch.audit] == ["L1:o1:new", "L1:o2:new"]
    assert batch.audit[0].kind == "signal" and batch.audit[0].latency_ms == pytest.approx(2.0, abs=0.01)
    assert batch.audit[0].account_id == "L1"


def test_execution_rows_derive_latencies_and_kinds() -> None:
    batch = mapping.executions_batch(
        [
            _execution(1),
            _execution(1),
            _execution(2, kind="fill", request_outcome=False, stamps={"detected": T, "filled": T + 0.020}),
        ]
    )
    assert len(batch.executions) == 2  # the duplicate in the batch is dropped
    ack, fill = batch.executions
    assert ack["e2e_ms"] == pytest.approx(12.0, abs=0.01) and ack["internal_ms"] == pytest.approx(4.0, abs=0.01)
    assert fill["e2e_ms"] is None and fill["fill_ms"] == pytest.approx(20.0, abs=0.01)
    assert [a.kind for a in batch.audit] == ["response", "execution"]
    assert batch.audit[1].latency_ms == pytest.approx(20.0, abs=0.01)


def test_naive_time_from_a_foreign_producer_is_taken_as_utc() -> None:
    naive = datetime(2026, 3, 2, 14, 0)
    assert mapping.aware(naive) == AT


def test_positions_batch_keeps_latest_point_per_minute() -> None:
    updates = [
        Position(
            account_id="F1",
            symbol="ESM6",
            net_quantity=q,
            realized_pnl=Decimal(q),
            fills=q,
            updated_at=AT + timedelta(seconds=s),
        )
        for q, s in ((1, 5), (3, 50), (2, 20), (4, 65))
    ]
    batch = mapping.positions_batch(updates + updates[:1])
    assert len(batch.snapshots) == 4
    points = {p["ts"]: p["net_qty"] for p in batch.pnl}
    assert points == {AT: 3, AT + timedelta(minutes=1): 4}


def test_intents_and_errors_become_audit_entries() -> None:
    intent = OrderIntent(
        client_order_id="CT1",
        signal_id="L1:o1:new",
        account_id="F1",
        platform="paper",
        leader_account="L1",
        action="place",
        symbol="ESM6",
        side="buy",
        quantity=1,
        stamps={"detected": T, "fanned_out": T + 0.003},
    )
    batch = mapping.intents_batch([IntentBatch(batch_id="L1:o1:new|p0", intents=[intent])])
    assert [(a.kind, a.natural_id, a.account_id) for a in batch.audit] == [("intent", "CT1", "F1")]
    assert batch.audit[0].occurred_at == datetime.fromtimestamp(T + 0.003, UTC)
    errors = mapping.errors_batch([OrderError(error_id="e1", stage="fanout", reason="no rule", account_id="F9")])
    assert errors.audit[0].kind == "error" and errors.audit[0].payload["reason"] == "no rule"


@pytest.fixture
def sink(engine: Engine) -> storage_sink.StorageSink:
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    s = storage_sink.StorageSink(str(engine.url.render_as_string(hide_password=False)), sleep=fake_sleep)
    s.sleeps = sleeps  # type: ignore[attr-defined]  # test hook
    return s


async def test_sink_writes_batches_and_redelivery_is_a_noop(sink: storage_sink.StorageSink) -> None:
    await sink.start()
    signals = [_raw(_signal(n)) for n in range(3)]
    executions = [_execution(n) for n in range(3)]
    positions = [Position(account_id="F1", symbol="ESM6", net_quantity=1, realized_pnl=Decimal(0), updated_at=AT)]
    for _ in range(2):  # the second round is Kafka redelivering the same batches
        await sink.store(mapping.signals_batch, signals)
        await sink.store(mapping.executions_batch, executions)
        await sink.store(mapping.positions_batch, positions)
    with session_factory(sink.engine)() as db:

        def count(model: type) -> int | None:
            return db.scalar(select(func.count()).select_from(model))

        assert (count(AuditEntry), count(ExecutionRow), count(PositionSnapshot), count(PnlPoint)) == (6, 3, 1, 1)
        assert verify(db).entries == 6
    await sink.close()


async def test_sink_retries_transient_errors(sink: storage_sink.StorageSink, monkeypatch: pytest.MonkeyPatch) -> None:
    await sink.start()
    real, calls = sink.writer.write, []

    def flaky(batch: mapping.RowBatch) -> Any:
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("INSERT", {}, Exception("server closed the connection"))
        return real(batch)

    monkeypatch.setattr(sink.writer, "write", flaky)
    result = await sink.store(mapping.executions_batch, [_execution(1)])
    assert result is not None and len(calls) == 3
    assert sink.sleeps == [0.5, 1.0]  # type: ignore[attr-defined]
    await sink.close()


async def test_sink_isolates_a_bad_record(sink: storage_sink.StorageSink, monkeypatch: pytest.MonkeyPatch) -> None:
    await sink.start()
    real = sink.writer.write

    def picky(batch: mapping.RowBatch) -> Any:
        if any(row["execution_id"] == "x2" for row in batch.executions):
            raise DataError("INSERT", {}, Exception("value too long"))
        return real(batch)

    monkeypatch.setattr(sink.writer, "write", picky)
    assert await sink.store(mapping.executions_batch, [_execution(n) for n in range(4)]) is None
    assert sink.skipped == 1
    with session_factory(sink.engine)() as db:
        stored = set(db.scalars(select(ExecutionRow.execution_id)))
    assert stored == {"x0", "x1", "x3"}
    await sink.close()


def test_install_consumes_the_stored_topics_directly(tmp_path: Path) -> None:
    from copytrader.app.factory import create_app
    from copytrader.core.settings import Settings

    settings = Settings(roles=("store",), data_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/ct.db")
    app = create_app(settings)
    assert not app.agents  # no Faust stream per record (agents/tracking/store_consumer.py)
    sink = app.runtime.storage
    assert isinstance(sink, storage_sink.StorageSink) and sink.consumer is not None
    assert set(sink.consumer.topics) == {
        "trade.signals",
        "orders.requests",
        "trade.executions",
        "order.errors",
        "positions.updates",
    }
    assert sink.consumer.group_id == f"{settings.app_id}.store"


async def test_one_fetch_of_several_topics_is_one_transaction_and_a_bad_record_is_still_isolated(
    sink: storage_sink.StorageSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    await sink.start()
    real, writes = sink.writer.write, []

    def counted(batch: mapping.RowBatch) -> Any:
        writes.append((len(batch.audit), len(batch.executions)))
        if any(row["execution_id"] == "x7" for row in batch.executions):
            raise DataError("INSERT", {}, Exception("value too long"))
        return real(batch)

    monkeypatch.setattr(sink.writer, "write", counted)
    signals = [_raw(_signal(n)) for n in range(2)]
    result = await sink.store_groups(
        [(mapping.signals_batch, signals), (mapping.executions_batch, [_execution(n) for n in range(3)])]
    )
    assert result is not None and writes == [(5, 3)]  # 2 signals + 3 executions, one write
    writes.clear()
    # A record the database refuses: the fetch is written again topic by topic, then record by record.
    assert (
        await sink.store_groups([(mapping.signals_batch, signals), (mapping.executions_batch, [_execution(7)])]) is None
    )
    assert sink.skipped == 1
    with session_factory(sink.engine)() as db:
        stored = set(db.scalars(select(ExecutionRow.execution_id)))
        assert stored == {"x0", "x1", "x2"}
        assert verify(db).entries == 5
    await sink.close()


def test_the_installed_consumer_reads_batched_and_bare_errors(tmp_path: Path) -> None:
    """``order.errors`` carries the executor's ``ErrorBatch`` records and bare errors (the
    fan-out, the reconciler, older producers): every error of both becomes an audit entry."""
    from copytrader.app.factory import create_app
    from copytrader.core.records import ErrorBatch, OrderError
    from copytrader.core.settings import Settings

    settings = Settings(roles=("store",), data_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/ct.db")
    sink = create_app(settings).runtime.storage
    assert isinstance(sink, storage_sink.StorageSink) and sink.consumer is not None
    stored = sink.consumer.topics["order.errors"]
    made = [OrderError(error_id=f"e{n}", stage="execute", reason="netted", account_id=f"F{n}") for n in range(3)]
    values = [stored.decode(ErrorBatch(errors=made[:2]).dumps()), stored.decode(made[2].dumps())]
    batch = stored.mapper(values)
    assert [(a.kind, a.natural_id, a.account_id) for a in batch.audit] == [
        ("error", "e0", "F0"),
        ("error", "e1", "F1"),
        ("error", "e2", "F2"),
    ]
