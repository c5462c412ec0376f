"""Broker health per account: the latest AccountStatus a session reported."""

from __future__ import annotations

import faust
from faust.types import TableT

from ..core.records import AccountStatus


def health_table(app: faust.App, partitions: int) -> TableT[str, AccountStatus]:
    """``broker_health[account_id]`` → AccountStatus, co-partitioned with ``broker.health``."""
    return app.Table(
        "broker_health", key_type=str, value_type=AccountStatus, partitions=partitions, help="broker health"
    )
