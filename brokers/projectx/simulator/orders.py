"""The gateway's order routes: place, modify, cancel, closeContract / partialCloseContract.

Each route first carries the request out on the kernel, then consults the account's
``faults.take_lose_response()``: when it fires the answer is lost the way it is on a real
network — the connection drops (``lose_response="reset"``) or nothing comes back before the
client gives up (``"timeout"``) — while the order stays done. That is the case a copier must
survive without placing again blindly.

Undocumented answers default to the strictest plausible one (see ``ProjectXSimulator``): a
repeated ``customTag`` is a new order; a bracketed place is refused unless the account is in
Auto OCO Brackets mode; bracket ticks must carry the sign the live gateway demands.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ...model import OrderStatus, OrderType, Side
from ...simkernel.exchange import SimError
from .. import parsing
from .. import schemas as px
from .brackets import BracketSpec
from .state import GatewayAccount
from .wire import account_of, envelope, read_body

if TYPE_CHECKING:
    from .server import ProjectXSimulator


class Refusal(ValueError):
    """A place the gateway answers with an error envelope; ``record`` asks for a rejected order."""

    def __init__(self, message: str, *, record: bool = False, entry_anyway: bool = False) -> None:
        super().__init__(message)
        self.record = record
        self.entry_anyway = entry_anyway  # the refusal's order is placed anyway (an option's reading)


class OrderDesk:
    """The order handlers of the gateway; :class:`~.api.GatewayApi` registers them."""

    def __init__(self, sim: ProjectXSimulator) -> None:
        self.sim = sim
        self.state = sim.state

    async def _answer(
        self, request: web.Request, account: GatewayAccount, response: web.Response
    ) -> web.StreamResponse:
        """The request was carried out; lose its answer when the fault says so."""
        sim = self.sim
        if not sim.exchange.account(account.name).faults.take_lose_response():
            return response
        if sim.lose_response == "timeout":
            await asyncio.sleep(sim.lose_response_hold_s)
        if request.transport is not None:
            request.transport.abort()  # a reset, as when a proxy or the network drops the line
        raise asyncio.CancelledError  # aiohttp ends the handler quietly; nothing is written

    async def place(self, request: web.Request) -> web.StreamResponse:
        sim, state, answer = self.sim, self.state, self._answer
        data = await read_body(request)
        account = account_of(sim, request, data)
        if account is None:
            return envelope(px.PlaceOrderErrorCode.ACCOUNT_NOT_FOUND, "Account not found.", orderId=None)
        contract = state.contract(data.get("contractId"))
        if contract is None:
            return envelope(px.PlaceOrderErrorCode.CONTRACT_NOT_FOUND, "Contract not found.", orderId=None)
        kernel_account = sim.exchange.account(account.name)
        tag = data.get("customTag") or None
        if tag is not None and tag in kernel_account.by_client_id and sim.repeated_tag != "new_order":
            if sim.repeated_tag == "refuse":
                code, text = sim.repeated_tag_error
                return await answer(request, account, envelope(code, text, orderId=None))
            first = state.brackets.gateway_id(kernel_account.by_client_id[tag])
            return await answer(request, account, envelope(orderId=first))
        symbol = state.kernel_symbol(contract)
        try:
            kwargs = _order_kwargs(sim, data, symbol)
            spec = _bracket_spec(sim, account, data, kwargs["side"], tag)
        except Refusal as exc:
            if exc.entry_anyway:
                order, _ = sim.exchange.submit(account.name, symbol=symbol, client_order_id=tag, **kwargs)
                return await answer(
                    request,
                    account,
                    envelope(px.PlaceOrderErrorCode.ORDER_REJECTED, str(exc), orderId=int(order.order_id)),
                )
            order_id = _rejected_record(sim, account.name, symbol, tag, str(exc), data) if exc.record else None
            return await answer(
                request, account, envelope(px.PlaceOrderErrorCode.ORDER_REJECTED, str(exc), orderId=order_id)
            )
        await _ack_delay(kernel_account.faults.ack_delay_ms)
        state.brackets.pending = spec
        try:
            order, _ = sim.exchange.submit(account.name, symbol=symbol, client_order_id=tag, **kwargs)
        finally:
            state.brackets.pending = None
        if int(data.get("type", 0)) == px.OrderType.TRAILING_STOP and not order.status.is_final:
            assert order.stop_price is not None
            state.trail(order, abs(sim.exchange.prices.price(symbol) - order.stop_price))
        if order.status is OrderStatus.REJECTED:
            return await answer(
                request,
                account,
                envelope(px.PlaceOrderErrorCode.ORDER_REJECTED, order.reason, orderId=int(order.order_id)),
            )
        return await answer(request, account, envelope(orderId=int(order.order_id)))

    async def modify(self, request: web.Request) -> web.StreamResponse:
        sim, state = self.sim, self.state
        data = await read_body(request)
        account = account_of(sim, request, data)
        if account is None:
            return envelope(px.ModifyOrderErrorCode.ACCOUNT_NOT_FOUND, "Account not found.")
        await _ack_delay(sim.exchange.account(account.name).faults.ack_delay_ms)
        order_id = state.brackets.kernel_id(data.get("orderId"))
        if order_id not in sim.exchange.account(account.name).orders:
            return envelope(px.ModifyOrderErrorCode.ORDER_NOT_FOUND, "Order not found.")
        try:
            sim.exchange.modify(
                account.name,
                order_id,
                quantity=data.get("size"),
                limit_price=parsing.to_decimal(data.get("limitPrice")),
                stop_price=parsing.to_decimal(data.get("stopPrice")),
            )
        except SimError as exc:
            code = (
                px.ModifyOrderErrorCode.ORDER_NOT_FOUND
                if exc.code in ("unknown_order", "already_final")
                else px.ModifyOrderErrorCode.REJECTED
            )
            return await self._answer(request, account, envelope(code, str(exc)))
        return await self._answer(request, account, envelope())

    async def cancel(self, request: web.Request) -> web.StreamResponse:
        sim = self.sim
        data = await read_body(request)
        account = account_of(sim, request, data)
        if account is None:
            return envelope(px.ModifyOrderErrorCode.ACCOUNT_NOT_FOUND, "Account not found.")
        await _ack_delay(sim.exchange.account(account.name).faults.ack_delay_ms)
        try:
            sim.exchange.cancel(account.name, self.state.brackets.kernel_id(data.get("orderId")))
        except SimError as exc:
            return await self._answer(request, account, envelope(px.ModifyOrderErrorCode.ORDER_NOT_FOUND, str(exc)))
        return await self._answer(request, account, envelope())

    async def close_contract(self, request: web.Request) -> web.StreamResponse:
        return await self._close(request, partial=False)

    async def partial_close(self, request: web.Request) -> web.StreamResponse:
        return await self._close(request, partial=True)

    async def _close(self, request: web.Request, *, partial: bool) -> web.StreamResponse:
        """closeContract takes accountId + contractId (+ size) only: its order carries no tag."""
        sim = self.sim
        data = await read_body(request)
        account = account_of(sim, request, data)
        if account is None:
            return envelope(px.ClosePositionErrorCode.ACCOUNT_NOT_FOUND, "Account not found.")
        contract = self.state.contract(data.get("contractId"))
        if contract is None:
            return envelope(px.ClosePositionErrorCode.CONTRACT_NOT_FOUND, "Contract not found.")
        position = sim.exchange.account(account.name).positions.get(contract.symbol)
        net = position.net_quantity if position else 0
        size = int(data.get("size") or 0) if partial else abs(net)
        if net == 0 or size <= 0 or size > abs(net):
            return envelope(px.ClosePositionErrorCode.POSITION_NOT_FOUND, "Position not found.")
        side = Side.SELL if net > 0 else Side.BUY
        order, _ = sim.exchange.submit(account.name, symbol=contract.symbol, side=side, quantity=size)
        if order.status is OrderStatus.REJECTED:
            return await self._answer(
                request, account, envelope(px.ClosePositionErrorCode.ORDER_REJECTED, order.reason)
            )
        return await self._answer(request, account, envelope())


def _order_kwargs(sim: ProjectXSimulator, data: dict[str, Any], symbol: str) -> dict[str, Any]:
    """Gateway order fields → kernel submit arguments; raises ``Refusal`` with the refusal text."""
    try:
        kind = px.OrderType(int(data.get("type", 0)))
        side = parsing.SIDE_FROM_PX[px.OrderSide(int(data.get("side", -1)))]
        size = int(data.get("size", 0))
    except (ValueError, TypeError, KeyError):
        raise Refusal("Invalid order type, side or size.") from None
    if kind not in px.PLACEABLE_TYPES:
        raise Refusal(f"Order type {int(kind)} cannot be placed.")
    if size <= 0:
        raise Refusal("Order size must be positive.")
    limit = parsing.to_decimal(data.get("limitPrice"))
    stop = parsing.to_decimal(data.get("stopPrice"))
    trail = parsing.to_decimal(data.get("trailPrice"))
    last = sim.exchange.prices.price(symbol)
    order_type = parsing.TYPE_FROM_PX[kind]
    if kind is px.OrderType.LIMIT and limit is None:
        raise Refusal("Limit orders need a limitPrice.")
    if kind is px.OrderType.STOP and stop is None:
        raise Refusal("Stop orders need a stopPrice.")
    if kind is px.OrderType.TRAILING_STOP:
        stop = _trailing_stop(side, trail, last)
    if kind in (px.OrderType.JOIN_BID, px.OrderType.JOIN_ASK):
        limit = last  # the simulator has one price, not a book: join at last
    return {
        "side": side,
        "quantity": size,
        "order_type": order_type,
        "limit_price": limit if order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None,
        "stop_price": stop if order_type in (OrderType.STOP, OrderType.STOP_LIMIT) else None,
    }


def _trailing_stop(side: Side, trail: Decimal | None, last: Decimal) -> Decimal:
    """``trailPrice`` read as the protocol notes define it: the stop's absolute price level.

    The docs call it "the trail price"; whether a request's value is a level or a distance is
    not documented (docs/fidelity/projectx.md X-16). Read as a level, it must sit on the stop's
    side of the market (below for a sell, above for a buy), or the order is refused. The kernel
    then trails: the distance to the market at entry is kept as the market moves in the order's
    favour (``GatewayState.follow_trailing`` on each clock step).
    """
    if trail is None or trail <= 0:
        raise Refusal("Trailing stop orders need a trailPrice.")
    if (side is Side.SELL and trail >= last) or (side is Side.BUY and trail <= last):
        raise Refusal(
            f"Invalid trail price {trail}: a {side.value} trailing stop must be on the other side "
            f"of the market ({last})."
        )
    return trail


def _bracket_spec(
    sim: ProjectXSimulator, account: GatewayAccount, data: dict[str, Any], side: Side, tag: str | None
) -> BracketSpec | None:
    """Signed bracket ticks, checked as the live gateway checks them (errorCode 2 otherwise)."""
    stop_loss = data.get("stopLossBracket") or None
    take_profit = data.get("takeProfitBracket") or None
    if not stop_loss and not take_profit:
        return None
    if not sim.brackets_allowed(account.name):
        raise Refusal(px.POSITION_BRACKETS_MESSAGE, record=True, entry_anyway=sim.position_brackets_places_entry)
    long = side is Side.BUY
    direction = "longing" if long else "going short"
    ticks: dict[str, int | None] = {"stop loss": None, "take profit": None}
    for leg, spec in (("stop loss", stop_loss), ("take profit", take_profit)):
        if not spec:
            continue
        try:
            value = int(spec.get("ticks"))
        except (TypeError, ValueError):
            raise Refusal(f"Invalid {leg} ticks.") from None
        below = (leg == "stop loss") == long  # where the exit sits from the entry
        if value == 0 or (value > 0) == below:
            relation = "less" if below else "greater"
            raise Refusal(
                px.BRACKET_SIGN_MESSAGE.format(leg=leg, ticks=value, relation=relation, direction=direction),
                record=True,
            )
        ticks[leg] = value
    return BracketSpec(ticks["stop loss"], ticks["take profit"], tag)


def _rejected_record(
    sim: ProjectXSimulator, account: str, symbol: str, tag: str | None, reason: str, data: dict[str, Any]
) -> int | None:
    """The gateway answers some refusals with the id of a rejected order record; keep one."""
    faults = sim.exchange.account(account).faults
    previous, faults.reject_next = faults.reject_next, reason
    try:
        side = parsing.SIDE_FROM_PX[px.OrderSide(int(data.get("side", 0)))]
        order, _ = sim.exchange.submit(
            account, symbol=symbol, side=side, quantity=max(1, int(data.get("size") or 1)), client_order_id=tag
        )
    except (ValueError, KeyError, SimError):
        return None
    finally:
        faults.reject_next = previous
    return int(order.order_id)


async def _ack_delay(ms: float) -> None:
    if ms > 0:
        await asyncio.sleep(ms / 1000.0)
