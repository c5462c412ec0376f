"""NinjaTrader session settings, read once from ``SessionConfig``.

The endpoint chooses the route. ``ati://host:port`` (or ``host:port``) is the TCP interface
NinjaTrader.Client.dll speaks; its port is the "ATI server port" in NinjaTrader's options,
36973 by default (N-ati, N-tk). ``oif:///path/to/NinjaTrader 8`` is the file interface: order
instruction files go to ``<path>/incoming`` and NinjaTrader's answers are read from
``<path>/outgoing`` (options ``incoming``/``outgoing`` override either folder, e.g. a share).
NinjaTrader has no login on either route: ``username``/``secret`` are ignored. The options and
their bounds: ``options.py``.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..base import SessionConfig
from ..options import read_options
from .options import NinjaTraderOptions

DEFAULT_PORT = 36973


class Route(str, enum.Enum):
    ATI = "ati"
    OIF = "oif"


@dataclass(frozen=True, slots=True)
class NtConfig:
    route: Route
    accounts: dict[str, str]  # our account id → NinjaTrader account name
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    incoming: Path | None = None
    outgoing: Path | None = None
    request_timeout_s: float = 10.0  # how long a command waits for NinjaTrader's first word on it
    lookup_settle_s: float = 0.5  # how long lookup waits for a command still on its way
    poll_s: float = 0.02  # how often the outgoing folder is read (file route)
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 10.0  # NinjaTrader's own client retries every 10 s (N-tk)
    connect_timeout_s: float = 10.0
    exchange_name: str = "Globex"  # the exchange word of position file names
    balance: Decimal = Decimal(0)  # the cash value a snapshot reports where NinjaTrader gives none

    @property
    def address(self) -> str:
        if self.route is Route.ATI:
            return f"ati://{self.host}:{self.port}"
        return f"oif://{self.incoming} -> {self.outgoing}"

    @classmethod
    def from_session(cls, session: SessionConfig) -> NtConfig:
        if not session.accounts:
            raise ValueError("ninjatrader: at least one account is required")
        for name in session.accounts.values():
            if not name or any(c in name for c in ";|\x00\r\n") or not name.isascii():
                raise ValueError(f"ninjatrader: account name {name!r} cannot travel in an ATI line")
        text = (session.endpoint or "").strip()
        if not text:
            raise ValueError("ninjatrader: endpoint is required (ati://host:port or oif:///path/to/NinjaTrader 8)")
        o = read_options(NinjaTraderOptions, session.options)
        base = cls(
            Route.ATI,
            dict(session.accounts),
            request_timeout_s=o.request_timeout_s,
            lookup_settle_s=o.lookup_settle_s,
            poll_s=o.poll_s,
            reconnect_min_s=o.reconnect_min_s,
            reconnect_max_s=o.reconnect_max_s,
            connect_timeout_s=o.connect_timeout_s,
            exchange_name=o.exchange_name,
            balance=o.balance,
        )
        if text.startswith("oif:"):
            parts = urlsplit(text)
            root = Path(unquote(parts.netloc + parts.path)) if (parts.netloc or parts.path) else None
            incoming = o.incoming or (root / "incoming" if root else None)
            outgoing = o.outgoing or (root / "outgoing" if root else None)
            if incoming is None or outgoing is None:
                raise ValueError(f"ninjatrader: {text!r} names no folder (oif:///path/to/NinjaTrader 8)")
            return dataclasses.replace(base, route=Route.OIF, incoming=Path(incoming), outgoing=Path(outgoing))
        parts = urlsplit(text if "://" in text else f"ati://{text}")
        if parts.scheme not in ("ati", "tcp") or not parts.hostname:
            raise ValueError(f"ninjatrader: endpoint must be ati://host:port or oif:///folder, got {text!r}")
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError:
            raise ValueError(f"ninjatrader: bad port in endpoint {text!r}") from None
        return dataclasses.replace(base, host=parts.hostname, port=port)
