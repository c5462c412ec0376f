"""DTC session settings (``brokers/options.py`` says why a schema): names as the config file
and the dashboard give them, bounds with their reason."""

from __future__ import annotations

from typing import Annotated

import msgspec

from ..options import Name, PlatformOptions, RetryDelay, Timeout, ordered
from .enums import Encoding, TradeMode

#: The spellings ``encoding`` and ``trade_mode`` take, in any case.
ENCODINGS = {"binary": Encoding.BINARY, "json": Encoding.JSON}
TRADE_MODES = {"demo": TradeMode.DEMO, "sim": TradeMode.SIMULATED, "live": TradeMode.LIVE}

#: HeartbeatIntervalInSeconds: 0 would switch heartbeats off; more than five minutes lets a
#: dead link pass for alive that long (DTCSharp documents 5-60 s).
Heartbeat = Annotated[int, msgspec.Meta(ge=1, le=300)]
#: Multiplies our own heartbeat clock (tests; the wire keeps ``heartbeat_s``): near 0 beats in
#: a loop, above 1 beats slower than we told the server and it drops us.
TimeScale = Annotated[float, msgspec.Meta(ge=0.01, le=1.0)]
#: HISTORICAL_ORDER_FILLS_REQUEST NumberOfDays (lookup, resync): 0 asks for nothing; over a
#: year makes every lookup and resync a large answer.
FillDays = Annotated[int, msgspec.Meta(ge=1, le=365)]
#: The binary logon's ClientName holds 31 bytes and a NUL: longer fails every logon.
ClientName = Annotated[str, msgspec.Meta(max_length=31, pattern=r"^[ -~]*$")]


class DtcOptions(PlatformOptions, frozen=True):
    encoding: Name = "binary"  # binary or json (any case)
    trade_mode: Name = "live"  # demo, sim or live (any case)
    heartbeat_s: Heartbeat = 10
    client_name: ClientName = "CopyTrader"
    handshake_timeout_s: Timeout = 30.0  # DTCSharp waits 30 s for each of the two replies
    heartbeat_time_scale: TimeScale = 1.0
    request_timeout_s: Timeout = 10.0  # how long a request waits for its ORDER_UPDATE / response
    reconnect_min_s: RetryDelay = 0.5
    reconnect_max_s: RetryDelay = 30.0
    fill_history_days: FillDays = 1

    def __post_init__(self) -> None:
        if self.encoding.lower() not in ENCODINGS:
            raise ValueError(f"encoding: must be one of {sorted(ENCODINGS)}, got {self.encoding.lower()!r}")
        if self.trade_mode.lower() not in TRADE_MODES:
            raise ValueError(f"trade_mode: must be one of {sorted(TRADE_MODES)}, got {self.trade_mode.lower()!r}")
        ordered(self.reconnect_min_s, self.reconnect_max_s, "reconnect_min_s", "reconnect_max_s")
