"""TradingView alerts: per-copy-group URLs with a long random token, and the signals they make.

TradingView cannot sign a request, so the secret is the URL itself:
``/hooks/tradingview/<group>/<token>``. The token is 256 random bits (``secrets``), shown once
when it is made and kept nowhere: every web worker knows only its SHA-256 digest, replayed
from ``copy.controls`` (``AlertTokenCommand``), and compares digests in constant time
(:func:`hmac.compare_digest`) against every live token of the group, so neither a digest lookup
nor an early exit says how close a guess came.

Each token has its own rate window (per web worker: a token that floods one worker is refused
there; TradingView sends from a handful of addresses, so a shared window would buy little).
A refused request (unknown, revoked, over its rate, malformed) is never copied.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field

from ..brokers.instruments import instrument_for
from ..common.ratewindow import SlidingWindow
from ..core.control_records import AlertTokenCommand
from ..core.records import TradeSignal
from ..core.schemas.tradingview import TradingViewAlertIn

#: How a token is made: 32 random bytes, URL-safe (43 characters).
TOKEN_BYTES = 32


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str, str]:
    """(token id, token, digest): the id names it in lists and revocations, the token opens it."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return f"tv-{secrets.token_hex(6)}", token, digest_of(token)


class AlertRefused(Exception):
    """Why an alert was refused, with the HTTP status it is answered with."""

    def __init__(self, status: int, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s


@dataclass(slots=True)
class AlertToken:
    token_id: str
    group_id: str
    digest: str
    revoked: bool
    label: str
    ticker_map: dict[str, str]
    per_minute: int
    created_by: str
    created_at: float
    window: SlidingWindow = field(repr=False)

    def public(self) -> dict[str, object]:
        """What the dashboard lists: never the token, never its digest."""
        return {
            "token_id": self.token_id,
            "group_id": self.group_id,
            "label": self.label,
            "revoked": self.revoked,
            "ticker_map": dict(self.ticker_map),
            "per_minute": self.per_minute,
            "created_by": self.created_by,
            "created_at": self.created_at,
        }


class AlertTokens:
    """The tokens every web worker knows, as replayed from ``copy.controls``."""

    def __init__(self) -> None:
        self._tokens: dict[str, AlertToken] = {}

    def apply(self, command: AlertTokenCommand) -> None:
        known = self._tokens.get(command.token_id)
        if known is not None and known.digest != command.digest:
            return  # a token id is never re-pointed at another token
        if known is not None:
            known.revoked = known.revoked or command.revoked  # revoked stays revoked
            known.label, known.ticker_map = command.label, dict(command.ticker_map)
            if known.per_minute != command.per_minute:
                known.per_minute = command.per_minute
                known.window = SlidingWindow(command.per_minute, 60.0)
            return
        self._tokens[command.token_id] = AlertToken(
            token_id=command.token_id,
            group_id=command.group_id,
            digest=command.digest,
            revoked=command.revoked,
            label=command.label,
            ticker_map=dict(command.ticker_map),
            per_minute=command.per_minute,
            created_by=command.by,
            created_at=command.at,
            window=SlidingWindow(command.per_minute, 60.0),
        )

    def get(self, token_id: str) -> AlertToken | None:
        return self._tokens.get(token_id)

    def of_group(self, group_id: str) -> list[AlertToken]:
        return sorted((t for t in self._tokens.values() if t.group_id == group_id), key=lambda t: t.created_at)

    def admit(self, group_id: str, token: str) -> AlertToken:
        """The live token of ``group_id`` that ``token`` opens, with room in its window."""
        offered = digest_of(token).encode()
        match: AlertToken | None = None
        for candidate in self.of_group(group_id):
            # Every candidate is compared (no early exit): the time taken says nothing.
            if hmac.compare_digest(candidate.digest.encode(), offered):
                match = candidate
        if match is None or match.revoked:
            raise AlertRefused(401, "unknown or revoked alert token")
        now = time.monotonic()
        if not match.window.admit(now):
            raise AlertRefused(429, "alert rate exceeded", retry_after_s=max(0.0, match.window.wait(now)))
        return match


def alert_signal(
    token: AlertToken, leader_account: str, alert: TradingViewAlertIn, body: bytes, now: float
) -> TradeSignal:
    """The leader signal an alert stands for. ``ValueError`` names the field it cannot use.

    The signal id is derived from the alert's ``id`` and ``time`` placeholders when the template
    has them, so a repeated delivery of one alert is the same signal (and its copies are found,
    not placed again); without them, from the body and the second it arrived.
    """
    symbol = token.ticker_map.get(alert.ticker, alert.ticker)
    try:
        instrument_for(symbol)
    except (KeyError, ValueError):
        raise ValueError(f"ticker: {alert.ticker!r} is no symbol we trade; map it when making the token") from None
    quantity = alert.quantity()
    price = alert.limit_or_stop_price()
    if alert.id or alert.time:
        basis = f"{alert.id}|{alert.time}|{alert.action}|{alert.ticker}".encode()
    else:
        basis = body + f"|{int(now)}".encode()
    ident = hashlib.sha256(basis).hexdigest()[:20]
    flatten = alert.action in ("flatten", "exit")
    return TradeSignal(
        signal_id=f"tv:{token.group_id}:{ident}",
        leader_account=leader_account,
        platform="tradingview",
        kind="flatten" if flatten else "new",
        symbol=symbol,
        side="sell" if alert.action == "sell" else "buy",
        quantity=quantity,
        order_type="market" if flatten else alert.order_type,
        limit_price=price if alert.order_type == "limit" else None,
        stop_price=price if alert.order_type == "stop" else None,
        leader_order_id=alert.id or ident,
        source="tradingview",
        stamps={"detected": now, "published": now},
    )
