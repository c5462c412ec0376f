"""A NinjaTrader 8 stand-in on the shared simulator kernel, serving the ATI TCP port and the
order-instruction folders at once (see docs/fidelity/ninjatrader.md)."""

from __future__ import annotations

from typing import Any

from ...simkernel.exchange import SimExchange
from .server import DEFAULT_ACCOUNTS, NinjaTraderSimulator

__all__ = ["DEFAULT_ACCOUNTS", "NinjaTraderSimulator", "create_simulator"]


def create_simulator(
    exchange: SimExchange | None = None, host: str = "127.0.0.1", port: int = 0, **options: Any
) -> NinjaTraderSimulator:
    """A stopped simulator; ``await sim.start()`` binds the port, makes the folders and fills
    ``base_url`` (TCP) and ``oif_url`` (files)."""
    return NinjaTraderSimulator(exchange, host, port, **options)
