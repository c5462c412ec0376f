"""Time-series layouts: PostgreSQL range partitions (routing, pruning, default partition).

TimescaleDB cannot be installed on this machine, so its path is covered only by the
detection unit test below; the partitioned path runs against a real PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, insert, inspect, text
from sqlalchemy.exc import ProgrammingError

from copytrader.storage import migrate
from copytrader.storage.db import make_engine
from copytrader.storage.models import PositionSnapshot
from copytrader.storage.timeseries import (
    add_months,
    detect_backend,
    ensure_partitions,
    partition_name,
)

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


def _snapshot(ts: datetime, account: str = "F1") -> dict[str, Any]:
    return {
        "account_id": account,
        "symbol": "ESM6",
        "ts": ts,
        "net_qty": 1,
        "avg_price": Decimal("5000.25"),
        "realized_pnl": Decimal(0),
        "fills": 1,
    }


def _where(conn: Any, ts: datetime) -> str:
    return str(
        conn.execute(
            text("SELECT tableoid::regclass::text FROM position_snapshots WHERE ts = :ts"), {"ts": ts}
        ).scalar_one()
    )


@pytest.mark.postgres
def test_rows_route_to_their_month(pg_engine: Engine) -> None:
    with pg_engine.begin() as conn:
        ensure_partitions(conn, now=NOW)
        feb, mar = datetime(2026, 2, 28, 23, 59, tzinfo=UTC), datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
        far = datetime(2031, 1, 1, tzinfo=UTC)
        conn.execute(insert(PositionSnapshot), [_snapshot(feb), _snapshot(mar), _snapshot(far)])
        assert _where(conn, feb) == "position_snapshots_y2026m02"
        assert _where(conn, mar) == "position_snapshots_y2026m03"
        assert _where(conn, far) == "position_snapshots_default"


@pytest.mark.postgres
def test_time_filter_prunes_to_one_partition(pg_engine: Engine) -> None:
    with pg_engine.begin() as conn:
        ensure_partitions(conn, now=NOW)
        plan = "\n".join(
            conn.execute(
                text(
                    "EXPLAIN SELECT * FROM position_snapshots WHERE ts >= '2026-03-02 00:00+00' "
                    "AND ts < '2026-03-03 00:00+00'"
                )
            ).scalars()
        )
    assert "position_snapshots_y2026m03" in plan
    scanned = [p for p in inspect(pg_engine).get_table_names() if p.startswith("position_snapshots_") and p in plan]
    assert scanned == ["position_snapshots_y2026m03"], plan


@pytest.mark.postgres
def test_ensure_partitions_is_idempotent_and_moves_default_rows(pg_engine: Engine) -> None:
    later = datetime(2029, 6, 10, tzinfo=UTC)  # beyond every partition made so far
    with pg_engine.begin() as conn:
        ensure_partitions(conn, now=NOW)
        assert ensure_partitions(conn, now=NOW) == []
        conn.execute(insert(PositionSnapshot), [_snapshot(later)])
        assert _where(conn, later) == "position_snapshots_default"
    with pg_engine.begin() as conn:
        created = ensure_partitions(conn, now=later)
        assert "position_snapshots_y2029m06" in created
        assert _where(conn, later) == "position_snapshots_y2029m06"
        assert conn.execute(text("SELECT count(*) FROM position_snapshots_default")).scalar_one() == 0


@pytest.mark.postgres
def test_forced_plain_layout_on_postgres(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COPYTRADER_TIMESERIES", "plain")
    state = migrate.upgrade(postgres_url)
    assert state.timeseries_backend == "plain"
    engine = make_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM pg_partitioned_table")).scalar_one() == 0
            assert ensure_partitions(conn) == []
    finally:
        engine.dispose()


def test_sqlite_has_no_partitions(engine: Engine) -> None:
    with engine.begin() as conn:
        assert ensure_partitions(conn) == []


def test_month_arithmetic() -> None:
    assert add_months(datetime(2026, 11, 1).date(), 3).isoformat() == "2027-02-01"
    assert add_months(datetime(2026, 1, 1).date(), -1).isoformat() == "2025-12-01"
    assert partition_name("pnl_series", datetime(2026, 1, 1).date()) == "pnl_series_y2026m01"


class _FakeConn:
    """Answers the three catalogue queries ``detect_backend`` asks, without a server."""

    class dialect:
        name = "postgresql"

    def __init__(self, installed: bool, available: bool, create_fails: bool = False) -> None:
        self.installed, self.available, self.create_fails = installed, available, create_fails
        self.statements: list[str] = []

    def execute(self, statement: Any, *_: Any) -> Any:
        sql = str(statement)
        self.statements.append(sql)
        if sql.startswith("CREATE EXTENSION") and self.create_fails:
            raise ProgrammingError(sql, {}, Exception("permission denied to create extension"))
        hit = (self.installed and "pg_extension" in sql) or (self.available and "pg_available_extensions" in sql)
        return type("R", (), {"first": lambda _self: (1,) if hit else None})()

    @contextmanager
    def begin_nested(self) -> Iterator[None]:
        yield


@pytest.mark.parametrize(
    ("installed", "available", "fails", "expected"),
    [
        (True, True, False, "timescaledb"),
        (False, True, False, "timescaledb"),
        (False, True, True, "partitioned"),
        (False, False, False, "partitioned"),
    ],
)
def test_detect_backend_decision(installed: bool, available: bool, fails: bool, expected: str) -> None:
    conn = _FakeConn(installed, available, fails)
    assert detect_backend(conn) == expected  # type: ignore[arg-type]  # duck-typed connection
    if not installed and available:
        assert any(s.startswith("CREATE EXTENSION IF NOT EXISTS timescaledb") for s in conn.statements)
