"""Protocol-faithful Rithmic R|Protocol simulator (ORDER and PNL plants) over the shared kernel."""

from __future__ import annotations

from typing import Any

from ...simkernel.exchange import SimExchange
from .server import DEFAULT_ACCOUNTS, SYSTEM_NAME, RithmicSimulator

__all__ = ["DEFAULT_ACCOUNTS", "SYSTEM_NAME", "RithmicSimulator", "create_simulator"]


def create_simulator(
    exchange: SimExchange | None = None, host: str = "127.0.0.1", port: int = 0, **options: Any
) -> RithmicSimulator:
    """A stopped simulator; ``await sim.start()`` binds the port and fills ``url`` (= ``base_url``)."""
    return RithmicSimulator(exchange, host, port, **options)
