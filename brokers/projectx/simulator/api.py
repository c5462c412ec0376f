"""The gateway's HTTP surface as one object: POST JSON in, ``{success, errorCode, errorMessage}``
envelopes out, plus the user hub's two routes.

Built the way the Tradovate simulator is: the simulator owns the state, :class:`GatewayApi`
holds the handlers as methods, and :meth:`GatewayApi.routes` is the one table of every route.
Authentication, the rate limit and the transport faults run in one middleware so every
endpoint gets them the way the real gateway applies them: 401 without a live bearer token,
429 beyond the budget (no body, no headers), errors inside a 200 envelope otherwise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .. import parsing
from .. import schemas as px
from .orders import OrderDesk
from .wire import USER, account_of, bearer, envelope, read_body

if TYPE_CHECKING:
    from .server import ProjectXSimulator

__all__ = ["GatewayApi"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_PUBLIC = {px.LOGIN_KEY, "/api/Auth/loginApp"}


class GatewayApi:
    """Every REST handler of the simulated gateway (orders on :class:`OrderDesk`)."""

    def __init__(self, sim: ProjectXSimulator) -> None:
        self.sim = sim
        self.state = sim.state
        self.orders = OrderDesk(sim)

    def routes(self) -> list[web.RouteDef]:
        """The one table of routes the simulator serves."""
        orders, hub = self.orders, self.sim.hub
        return [
            web.post(px.LOGIN_KEY, self.login_key),
            web.post(px.VALIDATE, self.validate),
            web.post(px.ACCOUNT_SEARCH, self.account_search),
            web.post(px.CONTRACT_SEARCH, self.contract_search),
            web.post(px.CONTRACT_AVAILABLE, self.contract_available),
            web.post(px.CONTRACT_SEARCH_BY_ID, self.contract_by_id),
            web.post(px.ORDER_PLACE, orders.place),
            web.post(px.ORDER_MODIFY, orders.modify),
            web.post(px.ORDER_CANCEL, orders.cancel),
            web.post(px.POSITION_CLOSE, orders.close_contract),
            web.post(px.POSITION_PARTIAL_CLOSE, orders.partial_close),
            web.post(px.ORDER_SEARCH_OPEN, self.search_open),
            web.post(px.ORDER_SEARCH, self.search_orders),
            web.post(px.POSITION_SEARCH_OPEN, self.positions_open),
            web.post(px.TRADE_SEARCH, self.trade_search),
            web.post(px.USER_HUB_PATH + "/negotiate", hub.negotiate),
            web.get(px.USER_HUB_PATH, hub.websocket),
        ]

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Latency, bearer token, the expire_token / rate_limit faults and the rate window."""
        sim = self.sim
        if not request.path.startswith("/api/"):
            return await handler(request)
        transport = request.transport
        sim.rest_requests.append((request.path, transport.get_extra_info("peername") if transport else None))
        await sim.latency.wait()
        if request.path in _PUBLIC:
            return self._garbage_or(request, await _handle(handler, request))
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
        return self._garbage_or(request, await _handle(handler, request))

    def _garbage_or(self, request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        """The garbage-answer fault: the request was carried out; it is answered with the bytes
        queued for its path (``ProjectXSimulator.answer_garbage``), when there are any."""
        garbage = self.sim.garbage_answers.get(request.path)
        if garbage:
            return web.Response(status=200, body=garbage.pop(0), content_type="application/json")
        return response

    # -- auth --------------------------------------------------------------------------
    async def login_key(self, request: web.Request) -> web.Response:
        sim = self.sim
        data = await read_body(request)
        login = sim.logins.get(str(data.get("userName")))
        if login is None:
            return envelope(px.LoginErrorCode.USER_NOT_FOUND, "User not found.", token=None)
        if data.get("apiKey") != login.secret:
            return envelope(px.LoginErrorCode.INVALID_CREDENTIALS, "Invalid credentials.", token=None)
        if not sim.admit(login.username, px.LOGIN_KEY):
            return web.Response(status=429)
        return envelope(token=sim.tokens.issue(login.username))

    async def validate(self, request: web.Request) -> web.Response:
        # The docs (Validate Session): an expired token is re-validated for a new one; a forged one is not.
        return envelope(newToken=self.sim.tokens.issue(request[USER].user))

    # -- lookups -----------------------------------------------------------------------
    async def account_search(self, request: web.Request) -> web.Response:
        data = await read_body(request)
        only_active = bool(data.get("onlyActiveAccounts", True))
        user = request[USER].user
        accounts = [
            self.state.account_payload(a)
            for a in self.state.accounts.values()
            if self.sim.visible(user, a.name) and (a.can_trade or not only_active)
        ]
        return envelope(accounts=accounts)

    async def contract_search(self, request: web.Request) -> web.Response:
        data = await read_body(request)
        text = str(data.get("searchText") or "")
        return envelope(contracts=[c.payload() for c in self.state.search_contracts(text)])

    async def contract_available(self, request: web.Request) -> web.Response:
        return envelope(contracts=[c.payload() for c in self.state.front.values()])

    async def contract_by_id(self, request: web.Request) -> web.Response:
        contract = self.state.contract((await read_body(request)).get("contractId"))
        if contract is None:
            return envelope(1, "Contract not found.", contract=None, contracts=[])
        # Newer gateways answer ``contract``; the docs page still shows a ``contracts`` list.
        return envelope(contract=contract.payload(), contracts=[contract.payload()])

    # -- orders, positions and trades ----------------------------------------------------
    async def search_open(self, request: web.Request) -> web.Response:
        data = await read_body(request)
        account = account_of(self.sim, request, data)
        if account is None:
            return envelope(px.SearchErrorCode.ACCOUNT_NOT_FOUND, "Account not found.", orders=[])
        # Suspended bracket children are not kernel orders yet, so they are not listed (as observed).
        orders = [self.state.order_payload(o) for o in self.state.orders(account) if not o.status.is_final]
        return envelope(orders=orders)

    async def search_orders(self, request: web.Request) -> web.Response:
        data = await read_body(request)
        account = account_of(self.sim, request, data)
        if account is None:
            return envelope(px.SearchErrorCode.ACCOUNT_NOT_FOUND, "Account not found.", orders=[])
        start, end = _window(data)
        orders = [self.state.order_payload(o) for o in self.state.orders(account) if start <= o.created_at <= end]
        return envelope(orders=orders)

    async def positions_open(self, request: web.Request) -> web.Response:
        data = await read_body(request)
        account = account_of(self.sim, request, data)
        if account is None:
            return envelope(px.SearchErrorCode.ACCOUNT_NOT_FOUND, "Account not found.", positions=[])
        return envelope(positions=self.state.position_payloads(account))

    async def trade_search(self, request: web.Request) -> web.Response:
        data = await read_body(request)
        account = account_of(self.sim, request, data)
        if account is None:
            return envelope(px.SearchErrorCode.ACCOUNT_NOT_FOUND, "Account not found.", trades=[])
        start, end = _window(data)
        trades = [t for t in account.trades if start <= (parsing.parse_time(t["creationTimestamp"]) or start) <= end]
        return envelope(trades=trades)


def _window(data: dict[str, Any]) -> tuple[datetime, datetime]:
    start = parsing.parse_time(data.get("startTimestamp")) or datetime.min.replace(tzinfo=UTC)
    end = parsing.parse_time(data.get("endTimestamp")) or datetime.max.replace(tzinfo=UTC)
    return start, end


async def _handle(handler: Handler, request: web.Request) -> web.StreamResponse:
    """The route's answer; a body of the wrong shape (text for a number, a list for an id) is a
    400 with the reason, as ASP.NET Core's model binding answers it: the simulator never falls
    over on a client's garbage."""
    try:
        return await handler(request)
    except (KeyError, IndexError, TypeError, ValueError, ArithmeticError) as exc:
        return web.json_response(
            {"title": "One or more validation errors occurred.", "status": 400, "detail": str(exc)[:200]},
            status=400,
        )
