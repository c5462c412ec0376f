"""The store's third round of cuts (#16, session 28) changes no stored value.

* The audit append hands SQLite's driver the rows it builds (times cut from their audit
  spelling, the payload's canonical text): they must be exactly what Core's executemany of the
  same entries sends, for instants in any zone and any year.
* The compiled insert converts column by column and spells a repeated instant once: the same
  parameters as Core, whatever objects repeat.
* Stage stamps (a dict of finite floats) are encoded by orjson: the same numbers read back;
  every other JSON value is spelled by ``json.dumps`` as before.
* The canonical fast check collects key types in C: a key of a ``str`` subclass still takes the
  long way.
* On PostgreSQL the sink's executemanys are multi-row statements, not a round trip per row.
"""

from __future__ import annotations

import enum
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, event
from test_storage_slippage import ack, fill, leader_fill
from test_storage_store_cost import TEXT, old_canonical_json
from test_storage_store_round2 import DRIVER_TIMES, FAST_FLOATS, _memory, _sent

from copytrader.core.records import Position
from copytrader.storage import audit, mapping
from copytrader.storage.audit import AuditRecord, append_entries
from copytrader.storage.canonical import payload_json
from copytrader.storage.db import insert_for, make_engine, serialize_json
from copytrader.storage.driver_insert import DriverInsert
from copytrader.storage.migrate import upgrade
from copytrader.storage.models import ExecutionRow
from copytrader.storage.writer import BatchWriter

IDS = st.none() | TEXT.filter(bool)


def _appended(engine: Engine, records: list[AuditRecord], monkeypatch: pytest.MonkeyPatch, *, core: bool) -> Any:
    """The audit INSERT's parameters for ``records``, built by append (``core``: through Core,
    else through the prepared rows, which must then be the path taken)."""
    prepared: list[int] = []
    with monkeypatch.context() as patch:
        if core:
            patch.setattr(audit, "_driver_insert", lambda _dialect: None)
        else:
            execute = DriverInsert.execute_prepared
            patch.setattr(
                DriverInsert,
                "execute_prepared",
                lambda self, conn, rows: (prepared.append(len(rows)), execute(self, conn, rows))[-1],
            )
        sent = _sent(engine, lambda db: append_entries(db, records))
    assert prepared == ([] if core else [len(records)])
    return sent


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            DRIVER_TIMES, st.none() | FAST_FLOATS, TEXT.filter(bool), IDS, IDS, st.sampled_from(audit.AUDIT_KINDS)
        ),
        min_size=1,
        max_size=4,
    )
)
def test_the_prepared_audit_rows_are_what_core_sends(cases: list[Any]) -> None:
    engine = _memory()
    records = [
        AuditRecord(kind, f"{natural_id}{i}", at, {"n": natural_id, "at": at}, signal, client, "F1", latency)
        for i, (at, latency, natural_id, signal, client, kind) in enumerate(cases)
    ]
    with pytest.MonkeyPatch.context() as monkeypatch:
        prepared = _appended(engine, records, monkeypatch, core=False)
        by_core = _appended(engine, records, monkeypatch, core=True)
    assert len(prepared) == len(by_core) == 1
    (sql, rows), (core_sql, core_rows) = prepared[0], by_core[0]
    assert sql == core_sql
    recorded = audit._ROW_KEYS.index("recorded_at")  # datetime.now() of each append
    assert [row[:recorded] for row in rows] == [row[:recorded] for row in core_rows]
    assert all(type(row[recorded]) is str and len(row[recorded]) == 26 for row in rows + core_rows)


def test_the_prepared_rows_need_the_engines_json_text(tmp_path: Any) -> None:
    """An engine not made by ``make_engine`` encodes payloads itself: no prepared rows there."""
    engine = create_engine(f"sqlite:///{tmp_path}/foreign.db")
    upgrade(engine=engine)
    at = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
    sent = _sent(engine, lambda db: append_entries(db, [AuditRecord("signal", "s1", at, {"b": 1, "a": [1.5]})]))
    payload = audit._ROW_KEYS.index("payload")
    assert json.loads(sent[0][1][0][payload]) == {"a": [1.5], "b": 1}
    engine.dispose()


BERLIN = timezone(timedelta(hours=1))


