"""Indexes that only cost writes: gone, or swapped for the one the reports can use (#16).

The store writes every intent, ack and fill to ``audit_log`` and ``executions``; each index is a
B-tree that every insert updates, and an index on a random key (a hash, an order id) or led by
one of many accounts dirties a different page per row, which each commit writes out again.
On the 200-follower replay the SQLite store wrote 32 KB per copy, a third of it for
``UNIQUE(hash)``; after this revision 12 KB. No query in the code uses what is dropped
(``storage/``, ``web/``, ``agents/``, ``app/``; plans checked with EXPLAIN on both databases,
``tests/storage/test_storage_query_plans.py``):

* ``audit_log UNIQUE(hash)``: each hash covers its entry's ``seq``, which is the primary key, and
  the previous hash, so two entries cannot share one; the chain (``storage.audit.verify``) is
  what proves the log intact, and nothing looks an entry up by its hash.
* ``audit_log (account_id, occurred_at)`` and ``(client_order_id)``: nothing reads them. An
  order's entries stay one index search away: its intent by ``(kind, natural_id)``, its acks and
  fills through ``executions.client_order_id`` and their execution ids, all of them by
  ``signal_id`` (kept: signal ids arrive in order, so it costs little).
* ``executions (account_id, occurred_at)`` and ``(platform, occurred_at)``: the reports select a
  range of days for every account and platform, which neither serves (SQLite skip-scanned one
  only after an ``ANALYZE`` the store never runs; PostgreSQL would read all of one); one index on
  ``occurred_at`` serves them on both.
* ``executions (corrects)``: NULL except on a bust or correction, so it becomes partial.

Kept: the primary keys, ``UNIQUE(kind, natural_id)`` and ``UNIQUE(execution_id)`` (what makes a
redelivery a no-op), the indexes the slippage settle searches (``signal_id``,
``client_order_id``, ``broker_order_id``) and the append-only triggers (SQLite's are made again
after its table copy, as in 0004).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

#: (name, table, columns) of the plain indexes this revision drops.
DROPPED = (
    ("ix_audit_log_client_order_id", "audit_log", ["client_order_id"]),
    ("ix_audit_log_account_id_occurred_at", "audit_log", ["account_id", "occurred_at"]),
    ("ix_executions_account_id_occurred_at", "executions", ["account_id", "occurred_at"]),
    ("ix_executions_platform_occurred_at", "executions", ["platform", "occurred_at"]),
)
CORRECTS_WHERE = "corrects IS NOT NULL"


def _append_only_triggers() -> None:
    """SQLite's copy of ``audit_log`` lost 0001's triggers; PostgreSQL altered it in place."""
    if op.get_bind().dialect.name != "sqlite":
        return
    for verb in ("UPDATE", "DELETE"):
        op.execute(f"DROP TRIGGER IF EXISTS audit_log_no_{verb.lower()}")
        op.execute(
            f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
            f"BEGIN SELECT RAISE(ABORT, 'audit_log is append-only ({verb} refused)'); END"
        )


def upgrade() -> None:
    for name, table, _ in DROPPED:
        op.drop_index(name, table_name=table)
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_constraint("uq_audit_log_hash", type_="unique")
    _append_only_triggers()
    op.create_index("ix_executions_occurred_at", "executions", ["occurred_at"])
    op.drop_index("ix_executions_corrects", table_name="executions")
    op.create_index(
        "ix_executions_corrects",
        "executions",
        ["corrects"],
        sqlite_where=sa.text(CORRECTS_WHERE),
        postgresql_where=sa.text(CORRECTS_WHERE),
    )


def downgrade() -> None:
    op.drop_index("ix_executions_corrects", table_name="executions")
    op.create_index("ix_executions_corrects", "executions", ["corrects"])
    op.drop_index("ix_executions_occurred_at", table_name="executions")
    with op.batch_alter_table("audit_log") as batch:
        batch.create_unique_constraint("uq_audit_log_hash", ["hash"])
    _append_only_triggers()
    for name, table, columns in DROPPED:
        op.create_index(name, table, columns)
