"""The store's second round of cuts (#16, session 25) changes no stored byte.

* Audit payloads are encoded by orjson when every value is of a type it spells exactly as the
  canonical encoder: generated payloads of those types must give the text of the definition
  before #16 (``old_canonical_json``) and take the fast path (else the test proves nothing);
  the values orjson spells differently (``1e-05``, NaN, subclasses, 65-bit ints, lone
  surrogates, naive times) must take the long way and behave as before.
* SQLite bulk inserts compiled once (:class:`DriverInsert`) must send the driver the same SQL
  and the same parameters as Core's executemany, and refuse what Core refuses, as a
  ``SQLAlchemyError`` (the sink's split-on-data-error depends on that).
"""

from __future__ import annotations

import enum
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError, StatementError
from test_storage_slippage import ack, fill, leader_fill
from test_storage_store_cost import AWARE, TEXT, old_canonical_json, old_to_jsonable

from copytrader.core.records import Execution, IntentBatch, OrderError, OrderIntent, Position, TradeSignal
from copytrader.storage import mapping
from copytrader.storage.audit import _INSERT, _ROW_KEYS, AuditRecord, verify
from copytrader.storage.canonical import payload_json
from copytrader.storage.db import insert_for, make_engine, session_factory
from copytrader.storage.driver_insert import DriverInsert
from copytrader.storage.migrate import upgrade
from copytrader.storage.models import AuditEntry, Base, ExecutionRow
from copytrader.storage.writer import BatchWriter

# --------------------------------------------------------------- payloads: the fast path

FAST_FLOATS = (
    st.just(0.0) | st.just(-0.0) | st.floats(1e-4, 1e16, exclude_max=True).flatmap(lambda f: st.sampled_from([f, -f]))
)
FAST_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | FAST_FLOATS
    | TEXT
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.decimals(allow_nan=True, allow_infinity=True).filter(lambda d: not d.is_snan())
    | AWARE
)
FAST_VALUES = st.recursive(
    FAST_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.lists(inner, max_size=3).map(tuple) | st.dictionaries(TEXT, inner, max_size=4)
    ),
    max_leaves=12,
)
FAST_PAYLOADS = st.dictionaries(TEXT, FAST_VALUES, max_size=8)


@settings(max_examples=150, deadline=None)
@given(FAST_PAYLOADS)
def test_the_fast_path_writes_the_canonical_text_of_before(payload: dict[str, Any]) -> None:
    text, plain = payload_json(payload)
    assert plain is None, "took the long way: the property below would prove nothing"
    assert text == old_canonical_json(payload)
    record = AuditRecord("execution", "x", datetime(2026, 1, 1, tzinfo=UTC), payload)
    assert record.payload_json == text
    assert record.payload == old_to_jsonable(payload)  # parsed from the text on demand


class Side(enum.StrEnum):
    BUY = "buy"


class Level(enum.IntEnum):
    ONE = 1


class Flag(enum.Enum):
    ON = 1.5e-7


