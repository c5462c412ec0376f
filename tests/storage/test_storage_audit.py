"""The audit hash chain: append, dedupe on redelivery, verify, detect tampering."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from copytrader.storage.audit import (
    GENESIS_HASH,
    AuditRecord,
    AuditWriter,
    canonical_json,
    chain_hash,
    verify,
)
from copytrader.storage.db import make_engine, session_factory
from copytrader.storage.models import AuditEntry

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def _records(n: int, prefix: str = "s") -> list[AuditRecord]:
    return [
        AuditRecord(
            kind="signal",
            natural_id=f"{prefix}{i}",
            occurred_at=T0 + timedelta(milliseconds=i),
            payload={"price": Decimal("5000.25"), "qty": i, "at": T0, "stamps": {"detected": 1.5 + i}},
            signal_id=f"{prefix}{i}",
            account_id="L1",
            latency_ms=0.1234 * i,
        )
        for i in range(n)
    ]


def _tamper(engine: Engine, sql: str, **params: object) -> None:
    """What a privileged user could do: bypass the append-only triggers, then edit."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        else:
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
            conn.execute(text("DROP TRIGGER audit_log_no_delete"))
        conn.execute(text(sql), params)


def test_canonical_json() -> None:
    value = {"b": Decimal("1.50"), "a": T0, "c": [1, "x"], "d": None}
    assert canonical_json(value) == '{"a":"2026-03-02T14:30:00.000000Z","b":"1.50","c":[1,"x"],"d":null}'
    assert canonical_json({"é": 1}) == '{"é":1}'
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})
    with pytest.raises(ValueError):
        canonical_json({"t": datetime(2026, 1, 1)})
    assert chain_hash(GENESIS_HASH, {"a": 1}) != chain_hash(GENESIS_HASH, {"a": 2})


def test_append_and_verify(engine: Engine) -> None:
    writer = AuditWriter(session_factory(engine))
    first = writer.append(_records(3))
    assert [e.seq for e in first] == [1, 2, 3]
    assert first[0].prev_hash == GENESIS_HASH and first[1].prev_hash == first[0].hash
    writer.append(_records(2, "t"))
    with session_factory(engine)() as db:
        result = verify(db, page=2)  # several pages
    assert result.ok and result.entries == 5


def test_redelivery_neither_duplicates_nor_breaks_the_chain(engine: Engine) -> None:
    writer = AuditWriter(session_factory(engine))
    writer.append(_records(3))
    again = writer.append(_records(4) + _records(4))  # 3 already stored, one new, one batch-internal duplicate
    assert [e.natural_id for e in again] == ["s3"]
    assert again[0].seq == 4
    with session_factory(engine)() as db:
        assert verify(db).entries == 4
        assert db.scalar(select(func.count()).select_from(AuditEntry)) == 4


def test_modified_payload_is_reported_at_its_seq(engine: Engine) -> None:
    AuditWriter(session_factory(engine)).append(_records(5))
    _tamper(engine, "UPDATE audit_log SET payload = '{\"qty\": 999}' WHERE seq = 3")
    with session_factory(engine)() as db:
        result = verify(db)
    assert not result.ok and result.broken_seq == 3 and result.entries == 2
    assert "content" in (result.reason or "")


def test_deleted_entry_is_reported(engine: Engine) -> None:
    AuditWriter(session_factory(engine)).append(_records(5))
    _tamper(engine, "DELETE FROM audit_log WHERE seq = 2")
    with session_factory(engine)() as db:
        result = verify(db)
    assert result.broken_seq == 2 and "missing" in (result.reason or "")


def test_rewritten_hash_breaks_the_next_link(engine: Engine) -> None:
    """Recomputing one row's hash after editing it does not help: the next row's prev_hash no longer matches."""
    AuditWriter(session_factory(engine)).append(_records(4))
    with session_factory(engine)() as db:
        row = db.get(AuditEntry, 2)
        assert row is not None
        payload = {**row.payload, "qty": 42}
        from copytrader.storage.audit import entry_content

        content = entry_content(
            2,
            row.occurred_at,
            row.kind,
            row.natural_id,
            row.signal_id,
            row.client_order_id,
            row.account_id,
            payload,
            row.latency_ms,
        )
        new_hash = chain_hash(row.prev_hash, content)
    _tamper(engine, "UPDATE audit_log SET payload = :p, hash = :h WHERE seq = 2", p=canonical_json(payload), h=new_hash)
    with session_factory(engine)() as db:
        result = verify(db)
    assert result.broken_seq == 3 and "prev_hash" in (result.reason or "")


def test_empty_chain_is_intact(db: Session) -> None:
    result = verify(db)
    assert result.ok and result.entries == 0 and result.head_hash == GENESIS_HASH


def test_concurrent_appends_from_threads_keep_one_chain(engine: Engine) -> None:
    writer = AuditWriter(session_factory(engine))
    threads = [threading.Thread(target=writer.append, args=(_records(20, f"w{n}-"),)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with session_factory(engine)() as db:
        result = verify(db)
    assert result.ok and result.entries == 80


@pytest.mark.postgres
def test_two_processes_worth_of_writers_on_postgres(postgres_url: str, pg_engine: Engine) -> None:
    """Two engines (as two worker processes would have): the advisory lock keeps one chain."""
    other = make_engine(postgres_url)
    writers = [AuditWriter(session_factory(pg_engine)), AuditWriter(session_factory(other))]
    threads = [threading.Thread(target=writers[n % 2].append, args=(_records(25, f"p{n}-"),)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    other.dispose()
    with session_factory(pg_engine)() as db:
        result = verify(db)
    assert result.ok and result.entries == 150


def test_record_validation() -> None:
    with pytest.raises(ValueError, match="audit kind"):
        AuditRecord(kind="bogus", natural_id="x", occurred_at=T0, payload={})
    with pytest.raises(ValueError, match="natural_id"):
        AuditRecord(kind="signal", natural_id="", occurred_at=T0, payload={})
