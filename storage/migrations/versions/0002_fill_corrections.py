"""Fill busts and corrections: an execution row can say which fill it corrects, and what it was.

A broker may bust (cancel) or correct a fill after the fact (Tradovate ``execType``
TradeCancel/TradeCorrect, FIX ExecType H/G). The executor publishes those as executions of kind
``fill_bust``/``fill_correction`` naming the fill's execution id; storing that link and the
original quantity and price keeps the audit trail and the reports able to tell what changed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(18, 6)


def upgrade() -> None:
    with op.batch_alter_table("executions") as batch:
        batch.add_column(sa.Column("corrects", sa.String(200), nullable=True))
        batch.add_column(sa.Column("original_quantity", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("original_price", MONEY, nullable=True))
    op.create_index("ix_executions_corrects", "executions", ["corrects"])


def downgrade() -> None:
    op.drop_index("ix_executions_corrects", table_name="executions")
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("original_price")
        batch.drop_column("original_quantity")
        batch.drop_column("corrects")
