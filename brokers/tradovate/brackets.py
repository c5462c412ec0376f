"""Brackets on Tradovate: ``order/placeOSO`` when an anchor price is known, else exits after the fill.

Why placeOSO: the entry and its exits reach the broker in one request, so there is never a
filled entry without its protection because a second request was lost. The exits are orders at
once (``oso1Id``, ``oso2Id`` in the answer), held until the entry fills; with two of them they
are linked one-cancels-other. Their prices are absolute (RestrainedOrderVersion has ``price`` /
``stopPrice``, no offsets), while our :class:`~copytrader.brokers.model.Bracket` gives
distances from the entry fill. So the exits are anchored at the entry's own price (limit, stop)
or at ``Bracket.reference_price`` (the leader's fill, for a market entry), and when the entry
fills elsewhere the adapter modifies them to ``fill ± distance`` (:func:`reanchor`).

A market entry without a reference has no price to anchor at before it fills. Then the entry
goes alone (placeorder) and the exits follow its fill as one ``order/placeOCO`` at
``fill ± distance`` (:func:`oco_body`): exact prices, but two requests, so for the moment
between them the position is unprotected — the reason to pass ``reference_price``.
Each exit carries a clOrdId derived from the entry's (``TP``/``SL`` suffix): every request that
creates an order carries a derived id, so a lookup can find the exits too.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..errors import UnsupportedOperation
from ..instruments import instrument_for
from ..model import Bracket, OrderType, PlaceOrder, Side
from . import parsing
from . import schemas as s

Json = dict[str, Any]
TAKE_PROFIT_SUFFIX, STOP_LOSS_SUFFIX = "TP", "SL"


@dataclass(slots=True)
class Exit:
    """One exit leg as placed: its clOrdId, kind and the distance it keeps from the fill."""

    cl_ord_id: str
    order_type: str
    distance: Decimal
    order_id: int | None = None


@dataclass(slots=True)
class BracketPlan:
    entry_cl_ord_id: str
    symbol: str
    side: Side
    quantity: int
    anchor: Decimal | None
    exits: list[Exit]
    account_name: str = ""
    tv_account: int = 0
    entry_order_id: int | None = None
    filled_qty: int = 0
    filled_value: Decimal = Decimal(0)


def anchor_price(command: PlaceOrder) -> Decimal | None:
    """The price the exits hang from until the entry fills; None: place them after the fill."""
    assert command.bracket is not None
    if command.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) and command.limit_price is not None:
        return command.limit_price
    if command.order_type is OrderType.STOP and command.stop_price is not None:
        return command.stop_price
    return command.bracket.reference_price


def exit_price(side: Side, order_type: str, anchor: Decimal, distance: Decimal, symbol: str) -> Decimal:
    """Take-profit beyond the anchor in the entry's favour, stop-loss against it, on a tick."""
    direction = side.sign if order_type == s.LIMIT else -side.sign
    return instrument_for(symbol).round_to_tick(anchor + direction * distance)


def plan(command: PlaceOrder, account_name: str = "", tv_account: int = 0) -> BracketPlan:
    bracket: Bracket = command.bracket  # type: ignore[assignment]  # caller checked
    exits = []
    if bracket.take_profit is not None:
        exits.append(Exit(command.client_order_id + TAKE_PROFIT_SUFFIX, s.LIMIT, bracket.take_profit))
    if bracket.stop_loss is not None:
        exits.append(Exit(command.client_order_id + STOP_LOSS_SUFFIX, s.STOP, bracket.stop_loss))
    if not exits:
        raise UnsupportedOperation("tradovate: a bracket needs a take-profit or a stop-loss")
    return BracketPlan(
        command.client_order_id,
        command.symbol.upper(),
        command.side,
        command.quantity,
        anchor_price(command),
        exits,
        account_name,
        tv_account,
    )


def _version(p: BracketPlan, leg: Exit, anchor: Decimal) -> Json:
    price = parsing.price_out(exit_price(p.side, leg.order_type, anchor, leg.distance, p.symbol))
    return s.restrained_order_version(
        parsing.action(p.side.opposite()),
        leg.cl_ord_id,
        leg.order_type,
        price if leg.order_type == s.LIMIT else None,
        price if leg.order_type == s.STOP else None,
        s.TIF_GTC,
    )


def oso_body(entry: Json, p: BracketPlan) -> Json:
    assert p.anchor is not None
    versions = [_version(p, leg, p.anchor) for leg in p.exits]
    return s.place_oso_body(entry, versions[0], versions[1] if len(versions) > 1 else None)


def take_ids(p: BracketPlan, reply: Json) -> None:
    p.entry_order_id = int(reply["orderId"])
    for leg, key in zip(p.exits, ("oso1Id", "oso2Id"), strict=False):  # one or two exit legs
        if reply.get(key) is not None:
            leg.order_id = int(reply[key])


def record_fill(p: BracketPlan, qty: int, price: Decimal) -> Decimal | None:
    """Add one entry fill; the average fill price once the entry is complete, else None."""
    p.filled_qty += qty
    p.filled_value += price * qty
    return p.filled_value / p.filled_qty if p.filled_qty >= p.quantity else None


def oco_body(p: BracketPlan, fill_price: Decimal) -> tuple[str, Json]:
    """``(endpoint, body)`` placing the exits at ``fill ± distance``: placeOCO for two (the
    first as a placeorder body plus ``other``), placeorder for one. Each carries its clOrdId."""
    first, *rest = [_version(p, leg, fill_price) for leg in p.exits]
    body = s.place_order_body(
        p.account_name,
        p.tv_account,
        first["clOrdId"],
        first["action"],
        p.symbol,
        p.quantity,
        first["orderType"],
        first.get("price"),
        first.get("stopPrice"),
        first["timeInForce"],
    )
    if not rest:
        return "order/placeorder", body
    return "order/placeoco", {**body, "other": rest[0]}


def reanchor(p: BracketPlan, fill_price: Decimal) -> list[Json]:
    """modifyorder bodies moving each exit to ``fill ± distance`` (none if already there)."""
    if p.anchor is None or instrument_for(p.symbol).round_to_tick(fill_price) == p.anchor:
        return []
    bodies = []
    for leg in p.exits:
        if leg.order_id is None:
            continue
        price = parsing.price_out(exit_price(p.side, leg.order_type, fill_price, leg.distance, p.symbol))
        bodies.append(
            s.modify_order_body(
                leg.order_id,
                p.quantity,
                leg.order_type,
                price if leg.order_type == s.LIMIT else None,
                price if leg.order_type == s.STOP else None,
                s.TIF_GTC,
            )
        )
    return bodies
