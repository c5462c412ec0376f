"""The ORDER plant's order templates: new (312), bracket (330), modify (314), cancel (316), cancel
all (346), over the kernel.

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

from ...instruments import instrument_for, split_symbol
from ...model import Bracket, OrderType, Side
from ...simkernel.exchange import SimError
from ..parsing import ORDER_TYPE, TIME_IN_FORCE
from . import wire

if TYPE_CHECKING:
    from .server import RithmicSimulator, Session

SIDE = {1: Side.BUY, 2: Side.SELL}  # a new order is BUY or SELL only [PB78 request_new_order]
BAD_REQUEST = "3"  # the code is UNDOCUMENTED; the text says what was wrong
# RequestBracketOrder.BracketType [PB78]; the *_STATIC variants are these + 3
STOP_ONLY, TARGET_ONLY, TARGET_AND_STOP = 1, 2, 3


class Refused(ValueError):
    """A request answered with ``rp_code [code, text]`` and no order."""

    def __init__(self, text: str, code: str = BAD_REQUEST) -> None:
        super().__init__(text)
        self.rp_code = [code, text]


def _price(value: float, name: str) -> Decimal:
    """A wire double as the Decimal it stood for (prices are doubles on the wire [PB78])."""
    try:
        price = Decimal(repr(value))
    except InvalidOperation:
        raise Refused(f"{name} is not a price") from None
    if not price.is_finite() or price <= 0:
        raise Refused(f"{name} {value!r} is not a price")
    return price


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
        if req.quantity <= 0:
            raise Refused(f"quantity {req.quantity} must be positive")
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
        await self._submit(session, request, 313, None)

    async def bracket_order(self, session: Session, request: Message) -> None:
        """330 → 331: an entry whose exits the exchange places when it fills, ``target_ticks`` /
        ``stop_ticks`` away from the fill price in the exit's favourable / adverse direction
        [PB78 request_bracket_order, AR order.py]. Ticks are distances: the public client's
        examples send them positive for either side [AR docs/orders.rst], so a zero or negative
        count is refused here (strict). The exits (a GTC limit and a GTC stop, one-cancels-other)
        carry no user_tag (UNDOCUMENTED whether real ones inherit it)."""
        try:
            bracket = self._bracket(request)
        except Refused as exc:
            self.sim.send(session, wire.final(request, 331, exc.rp_code, user_tag=_tag(request)))
            return
        await self._submit(session, request, 331, bracket)

    def _bracket(self, req: Any) -> Bracket:
        kind = req.bracket_type
        wants_target = kind in (TARGET_ONLY, TARGET_AND_STOP, TARGET_ONLY + 3, TARGET_AND_STOP + 3)
        wants_stop = kind in (STOP_ONLY, TARGET_AND_STOP, STOP_ONLY + 3, TARGET_AND_STOP + 3)
        if not (wants_target or wants_stop):
            raise Refused(f"bracket_type {kind} not supported")
        try:
            tick = instrument_for(req.symbol).tick_size
        except (KeyError, ValueError):
            raise Refused(f"no tick size for {req.symbol!r}") from None
        distances: dict[str, Decimal | None] = {"target": None, "stop": None}
        for leg, wanted in (("target", wants_target), ("stop", wants_stop)):
            if not wanted:
                continue
            ticks, quantity = getattr(req, f"{leg}_ticks"), getattr(req, f"{leg}_quantity")
            if ticks <= 0:
                raise Refused(f"{leg}_ticks must be a positive number of ticks, got {ticks}")
            if quantity != req.quantity:
                raise Refused(f"{leg}_quantity {quantity} differs from the order's {req.quantity} (not simulated)")
            distances[leg] = ticks * tick
        return Bracket(take_profit=distances["target"], stop_loss=distances["stop"])

    async def _submit(self, session: Session, request: Message, reply: int, bracket: Bracket | None) -> None:
        sim, req = self.sim, request
        refused = sim.wrong_account(session, request)
        if refused is not None:
            sim.send(session, wire.final(request, reply, refused, user_tag=_tag(req)))
            return
        try:
            fields = self._fields(req)
        except Refused as exc:
            sim.send(session, wire.final(request, reply, exc.rp_code, user_tag=_tag(req)))
            return
        account = _get(req, "account_id")
        with sim.holding():
            # A repeated user_tag is a second order: nothing documents a dedupe [fidelity R-30].
            sim.notifier.expecting = _get(req, "exchange")
            try:
                order, _ = sim.exchange.submit(account, client_order_id=_tag(req) or None, bracket=bracket, **fields)
            finally:
                sim.notifier.expecting = None
            if sim.exchange.account(account).faults.take_lose_response():
                # the order stands but its answer is lost: the link drops before the reply leaves
                sim.lost_links.append(session)
                return
            if reply == 313:
                ack = wire.part(request, 313, user_tag=_tag(req), basket_id=order.order_id)
                sim.send(session, ack, wire.final(request, 313))
            else:  # 331 carries its data on the closing message [AR base.py _terminal_carries_data]
                sim.send(session, wire.final(request, 331, user_tag=_tag(req), basket_id=order.order_id))
                sim.bracket_update(order, req)

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
            if _get(req, "quantity") < 0:
                raise Refused(f"quantity {_get(req, 'quantity')} must be positive")
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