@pytest.mark.parametrize(
    "value",
    [
        1e-05,
        -1e-05,
        1e16,
        1e300,
        5e-324,
        2**64,
        -(2**63) - 1,
        Side.BUY,
        Level.ONE,
        Flag.ON,
        b"\x00raw",
        frozenset({"b", "a"}),
        datetime(2026, 1, 1, tzinfo=UTC).date(),
        {1: "int key"},
        {"nested": [{"deep": 1e-7}]},
    ],
)
def test_values_orjson_spells_differently_take_the_long_way(value: Any) -> None:
    text, plain = payload_json({"v": value})
    assert plain is not None
    assert text == old_canonical_json({"v": value})


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        (datetime(2026, 1, 1), ValueError),  # naive: refused as before
        (object(), TypeError),
    ],
)
def test_refusals_are_the_same_as_before(value: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        old_canonical_json({"v": value})
    with pytest.raises(error):
        payload_json({"v": value})
    with pytest.raises(error):
        AuditRecord("signal", "s", datetime(2026, 1, 1, tzinfo=UTC), {"v": value})


def test_a_lone_surrogate_behaves_as_before() -> None:
    text, plain = payload_json({"v": "\ud800"})
    assert plain is not None and text == old_canonical_json({"v": "\ud800"})


def test_an_audit_record_is_immutable_and_compares_by_content() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    record = AuditRecord("signal", "s", at, {"p": Decimal("1.5")}, account_id="L1")
    with pytest.raises(AttributeError):
        record.kind = "error"  # type: ignore[misc]
    assert record == AuditRecord("signal", "s", at, {"p": Decimal("1.5")}, account_id="L1")
    assert record != AuditRecord("signal", "s", at, {"p": Decimal("1.6")}, account_id="L1")
    assert record.payload == {"p": "1.5"} and record.key == ("signal", "s")


# --------------------------------------------------------------- mapping: the record's dict

AT = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
RECORDS = [
    TradeSignal(signal_id="L1:1:new", leader_account="L1", platform="paper", symbol="ESZ6", side="buy", quantity=1),
    OrderIntent(
        signal_id="L1:1:new",
        client_order_id="CT1",
        account_id="F1",
        platform="paper",
        leader_account="L1",
        action="place",
        symbol="ESZ6",
        side="buy",
        quantity=1,
        stamps={"detected": 1796127842.9204936},
        reference_price=Decimal("5000.25"),
    ),
    ack("F1", "buy"),
    fill("F1", 1, "buy", 1, "5000.50"),
    leader_fill(1, 1, "5000.25"),
    OrderError(error_id="e1", stage="fanout", reason="no rule", account_id="F9"),
    Position(account_id="F1", symbol="ESZ6", net_quantity=1, realized_pnl=Decimal(0), updated_at=AT),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_the_mapping_payload_is_the_records_as_dict(record: Any) -> None:
    assert mapping._payload(record) == record.as_dict()


def test_a_record_class_with_its_own_as_dict_keeps_it() -> None:
    class Trimmed(Execution):
        def as_dict(self) -> dict[str, Any]:
            return {"execution_id": self.execution_id}

    execution = Trimmed(execution_id="t1", account_id="F1", platform="paper", kind="ack", occurred_at=AT)
    assert mapping._payload(execution) == {"execution_id": "t1"}


def test_an_intent_batch_maps_to_the_text_of_before() -> None:
    intent = cast(OrderIntent, RECORDS[1])
    batch = mapping.intents_batch([IntentBatch(batch_id="b", intents=[intent])])
    assert batch.audit[0].payload_json == old_canonical_json(intent.as_dict())


# --------------------------------------------------------------- SQLite: one compiled INSERT


def _sqlite(tmp_path: Any) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path}/driver.db")
    upgrade(engine=engine)
    return engine


_ENGINES: list[Engine] = []


def _memory() -> Engine:
    """One in-memory database for every generated example (each one is rolled back)."""
    if not _ENGINES:
        engine = make_engine("sqlite://")
        Base.metadata.create_all(engine, tables=[ExecutionRow.__table__, AuditEntry.__table__])
        _ENGINES.append(engine)
    return _ENGINES[0]


def _sent(engine: Engine, work: Any) -> list[tuple[str, Any]]:
    """What reached the driver (statement, parameters) while ``work(db)`` ran; rolled back."""
    sent: list[tuple[str, Any]] = []

    def listen(_conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, many: bool) -> None:
        if statement.startswith("INSERT"):  # one row: Core executes instead of executemany
            sent.append((statement, [tuple(p) for p in (parameters if many else [parameters])]))

    event.listen(engine, "before_cursor_execute", listen)
    try:
        with session_factory(engine)() as db:
            work(db)
            db.rollback()
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    return sent


ZONES = st.sampled_from([UTC, timezone(timedelta(hours=-5)), ZoneInfo("UTC"), ZoneInfo("Europe/Berlin")])
DRIVER_TIMES = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=ZONES)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(DRIVER_TIMES, st.none() | FAST_FLOATS, TEXT), min_size=1, max_size=4))
def test_the_compiled_insert_sends_what_core_sends(cases: list[Any]) -> None:
    engine = _memory()
    executions = [
        {
            **mapping.execution_row(fill("F1", 1, "buy", 1, "5000.50")),
            "execution_id": f"x{i}",
            "occurred_at": at,
            "e2e_ms": latency,
            "reason": reason,
        }
        for i, (at, latency, reason) in enumerate(cases)
    ]
    audit = [
        {
            "seq": i + 1,
            "occurred_at": at,
            "kind": "execution",
            "natural_id": f"x{i}",
            "signal_id": None,
            "client_order_id": reason,
            "account_id": "F1",
            "payload": {"reason": reason},
            "latency_ms": latency,
            "prev_hash": "0" * 64,
            "hash": f"{i:064d}",
            "recorded_at": at,
        }
        for i, (at, latency, reason) in enumerate(cases)
    ]
    core_executions = insert_for("sqlite", ExecutionRow.__table__).on_conflict_do_nothing(
        index_elements=["execution_id"]
    )
    driver_executions = DriverInsert(core_executions, mapping.EXECUTION_KEYS, engine.dialect)
    driver_audit = DriverInsert(_INSERT, _ROW_KEYS, engine.dialect)
    by_core = _sent(engine, lambda db: (db.execute(core_executions, executions), db.execute(_INSERT, audit)))
    by_driver = _sent(
        engine,
        lambda db: (
            driver_executions.execute(db.connection(), executions),
            driver_audit.execute(db.connection(), audit),
        ),
    )
    assert by_driver == by_core


