"""TradingView alert bodies and the alert-token records behind their URLs (issue #18 item 5).

TradingView cannot sign a request: its webhook sends the alert's message text as the body.
Traders write that message as JSON with TradingView's placeholders, and a placeholder always
expands to *text* (``"{{strategy.order.contracts}}"`` becomes ``"2"``), so numbers are accepted
as JSON numbers or as decimal strings, and both are held to the same bounds as every other
door (finite, positive, whole contracts).

The template the README gives::

    {"action": "{{strategy.order.action}}", "ticker": "{{ticker}}",
     "contracts": "{{strategy.order.contracts}}", "id": "{{strategy.order.id}}",
     "time": "{{timenow}}"}
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal

import msgspec

from ...common import bounds as b
from .controls import _Provenance
from .types import Id, Symbol, Text

#: TradingView's tickers: ``ES1!`` (continuous), ``CME_MINI:ESZ2026`` (exchange-prefixed).
TICKER_PATTERN = r"^[A-Za-z0-9_.:!/-]+$"
Ticker = Annotated[str, msgspec.Meta(min_length=1, max_length=b.MAX_SYMBOL_LEN * 2, pattern=TICKER_PATTERN)]
TickerMap = Annotated[dict[Ticker, Symbol], msgspec.Meta(max_length=b.MAX_SYMBOL_MAP)]
#: A number as TradingView's placeholders send it: JSON number or decimal text.
NumberText = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
Digest = Annotated[str, msgspec.Meta(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$")]
AlertAction = Literal["buy", "sell", "flatten", "exit"]
AlertOrderType = Literal["market", "limit", "stop"]


class TradingViewAlertIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """One alert as TradingView sends it. Unknown fields are ignored: traders paste templates
    with extra placeholders (``{{close}}``, ``{{interval}}``) that a copier has no use for."""

    action: AlertAction
    ticker: Ticker
    contracts: int | float | NumberText | None = None
    order_type: AlertOrderType = "market"
    price: int | float | NumberText | None = None
    id: Text = ""
    time: Text = ""

    def quantity(self) -> int:
        """Whole contracts, 1..MAX_QUANTITY; ``flatten``/``exit`` need none."""
        if self.action in ("flatten", "exit"):
            return 0
        if self.contracts is None:
            raise ValueError("contracts: required for buy and sell")
        value = _decimal(self.contracts, "contracts")
        if value != value.to_integral_value():
            raise ValueError("contracts: whole contracts only")
        if not 1 <= value <= b.MAX_QUANTITY:
            raise ValueError(f"contracts: expected 1..{b.MAX_QUANTITY}")
        return int(value)

    def limit_or_stop_price(self) -> Decimal | None:
        if self.order_type == "market":
            return None
        if self.price is None:
            raise ValueError(f"price: required for a {self.order_type} order")
        value = _decimal(self.price, "price")
        try:
            b.check_decimal(value, maximum=b.MAX_PRICE, what="price")
        except b.BoundError as exc:
            raise ValueError(f"price: {exc}") from None
        return value


def _decimal(value: int | float | str, name: str) -> Decimal:
    try:
        out = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{name}: not a number: {str(value)[:40]!r}") from None
    if not out.is_finite():
        raise ValueError(f"{name}: must be finite")
    return out


class AlertTokenRecord(_Provenance, kw_only=True):
    """An alert URL's token on ``copy.controls`` (key ``alert:<token_id>``): only its SHA-256
    digest travels, so the topic never holds a token that would open the URL."""

    kind: Literal["alert_token"]
    token_id: Id
    group_id: Id
    digest: Digest
    revoked: bool = False
    label: Text = ""
    ticker_map: TickerMap = msgspec.field(default_factory=dict)
    per_minute: Annotated[int, msgspec.Meta(ge=1, le=600)] = 30


class AlertTokenBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What the dashboard sends to make a token: a label, TradingView ticker → our symbol, and
    the most alerts a minute it may carry."""

    label: Text = ""
    ticker_map: TickerMap = msgspec.field(default_factory=dict)
    per_minute: Annotated[int, msgspec.Meta(ge=1, le=600)] = 30
