"""Translation between ProjectX payloads and the broker-neutral model, both directions.

The adapter reads gateway payloads into ``OrderEvent``/``FillEvent``/``PositionEvent``; the
simulator writes kernel state out as gateway payloads. Keeping both halves here makes one
round-trip test cover what the two sides agree on.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from ...common.clock import today_utc
from ..instruments import split_symbol
from ..model import Bracket, OrderStatus, OrderType, Side
from . import schemas as px

# --------------------------------------------------------------------------- enums

SIDE_TO_PX = {Side.BUY: px.OrderSide.BID, Side.SELL: px.OrderSide.ASK}
SIDE_FROM_PX = {v: k for k, v in SIDE_TO_PX.items()}

TYPE_TO_PX = {
    OrderType.MARKET: px.OrderType.MARKET,
    OrderType.LIMIT: px.OrderType.LIMIT,
    OrderType.STOP: px.OrderType.STOP,
    OrderType.STOP_LIMIT: px.OrderType.STOP_LIMIT,
}
TYPE_FROM_PX = {
    px.OrderType.MARKET: OrderType.MARKET,
    px.OrderType.LIMIT: OrderType.LIMIT,
    px.OrderType.STOP: OrderType.STOP,
    px.OrderType.STOP_LIMIT: OrderType.STOP_LIMIT,
    px.OrderType.TRAILING_STOP: OrderType.STOP,
    px.OrderType.JOIN_BID: OrderType.LIMIT,
    px.OrderType.JOIN_ASK: OrderType.LIMIT,
    px.OrderType.UNKNOWN: OrderType.MARKET,
}

STATUS_TO_PX = {
    OrderStatus.PENDING: px.OrderStatus.PENDING,
    OrderStatus.WORKING: px.OrderStatus.OPEN,
    OrderStatus.PARTIALLY_FILLED: px.OrderStatus.OPEN,  # the gateway has no partial status
    OrderStatus.FILLED: px.OrderStatus.FILLED,
    OrderStatus.CANCELLED: px.OrderStatus.CANCELLED,
    OrderStatus.REJECTED: px.OrderStatus.REJECTED,
    OrderStatus.EXPIRED: px.OrderStatus.EXPIRED,
}


def status_from_px(status: int, size: int, fill_volume: int) -> OrderStatus:
    """Gateway status plus fill volume → our status (partial fills show as Open + fillVolume)."""
    code = px.OrderStatus(status) if status in px.OrderStatus._value2member_map_ else px.OrderStatus.NONE
    if code is px.OrderStatus.SUSPENDED:
        return OrderStatus.PENDING  # a bracket child waiting for its entry's fill: not in the market
    if code in (px.OrderStatus.OPEN, px.OrderStatus.PENDING_CANCELLATION):
        return OrderStatus.PARTIALLY_FILLED if 0 < fill_volume < size else OrderStatus.WORKING
    return {
        px.OrderStatus.FILLED: OrderStatus.FILLED,
        px.OrderStatus.CANCELLED: OrderStatus.CANCELLED,
        px.OrderStatus.EXPIRED: OrderStatus.EXPIRED,
        px.OrderStatus.REJECTED: OrderStatus.REJECTED,
    }.get(code, OrderStatus.PENDING)


# --------------------------------------------------------------------------- values


def to_decimal(value: Any) -> Decimal | None:
    """JSON numbers → Decimal via ``str`` so 6335.25 stays 6335.25, not a binary expansion.

    Anything but a finite JSON number raises ``ValueError``: the gateway sends prices as
    numbers, and a price of ``NaN``, of text or of a list must never reach an event.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ValueError(f"not a number: {type(value).__name__}")
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    if not number.is_finite():
        raise ValueError(f"not a finite number: {number}")
    return number


_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_time(value: str | None) -> datetime | None:
    """Gateway timestamps carry up to 7 fractional digits (.NET ticks); keep microseconds.
    Anything but an ISO-8601 text raises ``ValueError``."""
    if not value:
        return None
    if not isinstance(value, str):
        raise ValueError(f"timestamp is not text: {type(value).__name__}")
    parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", value.replace("Z", "+00:00")))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def unwrap(payload: Any) -> dict[str, Any]:
    """Hub pushes come as ``{"action", "data"}`` on the live gateway, bare in the docs: accept both."""
    if isinstance(payload, dict) and isinstance(payload.get("data"), dict) and "action" in payload:
        data: dict[str, Any] = payload["data"]
        return data
    if not isinstance(payload, dict):
        raise ValueError(f"hub payload is not an object: {payload!r}")
    return payload


# --------------------------------------------------------------------------- symbols


def full_year(digits: str, today: date | None = None) -> int:
    """One- or two-digit expiry year → 4 digits, choosing the decade nearest ahead of today."""
    today = today or today_utc()
    if len(digits) == 2:
        return 2000 + int(digits)
    year = today.year - today.year % 10 + int(digits)
    return year + 10 if year < today.year - 1 else year


def contract_for_symbol(symbol: str, today: date | None = None) -> tuple[str, str | None]:
    """``ESZ6`` → (``EP``, ``CON.F.US.EP.Z26``); a bare root → (code, ``None``: use the active one)."""
    root, expiry = split_symbol(symbol)
    try:
        code = px.ROOT_TO_CODE[root]
    except KeyError:
        raise KeyError(f"no ProjectX contract code for root {root!r}") from None
    if not expiry:
        return code, None
    return code, px.contract_id(code, expiry[0], full_year(expiry[1:], today) % 100)


