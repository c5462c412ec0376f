"""SUBMIT_NEW_OCO_ORDER on the simulated server: two legs, one cancels the other, optionally
attached to a parent order (a bracket).

What the header gives (H8 ``s_SubmitNewOCOOrder``): two legs with their own ClientOrderID, type,
side, prices and quantity; one TimeInForce; ``ParentTriggerClientOrderID`` naming a parent that
was submitted with ``IsParentOrder`` 1; ``UseOffsets`` with ``OffsetFromParent1/2``. Our reading
(the order-entry page's text on offsets was not available here): the legs of a parented OCO are
held until the parent fills, then work for the parent's filled quantity; with ``UseOffsets`` each
leg's Price1 is re-anchored at the parent's average fill price, the offset being a positive
distance placed on the protective side (a sell limit above, a sell stop below, and the reverse
for buys). Kernel work: ``oco_group`` links the legs, ``parent_id`` holds them.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from decimal import Decimal

from ...instruments import instrument_for
from ...model import FillEvent, OrderStatus, OrderType, Side
from ...simkernel.exchange import SimError, SimExchange
from ...simkernel.records import SimOrder
from .. import messages as m
from ..codec import Message
from ..messages import DBL_MAX
from ..parsing import ORDER_TYPES, SIDES, TIME_IN_FORCE
from .orders import OrderDesk, Refused, _price, _quantity
from .session import Session
from .updates import refused_order

Reason = m.OrderUpdateReason
LEGS = ("1", "2")


def _offset_sign(side: Side, order_type: OrderType) -> int:
    """+1 above the anchor (a sell limit, a buy stop), -1 below (a buy limit, a sell stop)."""
    above = (side is Side.SELL) == (order_type is OrderType.LIMIT)
    return 1 if above else -1


@dataclass
class OcoBook:
    """Held legs waiting for their parent's fill, to be priced from it."""

    anchored: dict[str, list[tuple[SimOrder, Decimal]]] = field(default_factory=dict)  # parent id → legs


