"""The simulator's FEED service: per-channel format and fields, subscriptions, event building.

Prices come from the shared kernel's deterministic :class:`PricePath`, so the same seed gives
the same quotes and trades in every run; tick sizes come from ``brokers/instruments.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from ...instruments import instrument_for
from ...simkernel.pricepath import PricePath
from .. import protocol as p

#: The fields the simulator can fill, per event type, in the order it sends them by default.
SUPPORTED_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "Quote": (
        "eventType",
        "eventSymbol",
        "eventTime",
        "sequence",
        "bidTime",
        "bidPrice",
        "bidSize",
        "askTime",
        "askPrice",
        "askSize",
    ),
    "Trade": ("eventType", "eventSymbol", "eventTime", "time", "sequence", "price", "size", "dayVolume"),
}
_DXFEED_SYMBOL = re.compile(r"^/?(?P<code>[A-Z0-9]+?)(?::(?P<mic>[A-Z]{4}))?$")


def kernel_symbol(symbol: str) -> str | None:
    """``/ESZ26:XCME`` → ``ESZ26`` (the kernel's form); ``None`` for a symbol we do not list."""
    match = _DXFEED_SYMBOL.match(symbol)
    if not match:
        return None
    try:
        instrument_for(match["code"])
    except (KeyError, ValueError):
        return None
    return match["code"]


@dataclass
class FeedChannel:
    """One FEED channel of one connection: what the client accepted and subscribed."""

    channel: int
    data_format: p.DataFormat = "FULL"
    event_fields: dict[str, list[str]] = field(
        default_factory=lambda: {k: list(v) for k, v in SUPPORTED_FIELDS.items()}
    )
    aggregation_s: float = 0.0
    configured: bool = False
    subscriptions: set[tuple[str, str]] = field(default_factory=set)

    def setup(self, message: p.FeedSetup) -> p.FeedConfig:
        """Apply FEED_SETUP; the answer says what will really be sent (unknown fields dropped)."""
        if message.acceptDataFormat is not None:
            self.data_format = message.acceptDataFormat
        for kind, wanted in (message.acceptEventFields or {}).items():
            if kind in SUPPORTED_FIELDS:
                self.event_fields[kind] = [name for name in wanted if name in SUPPORTED_FIELDS[kind]]
        self.configured = True
        return self.config()

    def config(self) -> p.FeedConfig:
        # No aggregation: every tick is sent, so the real period is 0 whatever was asked.
        return p.FeedConfig(
            channel=self.channel,
            dataFormat=self.data_format,
            aggregationPeriod=self.aggregation_s,
            eventFields={k: list(v) for k, v in self.event_fields.items()},
        )

    def subscribe(self, message: p.FeedSubscription) -> list[tuple[str, str]]:
        """Apply reset, then remove, then add; return the newly added keys (for snapshots)."""
        if message.reset:
            self.subscriptions.clear()
        for item in message.remove or ():
            self.subscriptions.discard(item.key)
        added = [item.key for item in message.add or () if item.key not in self.subscriptions]
        self.subscriptions.update(added)
        return added

    def frames(self, events: list[dict[str, Any]]) -> list[p.FeedData]:
        """FEED_DATA for the subscribed events: one event type per message (JS 0.3.0 reads only one)."""
        by_type: dict[str, list[dict[str, Any]]] = {}
        for event in events:
            if (event["eventType"], event["eventSymbol"]) in self.subscriptions:
                by_type.setdefault(event["eventType"], []).append(event)
        frames = []
        for kind, batch in by_type.items():
            fields = self.event_fields[kind]
            if self.data_format == "FULL":
                data: list[Any] = [{name: event[name] for name in fields} for event in batch]
            else:
                data = [kind, [event[name] for event in batch for name in fields]]
            frames.append(p.FeedData(channel=self.channel, data=data))
        return frames


class MarketData:
    """Quote and Trade events from a deterministic price path, shared by every connection."""

    def __init__(self, path: PricePath, clock_ms: Any) -> None:
        self.path = path
        self._clock_ms = clock_ms
        self._sequence = 0
        self._volume: dict[str, int] = {}

    def events(self, symbol: str) -> list[dict[str, Any]]:
        """The current Quote and last Trade of ``symbol`` (a snapshot, nothing moves)."""
        code = kernel_symbol(symbol)
        if code is None:
            return []
        tick = instrument_for(code).tick_size
        price = self.path.price(code)
        now = int(self._clock_ms())
        self._sequence += 1
        size = 1 + self._sequence % 5
        quote = {
            "eventType": "Quote",
            "eventSymbol": symbol,
            "eventTime": 0,
            "sequence": self._sequence,
            "bidTime": now,
            "bidPrice": _wire(price - tick),
            "bidSize": 10 + self._sequence % 7,
            "askTime": now,
            "askPrice": _wire(price + tick),
            "askSize": 10 + self._sequence % 11,
        }
        trade = {
            "eventType": "Trade",
            "eventSymbol": symbol,
            "eventTime": 0,
            "time": now,
            "sequence": self._sequence,
            "price": _wire(price),
            "size": size,
            "dayVolume": self._volume.get(code, 0),
        }
        return [quote, trade]

    def step(self, symbols: set[str]) -> list[dict[str, Any]]:
        """Move each listed instrument one step and return its new Quote and Trade."""
        moved: set[str] = set()
        events: list[dict[str, Any]] = []
        for symbol in sorted(symbols):
            code = kernel_symbol(symbol)
            if code is None:
                continue
            if code not in moved:
                self.path.step(code)
                moved.add(code)
                self._volume[code] = self._volume.get(code, 0) + 1
            events.extend(self.events(symbol))
        return events


def _wire(price: Decimal) -> float:
    """dxLink prices are JSON doubles; tick multiples survive the float round trip via repr."""
    return float(price)
