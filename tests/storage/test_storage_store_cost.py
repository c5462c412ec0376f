"""The store's cheaper write path (#16) keeps what the audit chain and the tables guarantee.

Each audit payload is now encoded once: the entry's hashed text is assembled around that one
canonical text (``entry_json``), the JSON column stores the same text, and ``to_jsonable`` /
``format_time`` take fast paths for exact types. These tests prove the outputs identical to
the definitions they replace (kept here as the reference), that entries written the old way
still verify next to new ones, and that the slippage settle writes only rows that changed.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import json
import math
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.orm import Session
from test_storage_slippage import AT, ack, fill, leader_fill

from copytrader.storage import mapping
from copytrader.storage.audit import (
    GENESIS_HASH,
    AuditRecord,
    AuditWriter,
    canonical_json,
    entry_content,
    entry_json,
    format_time,
    to_jsonable,
    verify,
)
from copytrader.storage.db import insert_for, make_engine, session_factory, stores_json_text
from copytrader.storage.migrate import upgrade
from copytrader.storage.models import AuditEntry, ExecutionRow
from copytrader.storage.slippage import settle

# --------------------------------------------------------------- the definitions before #16


def old_format_time(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def old_to_jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("nan")
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return old_format_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return old_to_jsonable(value.value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {str(k): old_to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [old_to_jsonable(v) for v in value]
        return sorted(items, key=old_canonical_json) if isinstance(value, (set, frozenset)) else items
    raise TypeError(type(value).__name__)


def old_canonical_json(value: Any) -> str:
    return json.dumps(
        old_to_jsonable(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


# --------------------------------------------------------------- generated values


class Side(enum.StrEnum):
    BUY = "buy"


class Level(enum.IntEnum):
    ONE = 1


class Flag(str, enum.Enum):  # noqa: UP042 - the str mixin spelling, not StrEnum: both must encode alike
    ON = "on"


TEXT = st.text(st.characters(codec="utf-8"), max_size=12)  # control characters, quotes, non-ASCII
OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
AWARE = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.sampled_from([UTC]) | OFFSETS
)
FLOATS = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([1e16, 1e-05, -0.0, 1e300, 2.5e-320])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | FLOATS
    | TEXT
    | st.decimals(allow_nan=False, allow_infinity=False)
    | AWARE
    | st.dates()
    | st.sampled_from([Side.BUY, Level.ONE, Flag.ON])
    | st.binary(max_size=6)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.frozensets(st.integers() | TEXT, max_size=3)
        | st.dictionaries(TEXT | st.integers() | st.booleans(), inner, max_size=4)
    ),
    max_leaves=12,
)
PAYLOADS = st.dictionaries(TEXT, VALUES, max_size=6)
IDS = st.none() | TEXT


@settings(max_examples=300, deadline=None)
@given(AWARE)
def test_format_time_spells_every_instant_as_before(value: datetime) -> None:
    assert format_time(value) == old_format_time(value)


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_to_jsonable_and_canonical_json_are_unchanged(value: Any) -> None:
    assert to_jsonable(value) == old_to_jsonable(value)
    assert canonical_json(value) == old_canonical_json(value)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 2**62),
    AWARE,
    st.sampled_from(["signal", "intent", "execution"]),
    TEXT.filter(bool),
    IDS,
    IDS,
    IDS,
    PAYLOADS,
    st.none() | FLOATS,
)
def test_the_assembled_entry_text_is_the_canonical_json_of_its_content(
    seq: int,
    occurred: datetime,
    kind: str,
    natural_id: str,
    signal_id: str | None,
    client_order_id: str | None,
    account_id: str | None,
    payload: dict[str, Any],
    latency: float | None,
) -> None:
    record = AuditRecord(kind, natural_id, occurred, payload)
    assert record.payload_json == old_canonical_json(payload)
    content = entry_content(
        seq, occurred, kind, natural_id, signal_id, client_order_id, account_id, record.payload, latency
    )
    assembled = entry_json(
        seq,
        format_time(occurred),
        kind,
        natural_id,
        signal_id,
        client_order_id,
        account_id,
        record.payload_json,
        latency,
    )
    assert assembled == old_canonical_json(content)


def test_a_nan_latency_is_still_refused() -> None:
    record = AuditRecord("signal", "s", AT, {})
    try:
        entry_json(1, format_time(AT), "signal", "s", None, None, None, record.payload_json, float("nan"))
    except ValueError:
        return
    raise AssertionError("NaN latency was encoded")


# --------------------------------------------------------------- the chain in a database


def _old_style_append(engine: Engine, n: int) -> None:
    """Entries as the code before #16 wrote them: hash from ``old_canonical_json``, the
    payload column encoded by ``json.dumps``'s defaults (spaces, unsorted, ASCII escapes)."""
    prev = GENESIS_HASH
    with engine.begin() as conn:
        for seq in range(1, n + 1):
            payload = old_to_jsonable({"price": Decimal("5000.25"), "name": "é\n", "at": AT, "stamps": {"b": 1.5}})
            content = {
                "seq": seq,
                "occurred_at": old_format_time(AT),
                "kind": "signal",
                "natural_id": f"old{seq}",
                "signal_id": f"old{seq}",
                "client_order_id": None,
                "account_id": "L1",
                "payload": payload,
                "latency_ms": 0.125,
            }
            digest = hashlib.sha256((prev + old_canonical_json(content)).encode()).hexdigest()
            conn.execute(
                text(
                    "INSERT INTO audit_log (seq, occurred_at, kind, natural_id, signal_id, account_id, payload,"
                    " latency_ms, prev_hash, hash, recorded_at) VALUES (:seq, :at, 'signal', :nid, :nid, 'L1',"
                    + (" CAST(:payload AS JSON)" if engine.dialect.name == "postgresql" else " :payload")
                    + ", 0.125, :prev, :hash, :at)"
                ),
                {
                    "seq": seq,
                    "at": AT if engine.dialect.name == "postgresql" else AT.replace(tzinfo=None),
                    "nid": f"old{seq}",
                    "payload": json.dumps(payload),
                    "prev": prev,
                    "hash": digest,
                },
            )
            prev = digest


