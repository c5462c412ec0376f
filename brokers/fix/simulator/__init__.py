"""A FIX 4.2/4.4 acceptor (QuickFIX's engine) over the shared simulator kernel (docs/fidelity/fix.md)."""

from __future__ import annotations

from typing import Any

from ...simkernel.exchange import SimExchange
from .server import DEFAULT_ACCOUNTS, FixSimulator

__all__ = ["DEFAULT_ACCOUNTS", "FixSimulator", "create_simulator"]


def create_simulator(
    exchange: SimExchange | None = None, host: str = "127.0.0.1", port: int = 0, **options: Any
) -> FixSimulator:
    """A stopped simulator; ``await sim.start()`` binds the port and fills ``base_url``."""
    return FixSimulator(exchange, host, port, **options)
