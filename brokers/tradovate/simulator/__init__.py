"""Protocol-faithful Tradovate simulator over the shared SimExchange kernel.

Options (keyword arguments of :func:`create_simulator`): ``accounts`` (names), ``balance``,
``token_ttl`` (seconds), ``tick_ms`` (market-time step), ``heartbeat_s``, ``latency`` (ms or
``"50+20"``), ``penalty_seconds`` (p-time of penalty tickets), ``rate_limit_reply``
(``"penalty"`` or ``"429"``), ``credentials`` (overrides of the demo login), ``seed``.
"""

from __future__ import annotations

from typing import Any

from ...simkernel.exchange import SimExchange
from .server import TradovateSimulator


def create_simulator(exchange: SimExchange | None = None, host: str = "127.0.0.1", port: int = 0,
                     **options: Any) -> TradovateSimulator:
    return TradovateSimulator(exchange, host=host, port=port, **options)


__all__ = ["TradovateSimulator", "create_simulator"]