def _records(n: int) -> list[AuditRecord]:
    return [
        AuditRecord(
            kind="execution",
            natural_id=f"new{i}",
            occurred_at=AT + timedelta(microseconds=i),
            payload={"price": Decimal("1.50"), "text": 'quote " é \u0001', "stamps": {"sent": 1e16 + i}},
            signal_id=f"sig{i}",
            account_id="F1",
            latency_ms=0.1 * i,
        )
        for i in range(n)
    ]


def test_entries_written_before_still_verify_with_new_ones_after(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine=engine)
    _old_style_append(engine, 3)
    writer = AuditWriter(session_factory(engine))
    appended = writer.append(_records(4))
    assert [a.seq for a in appended] == [4, 5, 6, 7]
    assert writer.append(_records(4)) == []  # a redelivery is a no-op
    with session_factory(engine)() as db:
        result = verify(db)
        assert result.ok, result
        assert result.entries == 7
    engine.dispose()


def test_the_payload_column_holds_the_hashed_text_and_reads_back_as_the_payload(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine=engine)
    records = _records(2)
    AuditWriter(session_factory(engine)).append(records)
    as_text = "payload::text" if engine.dialect.name == "postgresql" else "payload"
    with engine.connect() as conn:
        stored = conn.execute(text(f"SELECT {as_text} FROM audit_log ORDER BY seq")).scalars().all()  # noqa: S608
    assert stored == [r.payload_json for r in records]
    with session_factory(engine)() as db:
        payloads = db.scalars(select(AuditEntry.payload).order_by(AuditEntry.seq)).all()
        assert payloads == [r.payload for r in records]
        assert isinstance(payloads[0], dict)
        assert verify(db).ok
    engine.dispose()


def test_an_engine_not_made_by_make_engine_still_stores_objects(tmp_path: Any) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/plain.db")
    upgrade(engine=engine)
    with session_factory(engine)() as db:
        assert not stores_json_text(db)
    AuditWriter(session_factory(engine)).append(_records(2))
    with session_factory(engine)() as db:
        assert db.scalars(select(AuditEntry.payload)).all() == [r.payload for r in _records(2)]
        assert verify(db).ok
    engine.dispose()


def test_a_record_payload_is_plain_json_once_built() -> None:
    record = mapping.execution_audit(fill("F1", 2, "buy", 1, "5000.75"))
    assert record.payload["price"] == "5000.75"
    assert record.payload["occurred_at"] == format_time(AT + timedelta(seconds=2))
    assert json.loads(record.payload_json) == record.payload


# --------------------------------------------------------------- slippage settle


def test_settle_writes_only_the_fills_whose_figures_change(tmp_path: Any) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/s.db")
    upgrade(engine=engine)
    first = mapping.executions_batch([ack("F1", "buy"), fill("F1", 1, "buy", 1, "5000.50")])
    second = mapping.executions_batch([leader_fill(1, 1, "5000.25")])

    def settled(rows: list[dict[str, Any]]) -> int:
        """Insert (as the writer does, a present row is kept) and settle, in one transaction."""
        with session_factory(engine).begin() as db:
            db.execute(insert_for("sqlite", ExecutionRow.__table__).on_conflict_do_nothing(), rows)
            return settle(db, rows)

    assert settled(first.executions) == 1  # the fill: against the reference, now known
    assert settled(first.executions) == 0  # nothing changed: nothing written
    assert settled(second.executions) == 1  # the leader's fill settles the follower's fill
    assert settled(second.executions) == 0
    with Session(engine) as db:
        figures = db.execute(
            select(ExecutionRow.leader_price, ExecutionRow.slippage_leader_ticks).where(
                ExecutionRow.account_id == "F1", ExecutionRow.kind == "partial_fill"
            )
        ).one()
    assert tuple(figures) == (Decimal("5000.25"), Decimal("1"))
    engine.dispose()


# --------------------------------------------------------------- per-batch round trips


def test_the_present_check_searches_the_unique_index_instead_of_scanning(tmp_path: Any) -> None:
    """Before #16 the check named natural_id alone: SQLite scanned the whole (kind, natural_id)
    index once per batch, a cost that grew with the log. With the kinds it is an index search."""
    from copytrader.storage.audit import _PRESENT

    engine = make_engine(f"sqlite:///{tmp_path}/plan.db")
    upgrade(engine=engine)
    statement = _PRESENT.params(kinds=["execution", "intent"], ids=["a", "b"])
    sql = str(statement.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql).all())
    assert "SEARCH" in plan and "SCAN" not in plan, plan
    engine.dispose()


def test_a_natural_id_present_under_another_kind_is_still_appended(tmp_path: Any) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/kinds.db")
    upgrade(engine=engine)
    writer = AuditWriter(session_factory(engine))
    assert len(writer.append([AuditRecord("execution", "same", AT, {})])) == 1
    assert len(writer.append([AuditRecord("response", "same", AT, {}), AuditRecord("execution", "same", AT, {})])) == 1
    with session_factory(engine)() as db:
        assert verify(db).entries == 2
    engine.dispose()
