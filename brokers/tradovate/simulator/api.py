"""Endpoint handlers shared by the REST routes and the WebSocket request channel.

Tradovate serves the same operations over both (``order/placeorder`` by POST or as a socket
request), so one dispatcher returns ``(status, payload)`` and each transport frames it. The
transport-level faults live here too, because they must behave identically on both paths:
``expire_token`` → 401, ``rate_limit_next`` → a penalty ticket (HTTP 200 with ``p-ticket``,
``p-time``, ``p-captcha``) or a bare 429, ``ack_delay_ms`` → a late order reply, and
``take_lose_response()`` → the order request is carried out, then its answer is lost: the
reply is :data:`LOST`, on which the REST route resets the connection and the socket never
answers. Nothing here dedupes ``clOrdId``: like the real API, a repeated one is a new order.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from ...instruments import instrument_for
from ...simkernel.exchange import SimError, SimExchange, SimOrder
from ...simkernel.faults import FaultSwitches
from .. import parsing
from .. import schemas as s
from ..answers import SHAPE_ERRORS
from .auth import BAD_LOGIN, Token, TokenStore, Users
from .book import TradovateBook
from .limits import Limits, endpoint_class

Json = dict[str, Any]
Reply = tuple[int, Any]
#: Status of a reply whose answer is lost after the request was carried out.
LOST_STATUS = 0
#: Requests ``calls`` keeps for tests; beyond it the oldest half goes (a long run stays bounded).
CALLS_KEPT = 10_000
LOST: Reply = (LOST_STATUS, None)

_MASTER_KEY = {
    "order": "accountId",
    "position": "accountId",
    "cashbalance": "accountId",
    "orderversion": "orderId",
    "fill": "orderId",
    "command": "orderId",
    "executionreport": "commandId",
    "commandreport": "commandId",
}
_ENTITY = {
    "order": s.ENTITY_ORDER,
    "position": s.ENTITY_POSITION,
    "cashbalance": s.ENTITY_CASH,
    "orderversion": s.ENTITY_VERSION,
    "fill": s.ENTITY_FILL,
    "command": s.ENTITY_COMMAND,
    "executionreport": s.ENTITY_EXEC,
    "commandreport": s.ENTITY_COMMAND_REPORT,
    "account": "account",
}
_NO_AUTH = {"auth/accesstokenrequest"}


class Api:
    def __init__(
        self,
        exchange: SimExchange,
        book: TradovateBook,
        tokens: TokenStore,
        users: Users,
        limits: Limits,
        *,
        rate_limit_reply: str = "penalty",
        bad_login_reply: str = "errorText",
    ) -> None:
        self.exchange = exchange
        self.book = book
        self.tokens = tokens
        self.users = users
        self.limits = limits
        self.rate_limit_reply = rate_limit_reply
        self.bad_login_reply = bad_login_reply  # "errorText" (reference page) or "401" (conformance pages)
        self.calls: list[tuple[str, Any]] = []  # (endpoint, body): tests read what arrived

    # -- faults ----------------------------------------------------------------------------
    def _faults(self) -> list[FaultSwitches]:
        return [self.exchange.account(name).faults for name in self.book.account_ids]

    def _refusal(self, endpoint: str, body: Any, token: str | None, peer: str) -> Reply | None:
        """The limits' answer (penalty ticket or 429) or the ``rate_limit_next`` fault's; None: go on."""
        session = self.tokens.lookup(token)
        user = self.users.by_id.get(session.user_id) if session else None
        name = user.name if user else (str(body.get("name")) if isinstance(body, dict) and body.get("name") else None)
        refused = self.limits.check(endpoint, body, user=name, peer=peer)
        if refused is not None:
            return refused
        if isinstance(body, dict) and s.PENALTY_TICKET in body:
            return None  # a honoured ticket: the resend goes through
        if any(f.take_rate_limit() for f in self._faults()):
            if self.rate_limit_reply == "429":
                return 429, None
            return self.limits.penalty(("fault", endpoint_class(endpoint)))
        return None

    def _ack_delay(self) -> float:
        return max((f.ack_delay_ms for f in self._faults()), default=0.0) / 1000.0

    # -- dispatch --------------------------------------------------------------------------
    async def call(
        self, endpoint: str, query: dict[str, str], body: Any, token: str | None, *, peer: str = ""
    ) -> Reply:
        """``(status, payload)`` of one request. A body of the wrong shape (text for a number, a
        list for an id, an id too big for the book) is a 400 with the reason — the simulator
        answers a client's garbage, it never falls over on it."""
        try:
            return await self._call(endpoint, query, body, token, peer=peer)
        except SHAPE_ERRORS as exc:
            return 400, f"Bad request: {type(exc).__name__}: {str(exc)[:200]}"

    async def _call(
        self, endpoint: str, query: dict[str, str], body: Any, token: str | None, *, peer: str = ""
    ) -> Reply:
        endpoint = endpoint.strip("/").lower()
        self.calls.append((endpoint, body))
        if len(self.calls) > CALLS_KEPT:
            del self.calls[: CALLS_KEPT // 2]
        refused = self._refusal(endpoint, body, token, peer)
        if refused is not None:
            return refused
        if endpoint in _NO_AUTH:
            return self._access_token(body if isinstance(body, dict) else {})
        session = self.tokens.lookup(token)
        if session is None:
            return 401, "Access is denied"
        if any(f.take_expire_token() for f in self._faults()):
            self.tokens.expire(session.value)
            return 401, "Expired Access Token"
        return await self._authorized(endpoint, query, body if isinstance(body, dict) else {}, session)

    async def _authorized(self, endpoint: str, query: dict[str, str], body: Json, session: Token) -> Reply:
        user = self.users.by_id[session.user_id]
        mine = set(user.accounts)
        if endpoint == "auth/renewaccesstoken":
            renewed = self.tokens.renew(session.value)
            assert renewed is not None
            return 200, s.access_token_response(renewed.value, renewed.value, renewed.expires, user.user_id, user.name)
        if endpoint == "auth/me":
            return 200, {"userId": user.user_id, "name": user.name, "fullName": user.name}
        if endpoint == "user/syncrequest":
            return 200, self.book.snapshot(self._sync_accounts(body, mine))
        if endpoint.startswith("order/") and endpoint.split("/")[1] in _ORDER_OPS:
            if not self._owns(body, mine):  # another user's account or order: as if unknown
                return 200, {"failureReason": "Unauthorized", "failureText": "Access is denied"}
            reply = await _ORDER_OPS[endpoint.split("/")[1]](self, body)
            delay = self._ack_delay()
            if delay:
                await asyncio.sleep(delay)
            return reply
        if endpoint.startswith("contract/"):
            return self._contract(endpoint.split("/")[1], query)
        return self._entities(endpoint, query, mine)

    def _sync_accounts(self, body: Json, mine: set[str]) -> set[str]:
        wanted = body.get("accounts")
        if wanted:
            return {self.book.account_names[int(a)] for a in wanted if int(a) in self.book.account_names} & mine
        return mine

    def _owns(self, body: Json, mine: set[str]) -> bool:
        """Each user sees and trades only its own accounts (per-login visibility)."""
        if body.get("accountId") is not None or body.get("accountSpec") is not None:
            name = self._account_name(body)
            if name is not None and name not in mine:
                return False
        if body.get("orderId") is not None:
            rec = self.book.order_rec(int(body["orderId"]))
            if rec is not None and rec.account not in mine:
                return False
        return True

    # -- auth ------------------------------------------------------------------------------
    def _access_token(self, body: Json) -> Reply:
        """A new session for good credentials; a bad login as the docs show it (200 + errorText),
        or as HTTP 401 when ``bad_login_reply="401"`` (the conformance pages' wording)."""
        user = self.users.check(body)
        if user is None:
            if self.bad_login_reply == "401":
                return 401, BAD_LOGIN
            return 200, dict(s.auth_error(BAD_LOGIN))
        token = self.tokens.open_session(user.user_id)
        return 200, dict(s.access_token_response(token.value, token.value, token.expires, user.user_id, user.name))

    # -- reads -----------------------------------------------------------------------------
    def _contract(self, op: str, query: dict[str, str]) -> Reply:
        if op == "find":
            try:
                instrument_for(query.get("name", ""))
            except (KeyError, ValueError):
                return 404, None
            return 200, self.book.contract(self.book.contract_id(query["name"]))
        if op == "item":
            found = self.book.contract(int(query.get("id", 0)))
            return (200, found) if found else (404, None)
        if op == "items":
            ids = [int(i) for i in query.get("ids", "").split(",") if i]
            return 200, [c for c in (self.book.contract(i) for i in ids) if c]
        return 404, None

    def _entities(self, endpoint: str, query: dict[str, str], mine: set[str]) -> Reply:
        kind, _, op = endpoint.partition("/")
        if kind not in _ENTITY:
            return 404, None
        rows = self.book.tables.of(_ENTITY[kind], mine)
        if op == "list":
            return 200, rows
        if op == "item":
            found = [r for r in rows if str(r["id"]) == query.get("id")]
            return (200, found[0]) if found else (404, None)
        if op == "items":
            ids = set(query.get("ids", "").split(","))
            return 200, [r for r in rows if str(r["id"]) in ids]
        if op == "find" and kind == "account":
            found = [r for r in rows if r["name"] == query.get("name")]
            return (200, found[0]) if found else (404, None)
        if op in ("deps", "ldeps") and kind in _MASTER_KEY:
            masters = set((query.get("masterid") or query.get("masterids") or "").split(","))
            return 200, [r for r in rows if str(r.get(_MASTER_KEY[kind])) in masters]
        return 404, None

    # -- order entry -------------------------------------------------------------------------
    def _account_name(self, body: Json) -> str | None:
        if body.get("accountId") is not None:
            return self.book.account_names.get(int(body["accountId"]))
        spec = body.get("accountSpec")
        return spec if spec in self.book.account_ids else None

    def _submit(
        self, account: str, spec: Json, *, cl_ord_id: str | None, oco: str | None = None, parent: str | None = None
    ) -> tuple[SimOrder, bool]:
        return self.exchange.submit(
            account,
            symbol=str(spec["symbol"]).upper(),
            side=parsing.side(spec["action"]),
            quantity=int(spec.get("orderQty", 0)),
            order_type=parsing.order_type_from(spec.get("orderType")),
            limit_price=parsing.price_in(spec.get("price")),
            stop_price=parsing.price_in(spec.get("stopPrice")),
            time_in_force=parsing.tif_from(spec.get("timeInForce")),
            client_order_id=cl_ord_id,
            oco_group=oco,
            parent_id=parent,
        )

    def _result(self, order: SimOrder) -> Json:
        if order.status.value == "rejected":
            return {
                "failureReason": parsing.failure_reason(order.reason),
                "failureText": order.reason or "",
                "orderId": int(order.order_id),
            }
        return {"orderId": int(order.order_id)}

    async def _place(self, body: Json) -> Reply:
        account = self._account_name(body)
        if account is None:
            return 200, {"failureReason": "Unauthorized", "failureText": "Unknown account"}
        order, _ = self._submit(account, body, cl_ord_id=body.get("clOrdId"))
        return self._answer(account, (200, self._result(order)))

    def _answer(self, account: str, reply: Reply) -> Reply:
        """``reply``, unless the account's faults say this answer is lost (after the fact)."""
        return LOST if self.exchange.account(account).faults.take_lose_response() else reply

    async def _place_oco(self, body: Json) -> Reply:
        account = self._account_name(body)
        if account is None:
            return 200, {"failureReason": "Unauthorized", "failureText": "Unknown account"}
        group = f"oco-{secrets.token_hex(4)}"
        first, _ = self._submit(account, body, cl_ord_id=body.get("clOrdId"), oco=group)
        leg = body.get("other") or {}
        other = {**leg, "symbol": body["symbol"], "orderQty": body.get("orderQty")}
        second, _ = self._submit(account, other, cl_ord_id=leg.get("clOrdId"), oco=group)
        result = self._result(first)
        result["ocoId"] = int(second.order_id)
        return self._answer(account, (200, result))

    async def _place_oso(self, body: Json) -> Reply:
        """Entry now; ``bracket1`` (and ``bracket2``, the two linked OCO) are orders at once,
        held until the entry fills. The answer names all three: ``orderId``, ``oso1Id``, ``oso2Id``."""
        account = self._account_name(body)
        if account is None:
            return 200, {"failureReason": "Unauthorized", "failureText": "Unknown account"}
        brackets = [b for b in (body.get("bracket1"), body.get("bracket2")) if isinstance(b, dict)]
        if not brackets:
            return 200, {"failureReason": "UnknownReason", "failureText": "placeOSO needs bracket1"}
        entry, _ = self._submit(account, body, cl_ord_id=body.get("clOrdId"))
        result = self._result(entry)
        if "failureReason" in result:
            return self._answer(account, (200, result))
        group = f"oso-{entry.order_id}" if len(brackets) == 2 else None
        for key, bracket in zip(("oso1Id", "oso2Id"), brackets, strict=False):  # one or two brackets
            spec = {**bracket, "symbol": body["symbol"], "orderQty": body.get("orderQty")}
            child, _ = self._submit(account, spec, cl_ord_id=bracket.get("clOrdId"), oco=group, parent=entry.order_id)
            result[key] = int(child.order_id)
        return self._answer(account, (200, result))

    async def _modify(self, body: Json) -> Reply:
        order_id = int(body.get("orderId", 0))
        rec = self.book.order_rec(order_id)
        if rec is None:
            return 200, {"failureReason": "UnknownReason", "failureText": f"Unknown order {order_id}"}
        command_id = self.book.begin_command(order_id, s.CMD_MODIFY, body.get("clOrdId"))
        try:
            self.exchange.modify(
                rec.account,
                str(order_id),
                quantity=body.get("orderQty"),
                limit_price=parsing.price_in(body.get("price")),
                stop_price=parsing.price_in(body.get("stopPrice")),
            )
        except SimError as exc:
            self.book.reject_command(command_id, order_id, "TooLate", str(exc))
            return self._answer(
                rec.account,
                (
                    200,
                    {
                        "failureReason": parsing.failure_reason(str(exc)),
                        "failureText": str(exc),
                        "commandId": command_id,
                    },
                ),
            )
        self.book.finish_command(command_id)
        return self._answer(rec.account, (200, {"commandId": command_id}))

    async def _cancel(self, body: Json) -> Reply:
        order_id = int(body.get("orderId", 0))
        rec = self.book.order_rec(order_id)
        if rec is None:
            return 200, {"failureReason": "UnknownReason", "failureText": f"Unknown order {order_id}"}
        command_id = self.book.begin_command(order_id, s.CMD_CANCEL, body.get("clOrdId"))
        try:
            self.exchange.cancel(rec.account, str(order_id))
        except SimError as exc:
            self.book.reject_command(command_id, order_id, "TooLate", str(exc))
            return self._answer(
                rec.account,
                (
                    200,
                    {
                        "failureReason": parsing.failure_reason(str(exc)),
                        "failureText": str(exc),
                        "commandId": command_id,
                    },
                ),
            )
        self.book.finish_command(command_id)
        return self._answer(rec.account, (200, {"commandId": command_id}))

    async def _liquidate(self, body: Json) -> Reply:
        account = self._account_name(body)
        symbol = self.book.symbols.get(int(body.get("contractId", 0)))
        if account is None or symbol is None:
            return 200, {"failureReason": "UnknownReason", "failureText": "Unknown account or contract"}
        closing = self.exchange.flatten(account, symbol)
        return self._answer(account, (200, {"orderId": int(closing[0].order_id)} if closing else {}))


_ORDER_OPS = {
    "placeorder": Api._place,
    "placeoco": Api._place_oco,
    "placeoso": Api._place_oso,
    "modifyorder": Api._modify,
    "cancelorder": Api._cancel,
    "liquidateposition": Api._liquidate,
}

__all__ = ["LOST", "LOST_STATUS", "Api"]
