"""Every query the code runs on ``executions`` and ``audit_log`` is served by an index.

Migration 0005 dropped the indexes no query used; this runs the code that reads these tables
(the sink's write with its slippage settle and audit append, the reports, the slippage report,
the chain's verify), records each SELECT it sends, and asks the database for its plan: on
SQLite ``EXPLAIN QUERY PLAN`` (without ``ANALYZE``, which the store never runs), on PostgreSQL
``EXPLAIN`` with sequential scans switched off (the table is small enough that the planner
would rightly prefer one), so a query that no index can serve shows as a scan.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from copytrader.core import ids
from copytrader.core.records import Execution, OrderError
from copytrader.storage import mapping, reports, slippage
from copytrader.storage.audit import verify
from copytrader.storage.db import session_factory
from copytrader.storage.mapping import RowBatch
from copytrader.storage.writer import BatchWriter

DAY0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
DAYS, ORDERS = 40, 12
TABLES = ("executions", "audit_log")


def _executions(day: int) -> list[Execution]:
    """A day of copies: each leader fill, its follower's ack and fill (one in 12 busted)."""
    at = DAY0 + timedelta(days=day)
    out: list[Execution] = []
    for n in range(ORDERS):
        order, cid = f"{day}-{n}", f"CT{day}x{n}"
        signal = ids.signal_id("L1", order, "new")
        common: dict[str, Any] = {"symbol": "ESM6", "side": "buy", "quantity": 1, "occurred_at": at}
        out += [
            Execution(
                execution_id=f"L1|{order}|fill",
                account_id="L1",
                platform="paper",
                kind="fill",
                broker_order_id=order,
                is_leader=True,
                price=Decimal(5000),
                **common,
            ),
            Execution(
                execution_id=f"F{n}|{cid}|ack",
                account_id=f"F{n}",
                platform="paper",
                kind="ack",
                client_order_id=cid,
                signal_id=signal,
                request_outcome=True,
                reference_price=Decimal(5000),
                **common,
            ),
            Execution(
                execution_id=f"F{n}|{cid}|fill",
                account_id=f"F{n}",
                platform="paper",
                kind="fill",
                client_order_id=cid,
                signal_id=signal,
                price=Decimal("5000.25"),
                **common,
            ),
        ]
        if n == 0:
            out.append(
                Execution(
                    execution_id=f"F{n}|{cid}|bust",
                    account_id=f"F{n}",
                    platform="paper",
                    kind="fill_bust",
                    client_order_id=cid,
                    signal_id=signal,
                    corrects=f"F{n}|{cid}|fill",
                    **common,
                )
            )
    return out


def _error(day: int) -> OrderError:
    return OrderError(
        error_id=f"e{day}",
        stage="fanout",
        reason="no quote",
        signal_id=f"s{day}",
        account_id="F1",
        occurred_at=DAY0 + timedelta(days=day),
    )


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The SELECTs sent on the two tables while the test runs (statement, parameters)."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool) -> None:
        if not many and statement.lstrip().upper().startswith("SELECT") and any(t in statement for t in TABLES):
            sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    yield sent
    event.remove(engine, "before_cursor_execute", record)


def _plan(engine: Engine, statement: str, parameters: Any) -> str:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        else:
            conn.execute(text("SET enable_seqscan = off"))
            rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters).all()
    return "\n".join(str(row[-1]) for row in rows)


def _scans(plan: str, statement: str) -> bool:
    """Whether the plan reads a whole table: a SQLite ``SCAN`` (except the chain head, the
    last row in ``seq`` order) or a PostgreSQL ``Seq Scan``."""
    for table in TABLES:
        if f"Seq Scan on {table}" in plan:
            return True
        head = "ORDER BY audit_log.seq DESC" in statement and "LIMIT" in statement
        if any(line.strip() == f"SCAN {table}" for line in plan.splitlines()) and not head:
            return True
    return False


def test_every_query_on_executions_and_audit_log_uses_an_index(
    engine: Engine, statements: list[tuple[str, Any]]
) -> None:
    writer = BatchWriter(engine)
    for day in range(DAYS):
        batch = mapping.executions_batch(_executions(day))
        batch.extend(RowBatch(audit=[mapping.error_audit(_error(day))]))
        writer.write(batch)
    start, end = date(2026, 3, 20), date(2026, 3, 21)
    sessions = session_factory(engine)
    with sessions() as db:
        assert len(reports.latency_by_day(db, start, end)) == ORDERS
        assert [r.source for r in reports.rejects(db, start, end)] == ["fanout"]
        assert {c.client_order_id for c in slippage.copy_slippage(db, start, end)} == {
            f"CT18x{n}" for n in range(ORDERS)
        }
        assert verify(db).ok
    assert statements, "the code sent no query on these tables"
    scanning = [s for s, p in statements if _scans(_plan(engine, s, p), s)]
    assert scanning == []
    ranged = [(s, p) for s, p in statements if "FROM executions" in s and "executions.occurred_at >=" in s]
    assert len(ranged) == 3  # latency, broker rejects, copy slippage
    for statement, parameters in ranged:
        assert "ix_executions_occurred_at" in _plan(engine, statement, parameters)
