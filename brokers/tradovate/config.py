"""Settings of one Tradovate session, read from SessionConfig.

``SessionConfig.endpoint`` overrides the REST base URL (``http://127.0.0.1:PORT/v1`` points
the adapter at the simulator); the WebSocket URL is derived from it (``/v1/websocket`` on
the same host) unless ``options["ws_url"]`` says otherwise. Token lifetime differs between
Tradovate's own pages (90 vs 80 minutes), so the renewal margin is a setting, not a constant.

Credentials are sent in the real server's shapes: ``cid`` an integer, ``sec`` and ``deviceId``
UUIDs. Without a configured ``deviceId`` the adapter derives a stable UUID from the user name, so
a restart presents the same device (a new device id per start looks like a new machine).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from ..base import SessionConfig
from ..options import read_options
from ..warm_http import WARM_EVERY_S
from .options import TradovateOptions

DEMO_REST = "https://demo.tradovateapi.com/v1"
LIVE_REST = "https://live.tradovateapi.com/v1"

#: Partner docs: 1,000/s, 5,000/min, 5,000/h on general endpoints. We stay under them.
DEFAULT_LIMITS: tuple[tuple[int, float], ...] = ((1000, 1.0), (5000, 60.0), (5000, 3600.0))


#: Our own cap on token requests per session (docs: 10/min for authentication, shared by every
#: caller on the same IP): each one opens a session and may close the user's oldest.
LOGIN_BUDGET: tuple[int, float] = (3, 60.0)


def device_id_for(name: str) -> str:
    """A stable UUID per user name: the device a real client would keep in its storage."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"copytrader:tradovate-device:{name}"))


def ws_url_for(rest_url: str) -> str:
    """``https://host/v1`` → ``wss://host/v1/websocket`` (``http`` → ``ws``)."""
    parts = urlsplit(rest_url.rstrip("/"))
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path + "/websocket", "", ""))


@dataclass(frozen=True, slots=True)
class TradovateConfig:
    rest_url: str
    ws_url: str
    name: str
    password: str = field(repr=False)
    app_id: str = "CopyTrader"
    app_version: str = "1.0"
    cid: int = 0
    sec: str = field(default="", repr=False)
    device_id: str = ""
    renew_margin_s: float = 15 * 60.0  # renew this long before expirationTime
    heartbeat_s: float = 2.5  # client '[]' cadence (docs: every 2.5 s)
    request_timeout_s: float = 10.0
    max_attempts: int = 4  # transport attempts per request (reads, or surely unsent)
    max_penalties: int = 5  # penalty tickets waited out per request before giving up
    login_budget: tuple[int, float] = LOGIN_BUDGET
    reconnect_initial_s: float = 0.2
    reconnect_max_s: float = 30.0
    stale_after_s: float = 10.0  # no server frame this long → socket presumed dead
    limits: tuple[tuple[int, float], ...] = DEFAULT_LIMITS
    warm_every_s: float = WARM_EVERY_S  # idle REST session → one auth/me (brokers/warm_http.py)

    @classmethod
    def from_session(cls, config: SessionConfig) -> TradovateConfig:
        o = read_options(TradovateOptions, config.options)
        rest = (config.endpoint or (LIVE_REST if o.live else DEMO_REST)).rstrip("/")
        return cls(
            rest_url=rest,
            ws_url=o.ws_url or ws_url_for(rest),
            name=config.username or "",
            password=config.secret or "",
            app_id=_first(o.appId, o.app_id, "CopyTrader"),
            app_version=_first(o.appVersion, o.app_version, "1.0"),
            cid=o.cid,
            sec=o.sec,
            device_id=_first(o.deviceId, o.device_id, "") or device_id_for(config.username or ""),
            renew_margin_s=o.renew_margin_s,
            heartbeat_s=o.heartbeat_s,
            request_timeout_s=o.request_timeout_s,
            max_attempts=o.max_attempts,
            max_penalties=o.max_penalties,
            login_budget=o.login_budget,
            reconnect_initial_s=o.reconnect_initial_s,
            reconnect_max_s=o.reconnect_max_s,
            stale_after_s=o.stale_after_s,
            limits=tuple(o.rate_limits) if o.rate_limits else DEFAULT_LIMITS,
            warm_every_s=o.warm_every_s,
        )


def _first(tradovate_spelling: str | None, ours: str | None, default: str) -> str:
    """Tradovate spells ``appId``; the config's other names are snake case: either is taken."""
    return tradovate_spelling if tradovate_spelling is not None else ours if ours is not None else default
