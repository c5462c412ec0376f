"""DTC session settings, read once from ``SessionConfig`` so the adapter never digs in dicts.

``endpoint`` is where the DTC server listens: ``dtc://host:port`` (what our simulator's
``base_url`` says), ``tcp://host:port`` or plain ``host:port``. Sierra Chart's listening port
is set in its server settings; 11099 is the value public clients use, so it is the default.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from ..base import SessionConfig
from ..options import read_options
from .options import ENCODINGS, TRADE_MODES, DtcOptions
from .transport import DtcEndpoint

DEFAULT_PORT = 11099


def parse_endpoint(endpoint: str | None) -> tuple[str, int]:
    """``dtc://h:p``, ``tcp://h:p`` or ``h:p`` → (host, port); the port defaults to 11099."""
    if not endpoint:
        raise ValueError("dtc: endpoint (the DTC server's host:port) is required")
    text = endpoint.strip()
    parts = urlsplit(text if "://" in text else f"dtc://{text}")
    if parts.scheme not in ("dtc", "tcp") or not parts.hostname:
        raise ValueError(f"dtc: endpoint must be dtc://host:port, tcp://host:port or host:port, got {endpoint!r}")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ValueError(f"dtc: bad port in endpoint {endpoint!r}") from None
    return parts.hostname, port


@dataclass(frozen=True, slots=True)
class DtcConfig:
    endpoint: DtcEndpoint
    accounts: dict[str, str]  # our account id → DTC TradeAccount
    request_timeout_s: float = 10.0  # how long a request waits for its ORDER_UPDATE / response
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    fill_history_days: int = 1  # HISTORICAL_ORDER_FILLS_REQUEST NumberOfDays (lookup, resync)

    @property
    def address(self) -> str:
        return f"{self.endpoint.host}:{self.endpoint.port}"

    @classmethod
    def from_session(cls, session: SessionConfig) -> DtcConfig:
        host, port = parse_endpoint(session.endpoint)
        if not session.username or session.secret is None:
            raise ValueError("dtc: username and secret (the DTC server's password) are required")
        o = read_options(DtcOptions, session.options)
        endpoint = DtcEndpoint(
            host=host,
            port=port,
            username=session.username,
            password=session.secret,
            encoding=ENCODINGS[o.encoding.lower()],
            heartbeat_s=o.heartbeat_s,
            client_name=o.client_name,
            trade_mode=TRADE_MODES[o.trade_mode.lower()],
            handshake_timeout_s=o.handshake_timeout_s,
            time_scale=o.heartbeat_time_scale,
        )
        return cls(
            endpoint=endpoint,
            accounts=dict(session.accounts),
            request_timeout_s=o.request_timeout_s,
            reconnect_min_s=o.reconnect_min_s,
            reconnect_max_s=o.reconnect_max_s,
            fill_history_days=o.fill_history_days,
        )
