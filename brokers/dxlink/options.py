"""dxLink session settings (``brokers/options.py`` says why a schema): names as the config file
and the dashboard give them, bounds with their reason."""

from __future__ import annotations

from typing import Annotated

import msgspec

from ...common.bounds import MAX_SYMBOL_LEN
from ..options import PlatformOptions, RetryDelay, Timeout, ordered
from .protocol import DataFormat

#: dxFeed symbols: futures ``/ESZ26:XCME``, equities ``AAPL``, indices ``$SPX``, options
#: ``.AAPL…`` (the config's ``market_data.symbols`` takes the same).
FeedSymbol = Annotated[
    str, msgspec.Meta(min_length=1, max_length=MAX_SYMBOL_LEN * 2, pattern=r"^[A-Za-z0-9/.$][A-Za-z0-9._:/$=-]*$")
]

#: Symbols subscribed on connect: each is a FEED subscription, and a thousand is already far
#: more than a copier prices.
MAX_SYMBOLS = 1000


class DxLinkOptions(PlatformOptions, frozen=True):
    symbols: Annotated[list[FeedSymbol], msgspec.Meta(max_length=MAX_SYMBOLS)] = msgspec.field(default_factory=list)
    data_format: DataFormat = "COMPACT"  # the FEED channel's acceptDataFormat
    connect_timeout_s: Timeout = 10.0
    reconnect_min_s: RetryDelay = 0.2
    reconnect_max_s: RetryDelay = 10.0

    def __post_init__(self) -> None:
        ordered(self.reconnect_min_s, self.reconnect_max_s, "reconnect_min_s", "reconnect_max_s")