def test_a_repeated_instant_is_spelled_as_core_spells_each_one() -> None:
    engine = _memory()
    shared = datetime(2026, 3, 2, 14, 30, 0, 123456, tzinfo=UTC)
    equal_elsewhere = shared.astimezone(BERLIN)  # the same instant, another object and zone
    times = [shared, shared, equal_elsewhere, equal_elsewhere, shared, datetime(999, 1, 1, tzinfo=UTC)]
    rows = [
        {**mapping.execution_row(fill("F1", 1, "buy", 1, "5000.50")), "execution_id": f"x{i}", "occurred_at": at}
        for i, at in enumerate(times)
    ]
    core = insert_for("sqlite", ExecutionRow.__table__).on_conflict_do_nothing(index_elements=["execution_id"])
    driver = DriverInsert(core, mapping.EXECUTION_KEYS, engine.dialect)
    by_core = _sent(engine, lambda db: db.execute(core, rows))
    by_driver = _sent(engine, lambda db: driver.execute(db.connection(), rows))
    assert by_driver == by_core
    occurred = driver.order.index("occurred_at")
    assert [row[occurred] for row in by_driver[0][1]][:3] == ["2026-03-02 14:30:00.123456"] * 3


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(TEXT, st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=6))
def test_stage_stamps_read_back_as_the_same_numbers(stamps: dict[str, float]) -> None:
    assert json.loads(serialize_json(stamps)) == stamps


@pytest.mark.parametrize(
    "value",
    [
        {"detected": float("nan")},
        {"detected": float("inf"), "acked": 1.5},
        {"detected": 1.5, "n": 1},
        {1: 1.5},
        {},
        [1.5, 2.5],
        {"symbol_map": {"ES": "MES"}},
    ],
)
def test_other_json_values_are_spelled_as_before(value: Any) -> None:
    assert serialize_json(value) == json.dumps(value)


class Side(enum.StrEnum):
    BUY = "buy"


class LegacySide(str, enum.Enum):
    SELL = "sell"


@pytest.mark.parametrize("key", [Side.BUY, LegacySide.SELL])
def test_a_key_of_a_str_subclass_takes_the_long_way(key: str) -> None:
    text, plain = payload_json({key: 1, "b": {key: [1.5]}})
    assert plain is not None
    assert text == old_canonical_json({key: 1, "b": {key: [1.5]}})


@pytest.mark.postgres
def test_postgres_sends_the_sinks_executemanys_in_multi_row_statements(pg_engine: Engine) -> None:
    """Since SQLAlchemy 2.1 an ``INSERT ... ON CONFLICT`` executemany without RETURNING went
    to psycopg2 one row per round trip, as did the settle's UPDATE: 13,416 executions were
    13,416 round trips on the 200-follower replay."""
    styles: list[tuple[str, str]] = []

    def record(_conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, many: bool) -> None:
        if many:
            styles.append((" ".join(statement.split()[:3]), context.execute_style.name))

    at = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
    positions = [
        Position(account_id=f"F{i}", symbol="ESM6", net_quantity=1, realized_pnl=0, fills=1, updated_at=at)
        for i in range(3)
    ]
    batch = mapping.executions_batch(
        [leader_fill(1, 2, "5000.25"), ack("F1", "buy"), fill("F1", 1, "buy", 2, "5000.50"), ack("F2", "buy")]
    )
    batch.extend(mapping.positions_batch(positions))
    event.listen(pg_engine, "before_cursor_execute", record)
    try:
        BatchWriter(pg_engine).write(batch)
    finally:
        event.remove(pg_engine, "before_cursor_execute", record)
    assert dict(styles) == {
        "INSERT INTO audit_log": "INSERTMANYVALUES",
        "INSERT INTO executions": "INSERTMANYVALUES",
        "INSERT INTO position_snapshots": "INSERTMANYVALUES",
        "INSERT INTO pnl_series": "INSERTMANYVALUES",
    }
    assert pg_engine.dialect.executemany_mode.name == "EXECUTEMANY_VALUES_PLUS_BATCH"  # type: ignore[attr-defined]


def test_a_batch_of_acks_settles_without_reading_leader_fills(tmp_path: Any) -> None:
    """A copy with no fill yet has no figures: its leader's fills are not read for it (#16)."""
    engine = make_engine(f"sqlite:///{tmp_path}/acks.db")
    upgrade(engine=engine)
    writer = BatchWriter(engine)
    writer.write(mapping.executions_batch([leader_fill(1, 2, "5000.25")]))
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if "executions.broker_order_id IN" in statement:  # the settle's leader-fills query
            sent.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    writer.write(mapping.executions_batch([ack("F1", "buy"), ack("F2", "buy")]))
    assert sent == []
    writer.write(mapping.executions_batch([fill("F1", 1, "buy", 2, "5000.50")]))
    assert len(sent) == 1  # a fill does read them
    engine.dispose()
