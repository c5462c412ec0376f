"""Helpers shared by the NinjaTrader tests (importable, unlike conftest)."""

from __future__ import annotations

from copytrader.brokers.simkernel.exchange import SimExchange
from copytrader.brokers.simkernel.pricepath import PricePath


def frozen() -> SimExchange:
    """Prices move only when a test says so."""
    return SimExchange(seed=7, prices=PricePath(7, max_step_ticks=0))
