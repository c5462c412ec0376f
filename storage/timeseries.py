"""Layout of the time-series tables: TimescaleDB hypertables, native partitions, or plain.

Chosen once, at migration time, and recorded in ``storage_meta`` (key ``timeseries_backend``):

* ``timescaledb``: the extension is installed (or can be created) → ``create_hypertable``.
* ``partitioned``: PostgreSQL without TimescaleDB → ``PARTITION BY RANGE (ts)`` with one
  partition per month, created ahead (:data:`MONTHS_AHEAD`), plus a ``_default`` partition so
  a row outside every range is still stored rather than refused.
* ``plain``: SQLite (the embedded default) → ordinary tables.

Monthly partitions must keep being created ahead: :func:`ensure_partitions` is idempotent and
is run by ``copytrader db upgrade`` and by the storage sink at start-up. If rows already sit in
the default partition for a month being created, they are moved into the new partition in the
same transaction (PostgreSQL refuses to attach a partition whose range the default holds).
"""

from __future__ import annotations

import logging
import os
import re
from datetime import date, datetime

from sqlalchemy import Connection, column, insert, inspect, table, text
from sqlalchemy.exc import SQLAlchemyError

from ..common.clock import utcnow
from .models import UTCDateTime

log = logging.getLogger(__name__)

TIMESERIES_TABLES = ("position_snapshots", "pnl_series")
BACKEND_KEY = "timeseries_backend"
MONTHS_BEHIND = 1
MONTHS_AHEAD = 3
BACKENDS = ("timescaledb", "partitioned", "plain")


PARTITION_NAME = re.compile(r"^(position_snapshots|pnl_series)_(default|y\d{4}m\d{2})$")


def is_partition(table_name: str) -> bool:
    """Partitions are created by code, not by the models: autogenerate must not drop them."""
    return bool(PARTITION_NAME.match(table_name))


def include_name(name: str | None, type_: str, _parent: object) -> bool:
    """Alembic ``include_name`` hook: leave partitions out of schema comparison."""
    return not (type_ == "table" and name is not None and is_partition(name))


def detect_backend(conn: Connection) -> str:
    """Pick the layout this database supports; ``COPYTRADER_TIMESERIES`` may force a weaker one.

    Trying ``CREATE EXTENSION`` runs in a savepoint: on PostgreSQL a failed statement would
    otherwise abort the whole migration transaction.
    """
    forced = os.environ.get("COPYTRADER_TIMESERIES", "").strip().lower()
    if forced and forced not in BACKENDS:
        raise ValueError(f"COPYTRADER_TIMESERIES must be one of {', '.join(BACKENDS)}; got {forced!r}")
    if conn.dialect.name != "postgresql":
        return "plain"
    if forced in ("partitioned", "plain"):
        return forced
    if conn.execute(text("SELECT extname FROM pg_extension WHERE extname = 'timescaledb'")).first():
        return "timescaledb"
    available = conn.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")).first()
    if available:
        try:
            with conn.begin_nested():
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS timescaledb"))
            return "timescaledb"
        except SQLAlchemyError as exc:  # permission denied, missing library: fall back
            log.warning("timescaledb is available but could not be created (%s); using partitions", exc)
    if forced == "timescaledb":
        raise RuntimeError("COPYTRADER_TIMESERIES=timescaledb but the extension is not available")
    return "partitioned"


def recorded_backend(conn: Connection) -> str | None:
    """The layout the migration chose for this database (None before the first migration)."""
    if not inspect(conn).has_table("storage_meta"):
        return None
    row = conn.execute(text("SELECT value FROM storage_meta WHERE key = :k"), {"k": BACKEND_KEY}).first()
    return str(row[0]) if row else None


def make_hypertable(conn: Connection, table: str) -> None:
    conn.execute(
        text("SELECT create_hypertable(:t, 'ts', chunk_time_interval => INTERVAL '7 days', if_not_exists => TRUE)"),
        {"t": table},
    )


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + (day.month - 1) + months
    return date(index // 12, index % 12 + 1, 1)


def partition_name(table: str, month: date) -> str:
    return f"{table}_y{month.year:04d}m{month.month:02d}"


def _bound(month: date) -> str:
    return f"{month.isoformat()} 00:00:00+00"


def ensure_partitions(
    conn: Connection,
    tables: tuple[str, ...] = TIMESERIES_TABLES,
    *,
    now: datetime | None = None,
    behind: int = MONTHS_BEHIND,
    ahead: int = MONTHS_AHEAD,
) -> list[str]:
    """Create the default partition and the monthly partitions around ``now``; returns new names.

    A no-op (empty list) unless this database uses the ``partitioned`` layout, so callers can
    run it unconditionally.
    """
    if conn.dialect.name != "postgresql" or recorded_backend(conn) != "partitioned":
        return []
    now = now or utcnow()
    first = add_months(now.date().replace(day=1), -behind)
    created: list[str] = []
    for parent in tables:
        existing = set(
            conn.execute(
                text(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :t"
                ),
                {"t": parent},
            ).scalars()
        )
        default = f"{parent}_default"
        if default not in existing:
            conn.execute(text(f'CREATE TABLE "{default}" PARTITION OF "{parent}" DEFAULT'))
            created.append(default)
        for offset in range(behind + ahead + 1):
            month = add_months(first, offset)
            name = partition_name(parent, month)
            if name not in existing:
                _create_month(conn, parent, default, name, month)
                created.append(name)
    if created:
        log.info("created partitions: %s", ", ".join(created))
    return created


def _create_month(conn: Connection, table: str, default: str, name: str, month: date) -> None:
    """Create one monthly partition, moving any rows the default partition holds for it."""
    lower, upper = _bound(month), _bound(add_months(month, 1))
    in_range = "ts >= CAST(:lo AS timestamptz) AND ts < CAST(:hi AS timestamptz)"
    params = {"lo": lower, "hi": upper}
    stray = conn.execute(text(f'SELECT count(*) FROM "{default}" WHERE {in_range}'), params).scalar_one()
    if not stray:
        conn.execute(
            text(f"CREATE TABLE \"{name}\" PARTITION OF \"{table}\" FOR VALUES FROM ('{lower}') TO ('{upper}')")
        )
        return
    log.warning("moving %d row(s) of %s from %s into new partition %s", stray, table, default, name)
    conn.execute(text(f'CREATE TABLE "{name}" (LIKE "{table}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)'))
    conn.execute(text(f'INSERT INTO "{name}" SELECT * FROM "{default}" WHERE {in_range}'), params)
    conn.execute(text(f'DELETE FROM "{default}" WHERE {in_range}'), params)
    conn.execute(
        text(f"ALTER TABLE \"{table}\" ATTACH PARTITION \"{name}\" FOR VALUES FROM ('{lower}') TO ('{upper}')")
    )


def record_backend(conn: Connection, backend: str) -> None:
    """Remember the layout, so later code (and ``copytrader db current``) need not guess."""
    meta = table("storage_meta", column("key"), column("value"), column("updated_at", UTCDateTime()))
    conn.execute(insert(meta).values(key=BACKEND_KEY, value=backend, updated_at=utcnow()))
