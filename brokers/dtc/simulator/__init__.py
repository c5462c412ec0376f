"""A protocol-faithful DTC server over the shared simulator kernel (see docs/fidelity/dtc.md)."""

from __future__ import annotations

from typing import Any

from ...simkernel.exchange import SimExchange
from .server import DEFAULT_ACCOUNTS, DtcSimulator

__all__ = ["DEFAULT_ACCOUNTS", "DtcSimulator", "create_simulator"]


def create_simulator(
    exchange: SimExchange | None = None, host: str = "127.0.0.1", port: int = 0, **options: Any
) -> DtcSimulator:
    """A stopped simulator; ``await sim.start()`` binds the port and fills ``base_url``."""
    return DtcSimulator(exchange, host, port, **options)
