"""Settings of one Tradovate session, read from SessionConfig.

``SessionConfig.endpoint`` overrides the REST base URL (``http://127.0.0.1:PORT/v1`` points
the adapter at the simulator); the WebSocket URL is derived from it (``/v1/websocket`` on
the same host) unless ``options["ws_url"]`` says otherwise. Token lifetime differs between
Tradovate's own pages (90 vs 80 minutes), so the renewal margin is a setting, not a constant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from ..base import SessionConfig

DEMO_REST = "https://demo.tradovateapi.com/v1"
LIVE_REST = "https://live.tradovateapi.com/v1"

#: Partner docs: 1,000/s, 5,000/min, 5,000/h on general endpoints. We stay under them.
DEFAULT_LIMITS: tuple[tuple[int, float], ...] = ((1000, 1.0), (5000, 60.0), (5000, 3600.0))


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
    device_id: str = "copytrader"
    renew_margin_s: float = 15 * 60.0      # renew this long before expirationTime
    heartbeat_s: float = 2.5               # client '[]' cadence (docs: every 2.5 s)
    request_timeout_s: float = 10.0
    max_attempts: int = 4                  # per command, across 401/penalty/transport retries
    reconnect_initial_s: float = 0.2
    reconnect_max_s: float = 30.0
    stale_after_s: float = 10.0            # no server frame this long → socket presumed dead
    limits: tuple[tuple[int, float], ...] = DEFAULT_LIMITS

    @classmethod
    def from_session(cls, config: SessionConfig) -> "TradovateConfig":
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
            cid=options.get("cid", 0),
            sec=str(options.get("sec", "")),
            device_id=str(options.get("deviceId", options.get("device_id", "copytrader"))),
            renew_margin_s=float(options.get("renew_margin_s", 15 * 60.0)),
            heartbeat_s=float(options.get("heartbeat_s", 2.5)),
            request_timeout_s=float(options.get("request_timeout_s", 10.0)),
            max_attempts=int(options.get("max_attempts", 4)),
            reconnect_initial_s=float(options.get("reconnect_initial_s", 0.2)),
            reconnect_max_s=float(options.get("reconnect_max_s", 30.0)),
            stale_after_s=float(options.get("stale_after_s", 10.0)),
            limits=tuple(tuple(x) for x in limits) if limits else DEFAULT_LIMITS,  # type: ignore[misc]  # (int, float) pairs from YAML
        )