def symbol_for_contract(contract_id: str) -> str:
    """``CON.F.US.EP.Z26`` → ``ESZ6`` (root plus one-digit year, the copier's symbol form)."""
    parts = px.split_contract_id(contract_id)
    if parts is None:
        raise KeyError(f"not a ProjectX futures contract id: {contract_id!r}")
    code, month, year2 = parts
    root = px.CODE_TO_ROOT.get(code, code)
    return f"{root}{month}{year2 % 10}"


# --------------------------------------------------------------------------- requests (adapter)


def bracket_ticks(distance: Decimal, tick_size: Decimal) -> int:
    """A bracket distance in whole ticks (a magnitude; :func:`signed_bracket_ticks` signs it)."""
    ticks = int((distance / tick_size).to_integral_value())
    if ticks <= 0:
        raise ValueError(f"bracket distance {distance} is under one tick ({tick_size})")
    return ticks


def signed_bracket_ticks(side: Side, leg: str, magnitude: int) -> int:
    """Ticks as the gateway wants them: signed by where the exit sits from the entry.

    A long's stop-loss is below the entry (negative) and its take-profit above (positive); a
    short's the other way round. The gateway refuses the wrong sign with errorCode 2 ("Ticks
    should be less than zero when longing").
    """
    below = (leg == "stop_loss") == (side is Side.BUY)
    return -magnitude if below else magnitude


def place_request(
    *,
    account_id: int,
    contract_id: str,
    side: Side,
    quantity: int,
    order_type: OrderType,
    limit_price: Decimal | None,
    stop_price: Decimal | None,
    custom_tag: str | None,
    bracket: Bracket | None = None,
    tick_size: Decimal | None = None,
) -> dict[str, Any]:
    if order_type not in TYPE_TO_PX or TYPE_TO_PX[order_type] not in px.PLACEABLE_TYPES:
        raise ValueError(f"ProjectX cannot place {order_type.value} orders")
    body: dict[str, Any] = {
        "accountId": account_id,
        "contractId": contract_id,
        "type": int(TYPE_TO_PX[order_type]),
        "side": int(SIDE_TO_PX[side]),
        "size": quantity,
        "limitPrice": limit_price,
        "stopPrice": stop_price,
        "trailPrice": None,
        "customTag": custom_tag,
        "linkedOrderId": None,
        "stopLossBracket": None,
        "takeProfitBracket": None,
    }
    if bracket is not None:
        if tick_size is None:
            raise ValueError("a bracket needs the contract's tick size")
        if bracket.stop_loss is not None:
            ticks = signed_bracket_ticks(side, "stop_loss", bracket_ticks(bracket.stop_loss, tick_size))
            body["stopLossBracket"] = {"ticks": ticks, "type": int(px.OrderType.STOP)}
        if bracket.take_profit is not None:
            ticks = signed_bracket_ticks(side, "take_profit", bracket_ticks(bracket.take_profit, tick_size))
            body["takeProfitBracket"] = {"ticks": ticks, "type": int(px.OrderType.LIMIT)}
    return body


# --------------------------------------------------------------------------- payloads (simulator)


def order_payload(
    *,
    order_id: int,
    account_id: int,
    contract_id: str,
    created: datetime,
    updated: datetime,
    status: OrderStatus,
    order_type: OrderType,
    side: Side,
    size: int,
    limit_price: Decimal | None,
    stop_price: Decimal | None,
    fill_volume: int,
    filled_price: Decimal | None,
    custom_tag: str | None,
) -> dict[str, Any]:
    """An order as Order/search, Order/searchOpen and GatewayUserOrder show it."""
    parts = px.split_contract_id(contract_id)
    return {
        "id": order_id,
        "accountId": account_id,
        "contractId": contract_id,
        "symbolId": px.symbol_id(parts[0]) if parts else contract_id,
        "creationTimestamp": format_time(created),
        "updateTimestamp": format_time(updated),
        "status": int(STATUS_TO_PX[status]),
        "type": int(TYPE_TO_PX[order_type]),
        "side": int(SIDE_TO_PX[side]),
        "size": size,
        "limitPrice": limit_price,
        "stopPrice": stop_price,
        "fillVolume": fill_volume,
        "filledPrice": filled_price,
        "customTag": custom_tag,
    }


def position_payload(
    *, position_id: int, account_id: int, contract_id: str, created: datetime, net: int, average: Decimal | None
) -> dict[str, Any]:
    kind = px.PositionType.LONG if net > 0 else px.PositionType.SHORT if net < 0 else px.PositionType.UNDEFINED
    return {
        "id": position_id,
        "accountId": account_id,
        "contractId": contract_id,
        "creationTimestamp": format_time(created),
        "type": int(kind),
        "size": abs(net),
        "averagePrice": average if average is not None else Decimal(0),
    }


def trade_payload(
    *,
    trade_id: int,
    account_id: int,
    contract_id: str,
    created: datetime,
    price: Decimal,
    pnl: Decimal | None,
    fees: Decimal,
    side: Side,
    size: int,
    order_id: int,
) -> dict[str, Any]:
    return {
        "id": trade_id,
        "accountId": account_id,
        "contractId": contract_id,
        "creationTimestamp": format_time(created),
        "price": price,
        "profitAndLoss": pnl,  # null marks a half-turn (opening) trade, as in the docs
        "fees": fees,
        "side": int(SIDE_TO_PX[side]),
        "size": size,
        "voided": False,
        "orderId": order_id,
    }
