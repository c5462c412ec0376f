"""Id columns as wide as the records' doors let ids through.

``Execution`` accepts an execution id (and the fill a correction names) of up to 512
characters, a signal id of up to 256 and a platform name of up to 64 (``core/schemas/bounds.py``);
these columns were ``VARCHAR(200)`` (the platform ``VARCHAR(32)``). PostgreSQL refused a longer value, so the store skipped that execution and its
audit entry: a record the copier had accepted went missing from the trail. Widening a
``VARCHAR`` on PostgreSQL is a catalogue change (no table rewrite, its indexes stay), on plain,
partitioned and TimescaleDB tables alike. SQLite does not enforce the width; its tables are
copied once so that the schema matches the models.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# (table, column, nullable, width before, width now)
WIDENED = (
    ("audit_log", "natural_id", False, 200, 576),
    ("audit_log", "signal_id", True, 200, 256),
    ("executions", "execution_id", False, 200, 512),
    ("executions", "platform", False, 32, 64),
    ("executions", "signal_id", True, 200, 256),
    ("executions", "corrects", True, 200, 512),
)


def _alter(to_new: bool) -> None:
    """PostgreSQL widens in place; SQLite (which ignores the width) copies each table once in
    Alembic's batch mode, so its schema says what the models say."""
    for table in ("audit_log", "executions"):
        with op.batch_alter_table(table) as batch:
            for name, column, nullable, before, now in WIDENED:
                if name == table:
                    batch.alter_column(
                        column,
                        type_=sa.String(now if to_new else before),
                        existing_type=sa.String(before if to_new else now),
                        existing_nullable=nullable,
                    )
    if op.get_bind().dialect.name == "sqlite":  # the copy of audit_log lost its triggers (0001's)
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"DROP TRIGGER IF EXISTS audit_log_no_{verb.lower()}")
            op.execute(
                f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                f"BEGIN SELECT RAISE(ABORT, 'audit_log is append-only ({verb} refused)'); END"
            )


def upgrade() -> None:
    _alter(to_new=True)


def downgrade() -> None:
    _alter(to_new=False)  # fails on a value that no longer fits: nothing is cut