def test_a_value_the_types_refuse_is_a_statement_error_and_nothing_is_written(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine=engine)
    writer = BatchWriter(engine)
    good = mapping.executions_batch([ack("F1", "buy"), fill("F1", 1, "buy", 1, "5000.50")])
    bad = mapping.executions_batch([leader_fill(1, 1, "5000.25")])
    bad.executions[0]["occurred_at"] = datetime(2026, 1, 1)  # naive: UTCDateTime refuses it
    good.extend(bad)
    with pytest.raises(StatementError, match="naive"):
        writer.write(good)
    with session_factory(engine)() as db:
        assert db.scalar(select(func.count()).select_from(ExecutionRow)) == 0
        assert db.scalar(select(func.count()).select_from(AuditEntry)) == 0
    engine.dispose()


def test_a_duplicate_is_an_integrity_error_through_the_compiled_insert(tmp_path: Any) -> None:
    engine = _sqlite(tmp_path)
    driver = DriverInsert(_INSERT, _ROW_KEYS, engine.dialect)
    row = {key: None for key in _ROW_KEYS} | {
        "seq": 1,
        "occurred_at": AT,
        "kind": "signal",
        "natural_id": "s",
        "payload": {},
        "prev_hash": "0" * 64,
        "hash": "1" * 64,
        "recorded_at": AT,
    }
    with engine.begin() as conn, pytest.raises(IntegrityError):
        driver.execute(conn, [row, row])
    assert issubclass(IntegrityError, SQLAlchemyError)
    engine.dispose()


def test_the_compiled_insert_is_for_sqlite_only() -> None:
    engine = create_engine("postgresql+psycopg2://u@localhost/none")
    with pytest.raises(ValueError, match="SQLite"):
        DriverInsert(_INSERT, _ROW_KEYS, engine.dialect)


def test_the_writer_stores_the_same_rows_on_both_dialects(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine=engine)
    writer = BatchWriter(engine)
    batch = mapping.executions_batch(
        [ack("F1", "buy"), fill("F1", 1, "buy", 1, "5000.50"), leader_fill(1, 1, "5000.25")]
    )
    assert writer.write(batch).executions == 3
    assert writer.write(mapping.executions_batch([ack("F1", "buy")])).audit_appended == 0  # redelivered
    with session_factory(engine)() as db:
        rows = {r.execution_id: r for r in db.scalars(select(ExecutionRow))}
        assert rows[batch.executions[1]["execution_id"]].occurred_at == batch.executions[1]["occurred_at"]
        assert rows[batch.executions[1]["execution_id"]].stamps == batch.executions[1]["stamps"]
        assert rows[batch.executions[1]["execution_id"]].price == Decimal("5000.50")
        payloads = db.scalars(select(AuditEntry.payload).order_by(AuditEntry.seq)).all()
        assert payloads == [json.loads(r.payload_json) for r in batch.audit]
        assert verify(db).ok
    engine.dispose()
