"""NinjaTrader session settings, read once from ``SessionConfig``.

The endpoint chooses the route. ``ati://host:port`` (or ``host:port``) is the TCP interface
NinjaTrader.Client.dll speaks; its port is the "ATI server port" in NinjaTrader's options,
36973 by default (N-ati, N-tk). ``oif:///path/to/NinjaTrader 8`` is the file interface: order
instruction files go to ``<path>/incoming`` and NinjaTrader's answers are read from
``<path>/outgoing`` (options ``incoming``/``outgoing`` override either folder, e.g. a share).
NinjaTrader has no login on either route: ``username``/``secret`` are ignored.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..base import SessionConfig

DEFAULT_PORT = 36973


class Route(str, enum.Enum):
    ATI = "ati"
    OIF = "oif"


def _seconds(options: dict[str, Any], name: str, default: float, low: float = 0.001, high: float = 3600) -> float:
    value = float(options.get(name, default))
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"ninjatrader: {name} must be between {low} and {high} seconds, got {value}")
    return value


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

    @property
    def address(self) -> str:
        if self.route is Route.ATI:
            return f"ati://{self.host}:{self.port}"
        return f"oif://{self.incoming} -> {self.outgoing}"

    @classmethod
    def from_session(cls, session: SessionConfig) -> NtConfig:
        options = dict(session.options)
        if not session.accounts:
            raise ValueError("ninjatrader: at least one account is required")
        for name in session.accounts.values():
            if not name or any(c in name for c in ";|\x00\r\n") or not name.isascii():
                raise ValueError(f"ninjatrader: account name {name!r} cannot travel in an ATI line")
        text = (session.endpoint or "").strip()
        if not text:
            raise ValueError("ninjatrader: endpoint is required (ati://host:port or oif:///path/to/NinjaTrader 8)")
        exchange = str(options.get("exchange_name", "Globex"))
        base = cls(
            Route.ATI,
            dict(session.accounts),
            request_timeout_s=_seconds(options, "request_timeout_s", 10.0),
            lookup_settle_s=_seconds(options, "lookup_settle_s", 0.5, low=0),
            poll_s=_seconds(options, "poll_s", 0.02),
            reconnect_min_s=_seconds(options, "reconnect_min_s", 0.5),
            reconnect_max_s=_seconds(options, "reconnect_max_s", 10.0),
            connect_timeout_s=_seconds(options, "connect_timeout_s", 10.0),
            exchange_name=exchange,
        )
        if text.startswith("oif:"):
            parts = urlsplit(text)
            root = Path(unquote(parts.netloc + parts.path)) if (parts.netloc or parts.path) else None
            incoming = options.get("incoming") or (root / "incoming" if root else None)
            outgoing = options.get("outgoing") or (root / "outgoing" if root else None)
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
