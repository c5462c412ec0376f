"""Brackets on Tradovate: one ``order/placeOSO`` request, then re-anchoring at the fill.

Why placeOSO: the entry and its exits reach the broker in one request, so there is never a
filled entry without its protection because a second request was lost. The exits are orders at
once (``oso1Id``, ``oso2Id`` in the answer), held until the entry fills; with two of them they
are linked one-cancels-other. Their prices are absolute (RestrainedOrderVersion has ``price`` /
``stopPrice``, no offsets), while our :class:`~copytrader.brokers.model.Bracket` gives
distances from the entry fill. So the exits are anchored at the entry's own price (limit, stop)
or at ``Bracket.reference_price`` (the leader's fill, for a market entry), and when the entry
fills elsewhere the adapter modifies them to ``fill ± distance`` (:func:`reanchor`).
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
    anchor: Decimal
    exits: list[Exit]
    entry_order_id: int | None = None
    filled_qty: int = 0
    filled_value: Decimal = Decimal(0)


def anchor_price(command: PlaceOrder) -> Decimal:
    """The price the exits hang from until the entry fills."""
    assert command.bracket is not None
    if command.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) and command.limit_price is not None:
        return command.limit_price
    if command.order_type is OrderType.STOP and command.stop_price is not None:
        return command.stop_price
    if command.bracket.reference_price is not None:
        return command.bracket.reference_price
    raise UnsupportedOperation(
        "tradovate: a bracket on a market entry needs Bracket.reference_price (placeOSO takes "
        "absolute exit prices, and the fill price is not known before the request)")


def exit_price(side: Side, order_type: str, anchor: Decimal, distance: Decimal, symbol: str) -> Decimal:
    """Take-profit beyond the anchor in the entry's favour, stop-loss against it, on a tick."""
    direction = side.sign if order_type == s.LIMIT else -side.sign
    return instrument_for(symbol).round_to_tick(anchor + direction * distance)


def plan(command: PlaceOrder) -> BracketPlan:
    bracket: Bracket = command.bracket  # type: ignore[assignment]  # caller checked
    exits = []
    if bracket.take_profit is not None:
        exits.append(Exit(command.client_order_id + TAKE_PROFIT_SUFFIX, s.LIMIT, bracket.take_profit))
    if bracket.stop_loss is not None:
        exits.append(Exit(command.client_order_id + STOP_LOSS_SUFFIX, s.STOP, bracket.stop_loss))
    if not exits:
        raise UnsupportedOperation("tradovate: a bracket needs a take-profit or a stop-loss")
    return BracketPlan(command.client_order_id, command.symbol.upper(), command.side, command.quantity,
                       anchor_price(command), exits)


def _version(p: BracketPlan, leg: Exit, anchor: Decimal) -> Json:
    price = parsing.price_out(exit_price(p.side, leg.order_type, anchor, leg.distance, p.symbol))
    return s.restrained_order_version(
        parsing.action(p.side.opposite()), leg.cl_ord_id, leg.order_type,
        price if leg.order_type == s.LIMIT else None, price if leg.order_type == s.STOP else None, s.TIF_GTC)


def oso_body(entry: Json, p: BracketPlan) -> Json:
    versions = [_version(p, leg, p.anchor) for leg in p.exits]
    return s.place_oso_body(entry, versions[0], versions[1] if len(versions) > 1 else None)


def take_ids(p: BracketPlan, reply: Json) -> None:
    p.entry_order_id = int(reply["orderId"])
    for leg, key in zip(p.exits, ("oso1Id", "oso2Id")):
        if reply.get(key) is not None:
            leg.order_id = int(reply[key])


def record_fill(p: BracketPlan, qty: int, price: Decimal) -> Decimal | None:
    """Add one entry fill; the average fill price once the entry is complete, else None."""
    p.filled_qty += qty
    p.filled_value += price * qty
    return p.filled_value / p.filled_qty if p.filled_qty >= p.quantity else None


def reanchor(p: BracketPlan, fill_price: Decimal) -> list[Json]:
    """modifyorder bodies moving each exit to ``fill ± distance`` (none if already there)."""
    if instrument_for(p.symbol).round_to_tick(fill_price) == p.anchor:
        return []
    bodies = []
    for leg in p.exits:
        if leg.order_id is None:
            continue
        price = parsing.price_out(exit_price(p.side, leg.order_type, fill_price, leg.distance, p.symbol))
        bodies.append(s.modify_order_body(leg.order_id, p.quantity, leg.order_type,
                                          price if leg.order_type == s.LIMIT else None,
                                          price if leg.order_type == s.STOP else None, s.TIF_GTC))
    return bodies
