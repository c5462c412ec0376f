"""Protocol-faithful Tradovate simulator over the shared SimExchange kernel.

Options (keyword arguments of :func:`create_simulator`): ``logins`` (list of ``SimLogin``: who
may log in, each seeing only its accounts; default one demo login owning ``accounts``),
``accounts`` (names), ``balance``, ``token_ttl`` (seconds), ``max_sessions`` (2),
``max_sockets_per_user`` (50), ``client_ttl_s`` (silence before a socket is closed, 5),
``tick_ms`` (market-time step), ``heartbeat_s``, ``latency`` (ms or ``"50+20"``),
``rate_limits`` (per-user windows, 429), ``endpoint_limits`` (per class, penalty tickets),
``penalty_seconds`` (p-time), ``penalty_scope`` (``"subnet"`` or ``"user"``), ``captcha_after``,
``lockout_s``, ``rate_limit_reply`` (the ``rate_limit_next`` fault: ``"penalty"`` or ``"429"``),
``bad_login_reply`` (``"errorText"`` or ``"401"``), ``credentials`` (name/password of the demo
login), ``seed``.
"""

from __future__ import annotations

from typing import Any

from ...simkernel.exchange import SimExchange
from .server import TradovateSimulator


def create_simulator(
    exchange: SimExchange | None = None, host: str = "127.0.0.1", port: int = 0, **options: Any
) -> TradovateSimulator:
    return TradovateSimulator(exchange, host=host, port=port, **options)


__all__ = ["TradovateSimulator", "create_simulator"]
