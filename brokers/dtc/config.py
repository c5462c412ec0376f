"""DTC session settings, read once from ``SessionConfig`` so the adapter never digs in dicts.

``endpoint`` is where the DTC server listens: ``dtc://host:port`` (what our simulator's
``base_url`` says), ``tcp://host:port`` or plain ``host:port``. Sierra Chart's listening port
is set in its server settings; 11099 is the value public clients use, so it is the default.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from ..base import SessionConfig
from .messages import Encoding, TradeMode
from .transport import DtcEndpoint

DEFAULT_PORT = 11099
ENCODINGS = {"binary": Encoding.BINARY, "json": Encoding.JSON}
TRADE_MODES = {"demo": TradeMode.DEMO, "sim": TradeMode.SIMULATED, "live": TradeMode.LIVE}


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
        options = session.options
        host, port = parse_endpoint(session.endpoint)
        if not session.username or session.secret is None:
            raise ValueError("dtc: username and secret (the DTC server's password) are required")
        encoding_name = str(options.get("encoding", "binary")).lower()
        if encoding_name not in ENCODINGS:
            raise ValueError(f"dtc: encoding must be one of {sorted(ENCODINGS)}, got {encoding_name!r}")
        mode_name = str(options.get("trade_mode", "live")).lower()
        if mode_name not in TRADE_MODES:
            raise ValueError(f"dtc: trade_mode must be one of {sorted(TRADE_MODES)}, got {mode_name!r}")
        heartbeat_s = int(options.get("heartbeat_s", 10))
        if heartbeat_s < 1:
            raise ValueError("dtc: heartbeat_s must be at least 1 (0 would switch heartbeats off)")
        endpoint = DtcEndpoint(
            host=host,
            port=port,
            username=session.username,
            password=session.secret,
            encoding=ENCODINGS[encoding_name],
            heartbeat_s=heartbeat_s,
            client_name=str(options.get("client_name", "CopyTrader")),
            trade_mode=TRADE_MODES[mode_name],
            handshake_timeout_s=float(options.get("handshake_timeout_s", 30.0)),
            time_scale=float(options.get("heartbeat_time_scale", 1.0)),
        )
        return cls(
            endpoint=endpoint,
            accounts=dict(session.accounts),
            request_timeout_s=float(options.get("request_timeout_s", 10.0)),
            reconnect_min_s=float(options.get("reconnect_min_s", 0.5)),
            reconnect_max_s=float(options.get("reconnect_max_s", 30.0)),
            fill_history_days=int(options.get("fill_history_days", 1)),
        )
