"""The protocol-faithful dxLink market-data simulator (see server.py)."""

from __future__ import annotations

from typing import Any

from ...simkernel.exchange import SimExchange
from .server import DEFAULT_TOKEN, DxLinkSimulator

__all__ = ["DEFAULT_TOKEN", "DEMO_SYMBOLS", "DxLinkSimulator", "MarketDataSimulator", "create_simulator"]

#: dxFeed futures symbols the demo login is told about (any listed instrument is served).
DEMO_SYMBOLS = ("/ESZ26:XCME", "/MESZ26:XCME", "/NQZ26:XCME", "/MNQZ26:XCME")


class MarketDataSimulator(DxLinkSimulator):
    """The dxLink simulator in the registry's shape (``create_simulator``): ``base_url``,
    ``demo_credentials()``, ``exchange`` and ``faults()``, so ``copytrader sim dxlink`` and the
    conformance harness start it like the order platforms' simulators. Its prices follow the
    kernel's price path, so a scenario's ``set_price`` moves the quotes too."""

    def __init__(self, exchange: SimExchange, host: str, port: int, **options: Any) -> None:
        super().__init__(host, port, prices=exchange.prices, **options)
        self.exchange = exchange

    @property
    def base_url(self) -> str:
        return self.url

    def demo_credentials(self) -> dict[str, Any]:
        """What a client needs: the token and the symbols to subscribe (no accounts: market data only)."""
        return {"token": sorted(self.tokens)[0] if self.tokens else None, "symbols": list(DEMO_SYMBOLS)}

    def faults(self, account: str) -> Any:
        return self.exchange.account(account).faults


#: Options the sandbox passes to every simulator that a market-data server has no use for.
_ORDER_OPTIONS = ("latency", "logins", "accounts", "rate_limit", "rate_limits")


def create_simulator(
    exchange: SimExchange | None = None, host: str = "127.0.0.1", port: int = 0, **options: Any
) -> MarketDataSimulator:
    """A stopped simulator; ``await sim.start()`` binds the port and fills ``base_url``."""
    kept = {k: v for k, v in options.items() if k not in _ORDER_OPTIONS}
    return MarketDataSimulator(exchange or SimExchange(seed=7), host, port, **kept)
