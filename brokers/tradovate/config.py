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
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..base import SessionConfig
from ..warm_http import WARM_EVERY_S, warm_every_s

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


def _cid(value: Any) -> int | str:
    """``cid`` is an integer on the wire; YAML may hand it over as text."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value  # type: ignore[no-any-return]  # already an int, or a mistake the server will refuse


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
    cid: int | str = 0
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
        options = config.options
        live = bool(options.get("live", False))
        rest = (config.endpoint or (LIVE_REST if live else DEMO_REST)).rstrip("/")
        limits = options.get("rate_limits")
        return cls(
            rest_url=rest,
            ws_url=str(options.get("ws_url") or ws_url_for(rest)),
            name=config.username or "",
            password=config.secret or "",
            app_id=str(options.get("appId", options.get("app_id", "CopyTrader"))),
            app_version=str(options.get("appVersion", options.get("app_version", "1.0"))),
            cid=_cid(options.get("cid", 0)),
            sec=str(options.get("sec", "")),
            device_id=str(options.get("deviceId") or options.get("device_id") or device_id_for(config.username or "")),
            renew_margin_s=float(options.get("renew_margin_s", 15 * 60.0)),
            heartbeat_s=float(options.get("heartbeat_s", 2.5)),
            request_timeout_s=float(options.get("request_timeout_s", 10.0)),
            max_attempts=int(options.get("max_attempts", 4)),
            max_penalties=int(options.get("max_penalties", 5)),
            login_budget=(
                int(options.get("login_budget", LOGIN_BUDGET)[0]),
                float(options.get("login_budget", LOGIN_BUDGET)[1]),
            ),
            reconnect_initial_s=float(options.get("reconnect_initial_s", 0.2)),
            reconnect_max_s=float(options.get("reconnect_max_s", 30.0)),
            stale_after_s=float(options.get("stale_after_s", 10.0)),
            limits=tuple(tuple(x) for x in limits) if limits else DEFAULT_LIMITS,
            warm_every_s=warm_every_s(options),
        )