class OcoDesk:
    """Options: ``supported`` (the LOGON_RESPONSE flags OCOOrdersSupported/BracketOrdersSupported;
    False refuses every OCO, each leg by its ClientOrderID)."""

    def __init__(self, exchange: SimExchange, desk: OrderDesk, *, supported: bool = True) -> None:
        self.exchange = exchange
        self.desk = desk
        self.supported = supported
        self.book = OcoBook()
        self._groups = itertools.count(1)

    def submit(self, session: Session, msg: Message) -> None:
        account = msg.as_text("TradeAccount") or session.trade_account
        symbol = msg.as_text("Symbol")
        ids = [msg.as_text(f"ClientOrderID_{leg}") for leg in LEGS]
        try:
            if not self.supported:
                raise Refused("OCO orders are not supported by this server")
            if ids[0] == ids[1]:
                raise Refused("the two legs need different ClientOrderIDs")
            for client_id in ids:
                self.desk._claim(session, account, client_id)
            terms = [self._leg(msg, leg) for leg in LEGS]
            parent = self._parent(account, msg.as_text("ParentTriggerClientOrderID"))
            offsets = self._offsets(msg, parent, terms)
        except Refused as exc:
            for client_id in ids:
                self.desk.used_client_ids.add((account, client_id))
                session.send(refused_order(client_id, account, symbol, str(exc), Reason.NEW_ORDER_REJECTED))
            return
        group = f"dtc-oco-{next(self._groups)}"
        for client_id, leg_terms, offset in zip(ids, terms, offsets, strict=True):
            if parent is not None and offset is not None and parent.status is OrderStatus.FILLED:
                self._anchor_terms(leg_terms, parent, offset)  # the parent filled before the OCO came
            try:
                order, _ = self.exchange.submit(
                    account,
                    symbol=symbol,
                    client_order_id=client_id,
                    oco_group=group,
                    parent_id=parent.order_id if parent is not None else None,
                    **leg_terms,  # type: ignore[arg-type]  # typed by _leg
                )
            except SimError as exc:
                session.send(refused_order(client_id, account, symbol, str(exc), Reason.NEW_ORDER_REJECTED))
                continue
            if parent is not None and offset is not None and order.status is OrderStatus.PENDING:
                self.book.anchored.setdefault(parent.order_id, []).append((order, offset))

    def _leg(self, msg: Message, leg: str) -> dict[str, object]:
        try:
            order_type = ORDER_TYPES[m.OrderType(msg.as_int(f"OrderType_{leg}"))]
            side = SIDES[m.BuySell(msg.as_int(f"BuySell_{leg}"))]
            tif = TIME_IN_FORCE[m.TimeInForce(msg.as_int("TimeInForce"))]
        except (ValueError, KeyError):
            raise Refused(f"leg {leg}: order type, side or time in force is not supported") from None
        terms: dict[str, object] = {
            "side": side,
            "order_type": order_type,
            "time_in_force": tif,
            "quantity": _quantity(msg.as_float(f"Quantity_{leg}")),
        }
        price1, price2 = msg.as_float(f"Price1_{leg}"), msg.as_float(f"Price2_{leg}")
        if order_type is OrderType.LIMIT:
            terms["limit_price"] = self._maybe(price1, f"Price1_{leg}")
        elif order_type is OrderType.STOP:
            terms["stop_price"] = self._maybe(price1, f"Price1_{leg}")
        elif order_type is OrderType.STOP_LIMIT:
            terms["stop_price"] = _price(price1, f"Price1_{leg}")
            terms["limit_price"] = _price(price2, f"Price2_{leg}")
        return terms

    @staticmethod
    def _maybe(value: float, what: str) -> Decimal | None:
        """A leg's Price1 may be left unset when offsets price it at the parent's fill."""
        return None if value == DBL_MAX else _price(value, what)

    def _parent(self, account: str, client_id: str) -> SimOrder | None:
        if not client_id:
            return None
        if (account, client_id) not in self.desk.parents:
            raise Refused(f"parent {client_id!r} was not submitted with IsParentOrder = 1")
        found = self.exchange.orders_with_client_id(account, client_id)
        if not found:
            raise Refused(f"parent order {client_id!r} not found")
        parent = found[-1]
        if parent.status.is_final and parent.status is not OrderStatus.FILLED:
            raise Refused(f"parent order {client_id!r} is {parent.status.value}")
        return parent

    def _offsets(self, msg: Message, parent: SimOrder | None, terms: list[dict[str, object]]) -> list[Decimal | None]:
        if not msg.as_int("UseOffsets"):
            for leg, leg_terms in zip(LEGS, terms, strict=True):
                if leg_terms.get("limit_price", 0) is None or leg_terms.get("stop_price", 0) is None:
                    raise Refused(f"Price1_{leg} is required without UseOffsets")
            return [None, None]
        if parent is None:
            raise Refused("UseOffsets needs ParentTriggerClientOrderID")
        offsets: list[Decimal | None] = []
        for leg, leg_terms in zip(LEGS, terms, strict=True):
            value = msg.as_float(f"OffsetFromParent{leg}")
            if not math.isfinite(value) or value <= 0 or value == DBL_MAX:
                raise Refused(f"OffsetFromParent{leg} must be a positive distance")
            if leg_terms["order_type"] not in (OrderType.LIMIT, OrderType.STOP):
                raise Refused(f"leg {leg}: offsets price limit and stop legs only")
            offsets.append(Decimal(repr(value)))
        return offsets

    def _anchor_terms(self, terms: dict[str, object], parent: SimOrder, offset: Decimal) -> None:
        assert parent.average_price is not None
        side, order_type = terms["side"], terms["order_type"]
        assert isinstance(side, Side) and isinstance(order_type, OrderType)
        price = self._anchored(parent, side, order_type, offset)
        terms["limit_price" if order_type is OrderType.LIMIT else "stop_price"] = price

    @staticmethod
    def _anchored(parent: SimOrder, side: Side, order_type: OrderType, offset: Decimal) -> Decimal:
        assert parent.average_price is not None
        raw = parent.average_price + _offset_sign(side, order_type) * offset
        return instrument_for(parent.symbol).round_to_tick(raw)

    def on_fill(self, fill: FillEvent) -> None:
        """The parent filled (partly or wholly): price its held legs at its average fill price, so
        whenever the kernel releases them (full fill, or a partly filled parent that ends) they
        stand where the offsets say."""
        legs = self.book.anchored.get(fill.broker_order_id)
        if not legs:
            return
        if not fill.leaves_quantity:
            del self.book.anchored[fill.broker_order_id]
        parent = self.exchange.account(fill.account_id).orders[fill.broker_order_id]
        for order, offset in legs:
            price = self._anchored(parent, order.side, order.order_type, offset)
            if order.order_type is OrderType.LIMIT:
                order.limit_price = price
            else:
                order.stop_price = price
