"""The blocking half of the storage sink: one transaction per batch, idempotent.

Called from a worker thread (``asyncio.to_thread``) by ``agents/tracking/storage_sink.py``, never on
the event loop. A batch is written in one transaction under the audit chain's lock, so a
crash mid-batch leaves nothing half-written, and Kafka's redelivery of the same batch is a
no-op: audit entries are skipped by ``(kind, natural_id)``, executions by ``execution_id``,
snapshots by their key, and a pnl point only moves forward in time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from .audit import AuditWriter, append_entries
from .db import insert_for, session_factory
from .driver_insert import DriverInsert, bulk_insert
from .mapping import EXECUTION_KEYS, RowBatch
from .models import ExecutionRow, PnlPoint, PositionSnapshot
from .slippage import settle

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WriteResult:
    audit_appended: int
    executions: int
    snapshots: int
    pnl_points: int


class BatchWriter:
    """Writes :class:`~copytrader.storage.mapping.RowBatch` es; one instance per process."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.audit = AuditWriter(session_factory(engine))
        # Built once per writer: a statement built per batch costs its coercions every time.
        executions = insert_for(self.dialect, ExecutionRow.__table__).on_conflict_do_nothing(
            index_elements=["execution_id"]
        )
        self._driver_executions = (
            DriverInsert(executions, EXECUTION_KEYS, engine.dialect) if self.dialect == "sqlite" else None
        )
        self._insert_executions = self._batched(executions, ExecutionRow.__table__.c.id)
        snapshots = PositionSnapshot.__table__
        self._insert_snapshots = self._batched(
            insert_for(self.dialect, snapshots).on_conflict_do_nothing(index_elements=["account_id", "symbol", "ts"]),
            snapshots.c.ts,
        )
        table = PnlPoint.__table__
        upsert = insert_for(self.dialect, table)
        self._upsert_pnl = self._batched(
            upsert.on_conflict_do_update(
                index_elements=["account_id", "symbol", "ts"],
                set_={
                    name: upsert.excluded[name] for name in ("last_update_at", "net_qty", "avg_price", "realized_pnl")
                },
                where=table.c.last_update_at < upsert.excluded.last_update_at,
            ),
            table.c.ts,
        )

    def _batched(self, statement: Any, column: Any) -> Any:
        """On PostgreSQL, ``RETURNING`` lets SQLAlchemy send an ``INSERT ... ON CONFLICT``
        executemany as multi-row INSERTs; since 2.1 it does not without, and psycopg2 then
        made one round trip per row (#16). What it returns is not read."""
        return statement.returning(column) if self.dialect == "postgresql" else statement

    def write(self, batch: RowBatch) -> WriteResult:
        if not len(batch):
            return WriteResult(0, 0, 0, 0)
        result: WriteResult = self.audit.run(lambda db: self._write(db, batch))
        return result

    def _write(self, db: Session, batch: RowBatch) -> WriteResult:
        appended = append_entries(db, batch.audit) if batch.audit else []
        if batch.executions:
            bulk_insert(db, self._insert_executions, self._driver_executions, batch.executions)
            settle(db, batch.executions)  # slippage of the copies these rows complete
        if batch.snapshots:
            db.execute(self._insert_snapshots, batch.snapshots)
        if batch.pnl:
            db.execute(self._upsert_pnl, batch.pnl)
        return WriteResult(len(appended), len(batch.executions), len(batch.snapshots), len(batch.pnl))
