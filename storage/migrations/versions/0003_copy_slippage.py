"""Price protection and slippage per copy on the ``executions`` rows.

Fan-out stamps each copy with the fresh quote's reference price and, when a follower's rule
turned the leader's market order into a protected limit, the band and the touch it started
from; the executor carries them onto the copy's ack and fills. The sink then measures each
follower fill against the leader's average fill of the copied order and against that reference,
in ticks and in money, positive = worse for the follower (``storage.slippage``). NULL means
unknown, never 0.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(18, 6)
COLUMNS = (
    ("reference_price", MONEY),
    ("band_ticks", sa.Integer()),
    ("band_touch", MONEY),
    ("leader_price", MONEY),
    ("slippage_leader_ticks", MONEY),
    ("slippage_leader_amount", MONEY),
    ("slippage_ref_ticks", MONEY),
    ("slippage_ref_amount", MONEY),
)


def upgrade() -> None:
    with op.batch_alter_table("executions") as batch:
        for name, type_ in COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
    # The sink looks a copy's leader fills up by the leader's broker order id after every batch.
    op.create_index("ix_executions_broker_order_id", "executions", ["broker_order_id"])


def downgrade() -> None:
    op.drop_index("ix_executions_broker_order_id", table_name="executions")
    with op.batch_alter_table("executions") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
