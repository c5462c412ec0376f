"""The gateway's REST surface: POST JSON in, ``{success, errorCode, errorMessage}`` envelopes out.

Authentication, the rate limit and the transport faults run in one middleware so every
endpoint gets them the way the real gateway applies them: 401 without a live bearer token,
429 beyond the budget (no body, no headers), errors inside a 200 envelope otherwise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ...model import Bracket, OrderStatus, OrderType
from ...simkernel.exchange import SimError
from .. import codec, parsing
from .. import schemas as px
from .auth import Claims
from .state import GatewayAccount

if TYPE_CHECKING:
    from .server import ProjectXSimulator

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_PUBLIC = {px.LOGIN_KEY, "/api/Auth/loginApp"}
USER = web.RequestKey("projectx_user", Claims)


def envelope(error_code: int = 0, message: str | None = None, **fields: Any) -> web.Response:
    body = {**fields, "success": error_code == 0, "errorCode": int(error_code), "errorMessage": message}
    return web.json_response(body, dumps=codec.dumps)


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.query.get("access_token")


def build_routes(sim: "ProjectXSimulator") -> tuple[web.RouteTableDef, Callable[..., Any]]:
    routes = web.RouteTableDef()
    state = sim.state

    @web.middleware
    async def gateway_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/"):
            return await handler(request)
        await sim.latency.wait()
        if request.path in _PUBLIC:
            return await handler(request)
        claims = sim.tokens.decode(bearer(request) or "")
        if claims is None:
            return web.Response(status=401)
        if any(a.faults.take_expire_token() for a in sim.kernel_accounts()):
            sim.tokens.expire(claims)
        if not sim.tokens.is_live(claims) and request.path != px.VALIDATE:
            return web.Response(status=401)
        if any(a.faults.take_rate_limit() for a in sim.kernel_accounts()) or not sim.admit(request.path):
            return web.Response(status=429)
        request[USER] = claims
        return await handler(request)

    async def body(request: web.Request) -> dict[str, Any]:
        try:
            data = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="body must be JSON") from None
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(text="body must be a JSON object")
        return data

    def account_of(data: dict[str, Any]) -> GatewayAccount | None:
        return state.by_id(data.get("accountId"))

    # -- auth --------------------------------------------------------------------------
    @routes.post(px.LOGIN_KEY)
    async def login_key(request: web.Request) -> web.Response:
        data = await body(request)
        if data.get("userName") != sim.username:
            return envelope(px.LoginErrorCode.USER_NOT_FOUND, "User not found.", token=None)
        if data.get("apiKey") != sim.api_key:
            return envelope(px.LoginErrorCode.INVALID_CREDENTIALS, "Invalid credentials.", token=None)
        return envelope(token=sim.tokens.issue(sim.username))

    @routes.post(px.VALIDATE)
    async def validate(request: web.Request) -> web.Response:
        # The docs: an expired token may be re-validated for a new one; a forged one may not.
        return envelope(newToken=sim.tokens.issue(request[USER].user))

    # -- lookups -----------------------------------------------------------------------
    @routes.post(px.ACCOUNT_SEARCH)
    async def account_search(request: web.Request) -> web.Response:
        data = await body(request)
        only_active = bool(data.get("onlyActiveAccounts", True))
        accounts = [state.account_payload(a) for a in state.accounts.values() if a.can_trade or not only_active]
        return envelope(accounts=accounts)

    @routes.post(px.CONTRACT_SEARCH)
    async def contract_search(request: web.Request) -> web.Response:
        data = await body(request)
        return envelope(contracts=[c.payload() for c in state.search_contracts(str(data.get("searchText") or ""))])

    @routes.post(px.CONTRACT_AVAILABLE)
    async def contract_available(request: web.Request) -> web.Response:
        return envelope(contracts=[c.payload() for c in state.front.values()])

    @routes.post(px.CONTRACT_SEARCH_BY_ID)
    async def contract_by_id(request: web.Request) -> web.Response:
        contract = state.contract((await body(request)).get("contractId"))
        if contract is None:
            return envelope(1, "Contract not found.", contract=None, contracts=[])
        # Newer gateways answer ``contract``; the docs page still shows a ``contracts`` list.
        return envelope(contract=contract.payload(), contracts=[contract.payload()])

    # -- orders ------------------------------------------------------------------------
    @routes.post(px.ORDER_PLACE)
    async def place(request: web.Request) -> web.Response:
        data = await body(request)
        account = account_of(data)
        if account is None:
            return envelope(px.PlaceOrderErrorCode.ACCOUNT_NOT_FOUND, "Account not found.", orderId=None)
        contract = state.contract(data.get("contractId"))
        if contract is None:
            return envelope(px.PlaceOrderErrorCode.CONTRACT_NOT_FOUND, "Contract not found.", orderId=None)
        try:
            order_kwargs = _order_kwargs(sim, data, contract.symbol)
        except ValueError as exc:
            return envelope(px.PlaceOrderErrorCode.ORDER_REJECTED, str(exc), orderId=None)
        tag = data.get("customTag") or None
        kernel_account = sim.exchange.account(account.name)
        if tag is not None and tag in kernel_account.by_client_id:
            return envelope(px.PlaceOrderErrorCode.ORDER_REJECTED, px.DUPLICATE_TAG_MESSAGE.format(tag=tag),
                            orderId=None)
        await _ack_delay(kernel_account.faults.ack_delay_ms)
        order, _ = sim.exchange.submit(account.name, symbol=state.kernel_symbol(contract),
                                       client_order_id=tag, **order_kwargs)
        if order.status is OrderStatus.REJECTED:
            return envelope(px.PlaceOrderErrorCode.ORDER_REJECTED, order.reason, orderId=int(order.order_id))
        return envelope(orderId=int(order.order_id))

    @routes.post(px.ORDER_MODIFY)
    async def modify(request: web.Request) -> web.Response:
        data = await body(request)
        account = account_of(data)
        if account is None:
            return envelope(px.ModifyOrderErrorCode.ACCOUNT_NOT_FOUND, "Account not found.")
        await _ack_delay(sim.exchange.account(account.name).faults.ack_delay_ms)
        order_id = str(data.get("orderId"))
        if order_id not in sim.exchange.account(account.name).orders:
            return envelope(px.ModifyOrderErrorCode.ORDER_NOT_FOUND, "Order not found.")
        try:
            sim.exchange.modify(account.name, order_id, quantity=data.get("size"),
                                limit_price=parsing.to_decimal(data.get("limitPrice")),
                                stop_price=parsing.to_decimal(data.get("stopPrice")))
        except SimError as exc:
            code = px.ModifyOrderErrorCode.ORDER_NOT_FOUND if "already" in str(exc) else px.ModifyOrderErrorCode.REJECTED
            return envelope(code, str(exc))
        return envelope()

    @routes.post(px.ORDER_CANCEL)
    async def cancel(request: web.Request) -> web.Response:
        data = await body(request)
        account = account_of(data)
        if account is None:
            return envelope(px.ModifyOrderErrorCode.ACCOUNT_NOT_FOUND, "Account not found.")
        await _ack_delay(sim.exchange.account(account.name).faults.ack_delay_ms)
        try:
            sim.exchange.cancel(account.name, str(data.get("orderId")))
        except SimError as exc:
            return envelope(px.ModifyOrderErrorCode.ORDER_NOT_FOUND, str(exc))
        return envelope()

    @routes.post(px.ORDER_SEARCH_OPEN)
    async def search_open(request: web.Request) -> web.Response:
        account = account_of(await body(request))
        if account is None:
            return envelope(px.SearchErrorCode.ACCOUNT_NOT_FOUND, "Account not found.", orders=[])
        orders = [state.order_payload(o) for o in state.orders(account) if not o.status.is_final]
        return envelope(orders=orders)

    @routes.post(px.ORDER_SEARCH)
    async def search_orders(request: web.Request) -> web.Response:
        data = await body(request)
        account = account_of(data)
        if account is None:
            return envelope(px.SearchErrorCode.ACCOUNT_NOT_FOUND, "Account not found.", orders=[])
        start, end = _window(data)
        orders = [state.order_payload(o) for o in state.orders(account) if start <= o.created_at <= end]
        return envelope(orders=orders)

    # -- positions and trades --------------------------------------------------------------
    @routes.post(px.POSITION_SEARCH_OPEN)
    async def positions_open(request: web.Request) -> web.Response:
        account = account_of(await body(request))
        if account is None:
            return envelope(px.SearchErrorCode.ACCOUNT_NOT_FOUND, "Account not found.", positions=[])
        return envelope(positions=state.position_payloads(account))

    @routes.post(px.POSITION_CLOSE)
    async def close_contract(request: web.Request) -> web.Response:
        return await _close(await body(request), partial=False)

    @routes.post(px.POSITION_PARTIAL_CLOSE)
    async def partial_close(request: web.Request) -> web.Response:
        return await _close(await body(request), partial=True)

    async def _close(data: dict[str, Any], *, partial: bool) -> web.Response:
        account = account_of(data)
        if account is None:
            return envelope(px.ClosePositionErrorCode.ACCOUNT_NOT_FOUND, "Account not found.")
        contract = state.contract(data.get("contractId"))
        if contract is None:
            return envelope(px.ClosePositionErrorCode.CONTRACT_NOT_FOUND, "Contract not found.")
        position = sim.exchange.account(account.name).positions.get(contract.symbol)
        net = position.net_quantity if position else 0
        size = int(data.get("size") or 0) if partial else abs(net)
        if net == 0 or size <= 0 or size > abs(net):
            return envelope(px.ClosePositionErrorCode.POSITION_NOT_FOUND, "Position not found.")
        side = parsing.SIDE_FROM_PX[px.OrderSide.ASK if net > 0 else px.OrderSide.BID]
        order, _ = sim.exchange.submit(account.name, symbol=contract.symbol, side=side, quantity=size)
        if order.status is OrderStatus.REJECTED:
            return envelope(px.ClosePositionErrorCode.ORDER_REJECTED, order.reason)
        return envelope()

    @routes.post(px.TRADE_SEARCH)
    async def trade_search(request: web.Request) -> web.Response:
        data = await body(request)
        account = account_of(data)
        if account is None:
            return envelope(px.SearchErrorCode.ACCOUNT_NOT_FOUND, "Account not found.", trades=[])
        start, end = _window(data)
        trades = [t for t in account.trades
                  if start <= (parsing.parse_time(t["creationTimestamp"]) or start) <= end]
        return envelope(trades=trades)

    return routes, gateway_middleware


def _order_kwargs(sim: "ProjectXSimulator", data: dict[str, Any], symbol: str) -> dict[str, Any]:
    """Gateway order fields → kernel submit arguments; raises ``ValueError`` with the refusal text."""
    try:
        kind = px.OrderType(int(data.get("type", 0)))
        side = parsing.SIDE_FROM_PX[px.OrderSide(int(data.get("side", -1)))]
        size = int(data.get("size", 0))
    except (ValueError, TypeError, KeyError):
        raise ValueError("Invalid order type, side or size.") from None
    if kind not in px.PLACEABLE_TYPES:
        raise ValueError(f"Order type {int(kind)} cannot be placed.")
    if size <= 0:
        raise ValueError("Order size must be positive.")
    limit = parsing.to_decimal(data.get("limitPrice"))
    stop = parsing.to_decimal(data.get("stopPrice"))
    trail = parsing.to_decimal(data.get("trailPrice"))
    last = sim.exchange.prices.price(symbol)
    order_type = parsing.TYPE_FROM_PX[kind]
    if kind is px.OrderType.LIMIT and limit is None:
        raise ValueError("Limit orders need a limitPrice.")
    if kind is px.OrderType.STOP and stop is None:
        raise ValueError("Stop orders need a stopPrice.")
    if kind is px.OrderType.TRAILING_STOP:
        if trail is None or trail <= 0:
            raise ValueError("Trailing stop orders need a positive trailPrice.")
        stop = last + side.sign * trail  # fixed at entry: the kernel has no trailing logic
    if kind in (px.OrderType.JOIN_BID, px.OrderType.JOIN_ASK):
        limit = last  # the simulator has one price, not a book: join at last
    return {
        "side": side,
        "quantity": size,
        "order_type": order_type,
        "limit_price": limit if order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None,
        "stop_price": stop if order_type in (OrderType.STOP, OrderType.STOP_LIMIT) else None,
        "bracket": _bracket(data, symbol),
    }


def _bracket(data: dict[str, Any], symbol: str) -> Bracket | None:
    """Brackets come in ticks; the kernel wants price distances (ticks × tick size)."""
    from ...instruments import instrument_for

    tick = instrument_for(symbol).tick_size
    stop_loss = data.get("stopLossBracket") or None
    take_profit = data.get("takeProfitBracket") or None
    if not stop_loss and not take_profit:
        return None

    def distance(spec: dict[str, Any] | None) -> Decimal | None:
        if not spec:
            return None
        ticks = int(spec.get("ticks", 0))
        if ticks <= 0:
            raise ValueError("Bracket ticks must be positive.")
        return tick * ticks

    return Bracket(take_profit=distance(take_profit), stop_loss=distance(stop_loss))


def _window(data: dict[str, Any]) -> tuple[datetime, datetime]:
    start = parsing.parse_time(data.get("startTimestamp")) or datetime.min.replace(tzinfo=timezone.utc)
    end = parsing.parse_time(data.get("endTimestamp")) or datetime.max.replace(tzinfo=timezone.utc)
    return start, end


async def _ack_delay(ms: float) -> None:
    if ms > 0:
        await asyncio.sleep(ms / 1000.0)
