"""ProjectX session settings (``brokers/options.py`` says why a schema)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from ..options import Attempts, Name, PlatformOptions, RateLimit, RetryDelay, Timeout, Url, WarmEvery, ordered
from ..warm_http import WARM_EVERY_S
from . import schemas as px

#: A token whose ``exp`` cannot be read is trusted this long: a minute to a day (the gateway's).
TokenLifetime = Annotated[float, msgspec.Meta(ge=60.0, le=86400.0)]
#: Renew this long before the token expires: at least 10 s, at most half a day.
RefreshMargin = Annotated[float, msgspec.Meta(ge=10.0, le=43200.0)]
#: SignalR keep-alive and server timeout: the client pings every ``keepalive_s`` and presumes
#: the hub dead after ``server_timeout_s`` of silence (SignalR's defaults: 15 and 30 s).
KeepAlive = Annotated[float, msgspec.Meta(ge=0.05, le=300.0)]  # under 50 ms: a flood of pings
#: How far back ``Order/search`` looks for our tag: an hour to a week.
Lookback = Annotated[float, msgspec.Meta(ge=1.0, le=168.0)]
Slack = Annotated[float, msgspec.Meta(ge=0.0, le=10.0)]
Retries = Annotated[int, msgspec.Meta(ge=0, le=100)]


class ProjectXOptions(PlatformOptions, frozen=True):
    hub_url: Url | None = None  # default: derived from the REST root
    negotiate: bool = False
    request_timeout_s: Timeout = 10.0
    token_lifetime_s: TokenLifetime = 86400.0
    token_refresh_margin_s: RefreshMargin = 600.0
    rate_limit: RateLimit = px.DEFAULT_LIMIT
    budget_slack_s: Slack = 0.25
    max_429_retries: Retries = 6
    max_login_attempts: Attempts = 5
    backoff_429_s: RetryDelay = 0.5
    reconnect_min_s: RetryDelay = 0.05
    reconnect_max_s: RetryDelay = 5.0
    keepalive_s: KeepAlive = 15.0
    server_timeout_s: KeepAlive = 30.0
    warm_every_s: WarmEvery = WARM_EVERY_S
    order_lookback_h: Lookback = 24.0
    live: bool = False
    position_bracket_accounts: Annotated[list[Name], msgspec.Meta(max_length=256)] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        ordered(self.reconnect_min_s, self.reconnect_max_s, "reconnect_min_s", "reconnect_max_s")
        if self.server_timeout_s <= self.keepalive_s:
            raise ValueError(f"server_timeout_s: must be longer than keepalive_s ({self.keepalive_s:g})")
