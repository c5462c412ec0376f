"""Paper session settings (``brokers/options.py`` says why a schema)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec

from ..options import Name, PlatformOptions, check_balance

#: Simulated broker latency in ms: a number, or ``"fixed+tail"`` (``"50+20"``: 50 ms plus a
#: 20 ms-scale log-normal tail, ``brokers/simkernel/latency.py``); a minute at most.
LatencyMs = Annotated[float, msgspec.Meta(ge=0.0, le=60_000.0)]
LatencySpec = Annotated[str, msgspec.Meta(max_length=32, pattern=r"^\d{1,5}(\.\d{1,3})?(\+\d{1,5}(\.\d{1,3})?)?$")]
#: The market clock's step: 0 stops it (tests move prices by hand); over a minute is no market.
TickMs = Annotated[float, msgspec.Meta(ge=0.0, le=60_000.0)]


class PaperOptions(PlatformOptions, frozen=True):
    venue: Name = "paper"  # accounts on one venue share its market and its books
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)] = 7
    tick_ms: TickMs = 100.0
    latency: LatencyMs | LatencySpec = 0.0
    balance: Decimal = Decimal(50000)
    partial_fill_lot: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] | None = None

    def __post_init__(self) -> None:
        check_balance(self.balance)
