"""The gateway's REST surface: POST JSON in, ``{success, errorCode, errorMessage}`` envelopes out.

Authentication, the rate limit and the transport faults run in one middleware so every
endpoint gets them the way the real gateway applies them: 401 without a live bearer token,
429 beyond the budget (no body, no headers), errors inside a 200 envelope otherwise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .. import parsing
from .. import schemas as px
from .orders import order_routes
from .state import GatewayAccount
from .wire import USER, bearer, envelope

__all__ = ["USER", "bearer", "build_routes", "envelope"]

if TYPE_CHECKING:
    from .server import ProjectXSimulator

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_PUBLIC = {px.LOGIN_KEY, "/api/Auth/loginApp"}


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
        if claims is None or claims.user not in sim.logins:
            return web.Response(status=401)
        own = sim.kernel_accounts(claims.user)
        if any(a.faults.take_expire_token() for a in own):
            sim.tokens.expire(claims)
        if not sim.tokens.is_live(claims) and request.path != px.VALIDATE:
            return web.Response(status=401)
        if any(a.faults.take_rate_limit() for a in own) or not sim.admit(claims.user, request.path):
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

    def account_of(request: web.Request, data: dict[str, Any]) -> GatewayAccount | None:
        """The request's account, if the caller's login sees it (another user's is "not found")."""
        account = state.by_id(data.get("accountId"))
        if account is None or not sim.visible(request[USER].user, account.name):
            return None
        return account

    # -- auth --------------------------------------------------------------------------
    @routes.post(px.LOGIN_KEY)
    async def login_key(request: web.Request) -> web.Response:
        data = await body(request)
        login = sim.logins.get(str(data.get("userName")))
        if login is None:
            return envelope(px.LoginErrorCode.USER_NOT_FOUND, "User not found.", token=None)
        if data.get("apiKey") != login.secret:
            return envelope(px.LoginErrorCode.INVALID_CREDENTIALS, "Invalid credentials.", token=None)
        if not sim.admit(login.username, px.LOGIN_KEY):
            return web.Response(status=429)
        return envelope(token=sim.tokens.issue(login.username))

    @routes.post(px.VALIDATE)
    async def validate(request: web.Request) -> web.Response:
        # The docs (Validate Session): an expired token is re-validated for a new one; a forged one is not.
        return envelope(newToken=sim.tokens.issue(request[USER].user))

    # -- lookups -----------------------------------------------------------------------
    @routes.post(px.ACCOUNT_SEARCH)
    async def account_search(request: web.Request) -> web.Response:
        data = await body(request)
        only_active = bool(data.get("onlyActiveAccounts", True))
        user = request[USER].user
        accounts = [state.account_payload(a) for a in state.accounts.values()
                    if sim.visible(user, a.name) and (a.can_trade or not only_active)]
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

    order_routes(sim, routes, body, account_of)

    @routes.post(px.ORDER_SEARCH_OPEN)
    async def search_open(request: web.Request) -> web.Response:
        request_data = await body(request)
        account = account_of(request, request_data)
        if account is None:
            return envelope(px.SearchErrorCode.ACCOUNT_NOT_FOUND, "Account not found.", orders=[])
        # Suspended bracket children are not kernel orders yet, so they are not listed (as observed).
        orders = [state.order_payload(o) for o in state.orders(account) if not o.status.is_final]
        return envelope(orders=orders)

    @routes.post(px.ORDER_SEARCH)
    async def search_orders(request: web.Request) -> web.Response:
        data = await body(request)
        account = account_of(request, data)
        if account is None:
            return envelope(px.SearchErrorCode.ACCOUNT_NOT_FOUND, "Account not found.", orders=[])
        start, end = _window(data)
        orders = [state.order_payload(o) for o in state.orders(account) if start <= o.created_at <= end]
        return envelope(orders=orders)

    # -- positions and trades --------------------------------------------------------------
    @routes.post(px.POSITION_SEARCH_OPEN)
    async def positions_open(request: web.Request) -> web.Response:
        request_data = await body(request)
        account = account_of(request, request_data)
        if account is None:
            return envelope(px.SearchErrorCode.ACCOUNT_NOT_FOUND, "Account not found.", positions=[])
        return envelope(positions=state.position_payloads(account))

    @routes.post(px.TRADE_SEARCH)
    async def trade_search(request: web.Request) -> web.Response:
        data = await body(request)
        account = account_of(request, data)
        if account is None:
            return envelope(px.SearchErrorCode.ACCOUNT_NOT_FOUND, "Account not found.", trades=[])
        start, end = _window(data)
        trades = [t for t in account.trades
                  if start <= (parsing.parse_time(t["creationTimestamp"]) or start) <= end]
        return envelope(trades=trades)

    return routes, gateway_middleware


def _window(data: dict[str, Any]) -> tuple[datetime, datetime]:
    start = parsing.parse_time(data.get("startTimestamp")) or datetime.min.replace(tzinfo=timezone.utc)
    end = parsing.parse_time(data.get("endTimestamp")) or datetime.max.replace(tzinfo=timezone.utc)
    return start, end
