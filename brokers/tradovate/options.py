"""Tradovate session settings (``brokers/options.py`` says why a schema): names as the
config file and the dashboard give them, bounds with their reason."""

from __future__ import annotations

from typing import Annotated

import msgspec

from ..options import Attempts, PlatformOptions, RateLimit, RetryDelay, Text, Timeout, Url, WarmEvery, ordered
from ..warm_http import WARM_EVERY_S

#: The docs ask for a heartbeat every 2.5 s; over 10 s risks the server closing the socket,
#: under 0.1 s is a flood of frames.
Heartbeat = Annotated[float, msgspec.Meta(ge=0.1, le=10.0)]
#: A socket silent this long is presumed dead: above a heartbeat, below five minutes.
StaleAfter = Annotated[float, msgspec.Meta(ge=0.2, le=300.0)]
#: Tokens live 80-90 minutes (the docs differ): renew at least a second and at most an hour
#: early (later than an hour's margin is a renewal at every check).
RenewMargin = Annotated[float, msgspec.Meta(ge=1.0, le=3600.0)]
#: Penalty tickets (HTTP 429 with ``p-ticket``) waited out per request: 0 gives up at the first.
Penalties = Annotated[int, msgspec.Meta(ge=0, le=100)]


class TradovateOptions(PlatformOptions, frozen=True):
    live: bool = False  # the live environment instead of demo (when no endpoint is given)
    ws_url: Url | None = None  # default: derived from the REST URL
    appId: Text | None = None  # noqa: N815 - Tradovate's own spelling, as its docs and sign-in body write it
    app_id: Text | None = None
    appVersion: Text | None = None  # noqa: N815
    app_version: Text | None = None
    cid: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)] = 0
    sec: Text = ""
    deviceId: Text | None = None  # noqa: N815
    device_id: Text | None = None
    renew_margin_s: RenewMargin = 15 * 60.0
    heartbeat_s: Heartbeat = 2.5
    request_timeout_s: Timeout = 10.0
    max_attempts: Attempts = 4
    max_penalties: Penalties = 5
    login_budget: RateLimit = (3, 60.0)
    reconnect_initial_s: RetryDelay = 0.2
    reconnect_max_s: RetryDelay = 30.0
    stale_after_s: StaleAfter = 10.0
    rate_limits: Annotated[list[RateLimit], msgspec.Meta(min_length=1, max_length=8)] | None = None
    warm_every_s: WarmEvery = WARM_EVERY_S

    def __post_init__(self) -> None:
        ordered(self.reconnect_initial_s, self.reconnect_max_s, "reconnect_initial_s", "reconnect_max_s")
        if self.stale_after_s <= self.heartbeat_s:
            raise ValueError(f"stale_after_s: must be longer than heartbeat_s ({self.heartbeat_s:g})")
