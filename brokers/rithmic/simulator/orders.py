"""The ORDER plant's order templates: new (312), modify (314), cancel (316), over the kernel.

A request the plant cannot accept at all (not the session's account, no trade route for the
exchange, a symbol on another exchange, a price type or field combination that makes no order) is
answered on the reply itself: ``rp_code [code, text]``. An order the plant accepts but the
exchange refuses (the kernel's risk checks: unknown contract, bad tick, size) gets 313
``rp_code ["0"]`` with its basket_id, then 352 REJECT with the text and 351 COMPLETE. Which of
the two a given real refusal takes, and its codes, are UNDOCUMENTED (docs/fidelity/rithmic.md).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from google.protobuf.message import Message

from ...instruments import split_symbol
from ...model import OrderType, Side
from ...simkernel.exchange import SimError
from ..parsing import ORDER_TYPE, TIME_IN_FORCE
from . import wire

if TYPE_CHECKING:
    from .server import RithmicSimulator, Session

SIDE = {1: Side.BUY, 2: Side.SELL}  # a new order is BUY or SELL only [PB78 request_new_order]
BAD_REQUEST = "3"  # the code is UNDOCUMENTED; the text says what was wrong


class Refused(ValueError):
    """A request answered with ``rp_code [code, text]`` and no order."""

    def __init__(self, text: str, code: str = BAD_REQUEST) -> None:
        super().__init__(text)
        self.rp_code = [code, text]


def _price(value: float, name: str) -> Decimal:
    """A wire double as the Decimal it stood for (prices are doubles on the wire [PB78])."""
    try:
        return Decimal(repr(value))
    except InvalidOperation:
        raise Refused(f"{name} is not a price") from None


class OrderDesk:
    def __init__(self, sim: RithmicSimulator) -> None:
        self.sim = sim

    def _fields(self, req: Any) -> dict[str, Any]:
        """The kernel's order fields from a 312, or :class:`Refused`."""
        route = self.sim.routes.get(req.exchange)
        if route is None:
            raise Refused(f"no trade route for exchange {req.exchange!r}")
        if req.trade_route != route:
            raise Refused(f"invalid trade route {req.trade_route!r}")
        try:
            root, _ = split_symbol(req.symbol)
        except ValueError:
            root = ""
        venue = wire.EXCHANGE_OF_ROOT.get(root)
        if venue is not None and venue != req.exchange:
            raise Refused(f"symbol {req.symbol} is not traded on {req.exchange}")
        order_type = ORDER_TYPE.get(req.price_type)
        if order_type is None:
            raise Refused(f"price_type {req.price_type} not supported")
        side = SIDE.get(req.transaction_type)
        if side is None:
            raise Refused("transaction_type is required")
        tif = TIME_IN_FORCE.get(req.duration)
        if tif is None:
            raise Refused("duration is required")
        fields: dict[str, Any] = dict(symbol=req.symbol, side=side, quantity=req.quantity, order_type=order_type)
        fields["time_in_force"] = tif
        if order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            if not req.price:
                raise Refused("price is required for a limit order")
            fields["limit_price"] = _price(req.price, "price")
        if order_type in (OrderType.STOP, OrderType.STOP_LIMIT):
            if not req.trigger_price:
                raise Refused("trigger_price is required for a stop order")
            fields["stop_price"] = _price(req.trigger_price, "trigger_price")
        return fields

    async def new_order(self, session: Session, request: Message) -> None:
        sim, req = self.sim, request
        refused = sim.wrong_account(session, request)
        if refused is not None:
            sim.send(session, wire.final(request, 313, refused, user_tag=_tag(req)))
            return
        try:
            fields = self._fields(req)
        except Refused as exc:
            sim.send(session, wire.final(request, 313, exc.rp_code, user_tag=_tag(req)))
            return
        account = _get(req, "account_id")
        with sim.holding():
            # A repeated user_tag is a second order: nothing documents a dedupe [fidelity R-30].
            sim.notifier.expecting = _get(req, "exchange")
            try:
                order, _ = sim.exchange.submit(account, client_order_id=_tag(req) or None, **fields)
            finally:
                sim.notifier.expecting = None
            if sim.exchange.account(account).faults.take_lose_response():
                # the order stands but its answer is lost: the link drops before the 313 leaves
                sim.lost_links.append(session)
                return
            ack = wire.part(request, 313, user_tag=_tag(req), basket_id=order.order_id)
            sim.send(session, ack, wire.final(request, 313))

    async def modify_order(self, session: Session, request: Message) -> None:
        sim, req = self.sim, request
        refused = sim.wrong_account(session, request)
        if refused is None:
            order = sim.exchange.account(_get(req, "account_id")).orders.get(_get(req, "basket_id"))
            if order is None or order.order_id not in sim.exchange_of:
                refused = [BAD_REQUEST, f"unknown basket_id {_get(req, 'basket_id')!r}"]
        if refused is not None:
            sim.send(session, wire.final(request, 315, refused))
            return
        assert order is not None
        changes: dict[str, Any] = {}
        try:
            if _get(req, "quantity"):
                changes["quantity"] = _get(req, "quantity")
            if order.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) and _get(req, "price"):
                changes["limit_price"] = _price(_get(req, "price"), "price")
            if order.order_type in (OrderType.STOP, OrderType.STOP_LIMIT) and _get(req, "trigger_price"):
                changes["stop_price"] = _price(_get(req, "trigger_price"), "trigger_price")
        except Refused as exc:
            sim.send(session, wire.final(request, 315, exc.rp_code))
            return
        with sim.holding():
            try:
                sim.exchange.modify(order.account, order.order_id, **changes)
            except SimError as exc:
                sim.send(session, wire.final(request, 315, [BAD_REQUEST, str(exc)]))
                return
            sim.send(session, wire.final(request, 315, basket_id=order.order_id))

    async def cancel_order(self, session: Session, request: Message) -> None:
        sim, req = self.sim, request
        refused = sim.wrong_account(session, request)
        basket = _get(req, "basket_id")
        if refused is None and basket not in sim.exchange_of:
            refused = [BAD_REQUEST, f"unknown basket_id {basket!r}"]
        if refused is not None:
            sim.send(session, wire.final(request, 317, refused))
            return
        with sim.holding():
            try:
                sim.exchange.cancel(_get(req, "account_id"), basket)
            except SimError as exc:
                sim.send(session, wire.final(request, 317, [BAD_REQUEST, str(exc)]))
                return
            sim.send(session, wire.final(request, 317, basket_id=basket))

    async def cancel_all(self, session: Session, request: Message) -> None:
        """346 → 347: every working order of the account gets a cancel [PB78, AR order.py]; each
        then reports 352 CANCEL as a single cancel would. Whether 347 waits for the cancels is
        UNDOCUMENTED: here the reply leaves first, then the notifications."""
        sim = self.sim
        refused = sim.wrong_account(session, request)
        if refused is not None:
            sim.send(session, wire.final(request, 347, refused))
            return
        account = _get(request, "account_id")
        with sim.holding():
            for order in sim.exchange.open_orders(account):
                if order.order_id in sim.exchange_of:
                    try:
                        sim.exchange.cancel(account, order.order_id)
                    except SimError:
                        continue  # it filled first (the kernel's race): nothing left to cancel
            sim.send(session, wire.final(request, 347))


def _get(message: Message, name: str) -> Any:
    return getattr(message, name)


def _tag(message: Message) -> str:
    return str(_get(message, "user_tag"))
