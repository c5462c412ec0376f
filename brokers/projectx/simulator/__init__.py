"""Protocol-faithful ProjectX Gateway simulator (REST + SignalR user hub) over the shared kernel."""

from __future__ import annotations

from typing import Any

from ...simkernel.exchange import SimExchange
from .server import DEFAULT_ACCOUNTS, ProjectXSimulator

__all__ = ["DEFAULT_ACCOUNTS", "ProjectXSimulator", "create_simulator"]


def create_simulator(
    exchange: SimExchange | None = None, host: str = "127.0.0.1", port: int = 0, **options: Any
) -> ProjectXSimulator:
    """A stopped simulator; ``await sim.start()`` binds the port and fills ``base_url``."""
    return ProjectXSimulator(exchange, host, port, **options)
