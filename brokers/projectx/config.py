"""ProjectX session settings, read once from ``SessionConfig`` so the adapter never digs in dicts.

``endpoint`` is the REST root (the hook that points the adapter at the simulator); the hub URL
is derived from it the way the gateway's hosts pair up (``api.X`` ↔ ``rtc.X``,
``gateway-api-demo`` ↔ ``gateway-rtc-demo``) unless ``options["hub_url"]`` says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from ..base import SessionConfig
from ..options import read_options
from ..warm_http import WARM_EVERY_S
from . import schemas as px
from .options import ProjectXOptions

DEFAULT_ENDPOINT = "https://api.topstepx.com"


def derive_hub_url(endpoint: str) -> str:
    parts = urlsplit(endpoint.rstrip("/"))
    host = parts.netloc
    if host.startswith("api."):
        host = "rtc." + host[4:]
    elif host.startswith("gateway-api-"):
        host = "gateway-rtc-" + host[len("gateway-api-") :]
    return urlunsplit((parts.scheme, host, px.USER_HUB_PATH, "", ""))


@dataclass(frozen=True, slots=True)
class ProjectXConfig:
    base_url: str
    hub_url: str
    username: str
    api_key: str
    accounts: dict[str, str]  # our account id → ProjectX account name
    negotiate: bool = False  # POST /negotiate first (signalrcore style) or skip it
    request_timeout_s: float = 10.0
    token_lifetime_s: float = 86400.0  # used when the token carries no readable ``exp``
    token_refresh_margin_s: float = 600.0
    rate_limit: tuple[int, float] = px.DEFAULT_LIMIT
    budget_slack_s: float = 0.25  # added to each budget window (grant precedes arrival)
    max_429_retries: int = 6
    max_login_attempts: int = 5  # loginKey tries (with backoff) before giving up
    backoff_429_s: float = 0.5
    reconnect_min_s: float = 0.05
    reconnect_max_s: float = 5.0
    keepalive_s: float = 15.0
    server_timeout_s: float = 30.0
    warm_every_s: float = WARM_EVERY_S  # idle REST session → one account search (brokers/warm_http.py)
    order_lookback_h: float = 24.0  # how far back Order/search looks for a tag (lookup, reconcile)
    live: bool = False  # Contract/search ``live`` flag (sim vs live data)
    # Our account ids whose ProjectX account is in Position Brackets mode: bracketed places are
    # refused here with a clear reason instead of by the gateway (which needs Auto OCO Brackets).
    position_bracket_accounts: frozenset[str] = frozenset()

    @classmethod
    def from_session(cls, session: SessionConfig) -> ProjectXConfig:
        options = session.options
        base = (session.endpoint or DEFAULT_ENDPOINT).rstrip("/")
        if "://" not in base:
            base = "http://" + base
        if not session.username or not session.secret:
            raise ValueError("ProjectX needs username (userName) and secret (apiKey)")
        o = read_options(ProjectXOptions, options)
        return cls(
            base_url=base,
            hub_url=o.hub_url or derive_hub_url(base),
            username=session.username,
            api_key=session.secret,
            accounts=dict(session.accounts),
            negotiate=o.negotiate,
            request_timeout_s=o.request_timeout_s,
            token_lifetime_s=o.token_lifetime_s,
            token_refresh_margin_s=o.token_refresh_margin_s,
            rate_limit=o.rate_limit,
            budget_slack_s=o.budget_slack_s,
            max_429_retries=o.max_429_retries,
            max_login_attempts=o.max_login_attempts,
            backoff_429_s=o.backoff_429_s,
            reconnect_min_s=o.reconnect_min_s,
            reconnect_max_s=o.reconnect_max_s,
            keepalive_s=o.keepalive_s,
            server_timeout_s=o.server_timeout_s,
            warm_every_s=o.warm_every_s,
            order_lookback_h=o.order_lookback_h,
            live=o.live,
            position_bracket_accounts=frozenset(o.position_bracket_accounts),
        )
