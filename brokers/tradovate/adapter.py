"""TradovateAdapter: the BrokerAdapter contract over Tradovate's REST + WebSocket API.

Commands go by REST, events come by the user WebSocket (see :mod:`.transport` for why).
Our client order id is sent as ``clOrdId`` on every request that creates an order. Tradovate
documents no uniqueness for it: a repeated ``clOrdId`` is a second order. So a place is never
resent after the request may have left (timeout, reset, 5xx): it fails with
``BrokerUnavailable(sent=True)`` and the executor asks :meth:`TradovateAdapter.lookup`, which
reads the broker's own order and command entities, before it places again. A 401 or a penalty
ticket is resent: the server refused those requests without carrying them out.
``isAutomated: true`` is sent on every order, as Tradovate requires for non-human orders.
Options: ``appId``, ``appVersion``, ``cid``, ``sec``, ``deviceId``, ``renew_margin_s``,
``heartbeat_s``, ``request_timeout_s``, ``rate_limits``, ``ws_url``, ``live``, ``warm_every_s``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from decimal import Decimal
from typing import Any, ClassVar

import aiohttp

from ...common.ratewindow import SlidingWindow
from ...common.retrying import keep_running
from ...common.tasks import stop_task
from ..base import BrokerAdapter, SessionConfig
from ..errors import AuthenticationFailed, BrokerError, BrokerUnavailable, OrderRejected, UnknownOrder
from ..model import (
    AccountSnapshot,
    BrokerEvent,
    CancelOrder,
    Capabilities,
    ConnectionState,
    FillEvent,
    FlattenPosition,
    ModifyOrder,
    OrderAck,
    OrderEvent,
    OrderStatus,
    PlaceOrder,
    PositionEvent,
    SessionHealth,
)
from ..ratebudget import Priority, RateBudget
from ..warm_http import keep_warm, rest_session, socket_session
from ..wire import excerpt
from . import answers, codec, parsing
from . import schemas as s
from .bracket_orders import BracketDesk
from .config import TradovateConfig
from .flatten import flatten as flatten_account
from .lookup import lookup_order
from .state import EntityCache
from .transport import RestClient, UserSocket

log = logging.getLogger(__name__)
Json = dict[str, Any]
_STATES = {
    "connected": ConnectionState.CONNECTED,
    "connecting": ConnectionState.CONNECTING,
    "degraded": ConnectionState.DEGRADED,
}
#: Unreadable answers kept for health and the tests (the newest; older ones are in the log).
BAD_ANSWERS_KEPT = 50
#: At most this many BAD_ANSWER log lines per window and session; the rest are counted, and
#: the next line says how many: a broker that sends garbage in a burst must not flood the log.
BAD_ANSWER_LOG = (20, 60.0)


class TradovateAdapter(BrokerAdapter):
    platform: ClassVar[str] = "tradovate"
    capabilities: ClassVar[Capabilities] = Capabilities(brackets=True, oco=False, fill_corrections=True)

    def __init__(self, config: SessionConfig) -> None:
        super().__init__(config)
        self.tv = TradovateConfig.from_session(config)
        self.budget = RateBudget([tuple(x) for x in self.tv.limits], name=f"tradovate:{config.session_id}")  # type: ignore[misc]  # pairs
        self._http: aiohttp.ClientSession | None = None
        self._socket_http: aiohttp.ClientSession | None = None
        self.rest: RestClient | None = None
        self.socket: UserSocket | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._account_ids: dict[str, int] = {}  # our id → Tradovate accountId
        self._symbols: dict[int, str] = {}
        self._contracts: dict[str, int] = {}
        self.cache = EntityCache({}, self._symbol)
        self.cache.on_protocol_error = self._protocol_error
        self.bad_answers: deque[BrokerError] = deque(maxlen=BAD_ANSWERS_KEPT)
        self.bad_answer_count = 0
        self._bad_log = SlidingWindow(*BAD_ANSWER_LOG)
        self._bad_unlogged = 0
        self.brackets = BracketDesk(
            self._rest,
            lambda reply: self._raise_failure(reply, rejected=True),
            self._background_error,
            self._known_order_id,
        )

    # -- lifecycle -----------------------------------------------------------------------------
    async def connect(self) -> None:
        if self._state is ConnectionState.CONNECTED:
            return
        self._set_state(ConnectionState.CONNECTING)
        self._http = rest_session()
        self._socket_http = socket_session()  # the socket never takes the REST pool's connection
        previous, self.rest = self.rest, RestClient(self.tv, self._http, self.budget)
        if previous is not None:
            self.rest.adopt(previous)  # a reconnect reuses the session (two per user at most)
        try:
            await self.rest.ensure_token()
            await self._load_accounts()
            self.socket = UserSocket(
                self.tv,
                self._socket_http,
                self.rest,
                self._on_sync,
                self._on_props,
                self._on_state,
                self._protocol_error,
            )
            loop = asyncio.get_running_loop()
            self._tasks = [
                loop.create_task(self.socket.run()),
                loop.create_task(self._keep_token()),
                loop.create_task(self._keep_warm(self.rest)),
            ]
            await asyncio.wait_for(asyncio.shield(self.socket.ready), self.tv.request_timeout_s)
        except BaseException as exc:
            await self._teardown()
            self._set_state(ConnectionState.DISCONNECTED, str(exc))
            if isinstance(exc, asyncio.TimeoutError):
                raise BrokerUnavailable("tradovate websocket did not sync in time") from exc
            raise

    async def disconnect(self) -> None:
        await self._teardown()
        self._set_state(ConnectionState.DISCONNECTED)

    async def _teardown(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            await stop_task(task, Exception)
        self._tasks = []
        self.brackets.cancel()
        if self.socket is not None:
            await self.socket.close()
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._socket_http is not None:
            await self._socket_http.close()
            self._socket_http = None

    async def _load_accounts(self) -> None:
        assert self.rest is not None
        listed = await self.rest.call("account/list", method="GET", priority=Priority.CANCEL)
        by_name = answers.accounts(listed)
        missing = [n for n in self.config.accounts.values() if n not in by_name]
        if missing:
            raise AuthenticationFailed(f"accounts not visible to this login: {missing}", code="account")
        self._account_ids = {ours: by_name[name] for ours, name in self.config.accounts.items()}
        self.cache.our_ids.update({tv: ours for ours, tv in self._account_ids.items()})

    async def _keep_warm(self, rest: RestClient) -> None:
        """An idle REST session sends ``auth/me`` now and then, so the next order finds its
        connection open (``brokers/warm_http.py``)."""
        await keep_warm(
            rest.last_use,
            lambda: rest.call("auth/me", method="GET", priority=Priority.ENTRY),
            self.tv.warm_every_s,
            lambda: self.budget.headroom,
            what="tradovate",
        )

    async def _keep_token(self) -> None:
        """Renew ahead of expiry so no order ever waits for an auth round trip."""
        assert self.rest is not None
        rest = self.rest

        async def renew_when_due() -> None:
            await asyncio.sleep(max(0.05, rest.seconds_to_renewal()))
            await rest.ensure_token()

        # A failed renewal is retried with growing pauses (a request's 401 recovers the
        # session meanwhile), never in a tight loop against the login budget.
        await keep_running(renew_when_due, "tradovate token renewal", first_s=1.0, max_s=30.0, level=logging.WARNING)

    # -- socket callbacks ----------------------------------------------------------------------
    async def _on_sync(self, snapshot: Json, first: bool) -> None:
        self._remember_contracts(snapshot.get("contracts"))
        for event in await self.cache.apply_snapshot(snapshot, emit=not first):
            self._publish(event)

    async def _on_props(self, data: Json) -> None:
        kind = data.get("entityType")
        if not isinstance(kind, str):
            self._protocol_error(codec.CodecError("props push without an entityType", answers.raw_text(data)))
            return
        for event in await self.cache.apply(kind, data.get("entity")):
            self._publish(event)

    def _remember_contracts(self, contracts: Any) -> None:
        for contract in contracts if isinstance(contracts, list) else []:
            try:
                found = answers.contract(contract)
            except codec.CodecError as exc:
                self._protocol_error(exc)
                continue
            if found is not None:
                self._remember_contract(*found)

    def _publish(self, event: BrokerEvent) -> None:
        self._emit(event)
        if isinstance(event, FillEvent):
            self.brackets.on_fill(event)
        elif isinstance(event, OrderEvent):
            self.brackets.on_order(event)

    def _known_order_id(self, tv_account: int, cl_ord_id: str) -> int | None:
        view = self.cache.order_for(tv_account, cl_ord_id)
        return view.order_id if view is not None else None

    def _background_error(self, text: str) -> None:
        self._last_error = text

    def _protocol_error(self, exc: BrokerError) -> None:
        """An unreadable value, item or frame from the broker (``UnknownEnumValue`` or
        ``CodecError``, each with its ``raw`` text): logged, kept in ``bad_answers`` and shown by
        health as ``BAD_ANSWER``; the session reads on."""
        raw = getattr(exc, "raw", None)
        self.bad_answer_count += 1
        if self._bad_log.admit():
            more = f" ({self._bad_unlogged} more not logged)" if self._bad_unlogged else ""
            log.error("tradovate session %s: BAD_ANSWER %s; raw: %s%s", self.config.session_id, exc, raw, more)
            self._bad_unlogged = 0
        else:
            self._bad_unlogged += 1
        self.bad_answers.append(exc)
        self._last_error = f"BAD_ANSWER: {exc}; raw: {excerpt(str(raw), 300)}"

    def _on_state(self, state: str, reason: str | None) -> None:
        self._set_state(_STATES.get(state, ConnectionState.DEGRADED), reason)

    # -- contracts -------------------------------------------------------------------------------
    def _remember_contract(self, contract_id: int, name: str) -> None:
        self._symbols[contract_id], self._contracts[name.upper()] = name, contract_id

    async def _symbol(self, contract_id: int, placed: str | None = None) -> str:
        """A contract's name. ``placed``: the name we placed an order of it under, learned
        without a request (an order's pushes name its contract by id only)."""
        if contract_id not in self._symbols and placed is not None:
            if contract_id:
                self._remember_contract(contract_id, placed)
            return placed
        if contract_id not in self._symbols:
            found = await self._rest().call(
                "contract/item", method="GET", query={"id": contract_id}, priority=Priority.CANCEL
            )
            named = answers.contract(found)
            self._remember_contract(contract_id, named[1] if named else str(contract_id))
        return self._symbols[contract_id]

    async def _contract_id(self, symbol: str) -> int:
        if symbol.upper() not in self._contracts:
            found = await self._rest().call(
                "contract/find", method="GET", query={"name": symbol.upper()}, priority=Priority.EXIT
            )
            named = answers.contract(found or None)
            if named is None:
                raise OrderRejected(f"unknown contract {symbol}", code="InvalidContract")
            self._remember_contract(*named)
        return self._contracts[symbol.upper()]

    # -- orders ----------------------------------------------------------------------------------
    def _rest(self) -> RestClient:
        if self.rest is None or self._state is ConnectionState.DISCONNECTED:
            raise BrokerUnavailable(f"tradovate session {self.config.session_id} is not connected", sent=False)
        return self.rest

    async def place(self, command: PlaceOrder) -> OrderAck:
        rest = self._rest()
        account_id = self._account_ids[command.account_id]
        body = s.place_order_body(
            self.broker_account(command.account_id),
            account_id,
            command.client_order_id,
            parsing.action(command.side),
            command.symbol.upper(),
            command.quantity,
            parsing.order_type(command.order_type),
            parsing.price_out(command.limit_price),
            parsing.price_out(command.stop_price),
            parsing.tif(command.time_in_force),
        )
        self.cache.placing_order(command.client_order_id, command.symbol.upper())
        if command.bracket is not None:
            return await self._place_bracketed(command, account_id, body)
        reply = await rest.call("order/placeorder", body, priority=Priority.ENTRY)
        self._raise_failure(reply, rejected=True)
        order_id = answers.order_id(reply)
        self.cache.provisional(order_id, account_id, self._contracts.get(command.symbol.upper(), 0), body)
        return OrderAck(command.account_id, command.client_order_id, str(order_id), self.cache.status_of(order_id))

    async def _place_bracketed(self, command: PlaceOrder, account_id: int, entry: Json) -> OrderAck:
        """Entry and exits (see :mod:`.bracket_orders`); never resent after it may have left."""
        reply, body = await self.brackets.place(command, entry, self.broker_account(command.account_id), account_id)
        contract_id = self._contracts.get(command.symbol.upper(), 0)
        order_id = answers.order_id(reply)
        self.cache.provisional(order_id, account_id, contract_id, entry)
        for key, version in (("oso1Id", body.get("bracket1")), ("oso2Id", body.get("bracket2"))):
            if reply.get(key) is not None and version is not None:
                self.cache.provisional(
                    answers.order_id(reply, key),
                    account_id,
                    contract_id,
                    {**version, "orderQty": command.quantity},
                    status=s.SUSPENDED,
                )
        return OrderAck(command.account_id, command.client_order_id, str(order_id), self.cache.status_of(order_id))

    async def lookup(self, account_id: str, client_order_id: str) -> OrderAck | None:
        """Ask Tradovate, not the cache: the account's orders, then their commands' ``clOrdId``.

        The Order entity has no clOrdId; the Command that created it (``commandType: New``)
        does. ``order/deps?masterid=<accountId>`` lists the account's orders and
        ``command/ldeps?masterids=...`` their commands. Several matches (a repeated clOrdId)
        answer with the first order; ``None`` only when the broker answered and holds none.
        """
        rest = self._rest()
        tv_account = self._account_ids[account_id]
        found = await lookup_order(rest, tv_account, client_order_id)
        if found is None:
            return None
        order, _command = found
        status = parsing.status_from(str(order.get("ordStatus") or ""))
        return OrderAck(account_id, client_order_id, str(answers.order_id(order, "id")), status, duplicate=True)

    async def modify(self, command: ModifyOrder) -> OrderAck:
        view = self._view(command.account_id, command.client_order_id)
        price = parsing.price_out(command.limit_price) if command.limit_price is not None else view.price
        stop = parsing.price_out(command.stop_price) if command.stop_price is not None else view.stop_price
        body = s.modify_order_body(
            view.order_id, command.quantity or view.quantity, view.order_type, price, stop, view.tif
        )
        reply = await self._rest().call("order/modifyorder", body, priority=Priority.MODIFY)
        self._raise_failure(reply, rejected=False)
        return OrderAck(
            command.account_id, command.client_order_id, str(view.order_id), self.cache.status_of(view.order_id)
        )

    async def cancel(self, command: CancelOrder) -> OrderAck:
        view = self._view(command.account_id, command.client_order_id)
        if self.cache.status_of(view.order_id) is OrderStatus.CANCELLED:
            # A redelivered cancel: the order is cancelled already, which is what was asked.
            return OrderAck(
                command.account_id, command.client_order_id, str(view.order_id), OrderStatus.CANCELLED, duplicate=True
            )
        reply = await self._rest().call(
            "order/cancelorder", s.cancel_order_body(view.order_id), priority=Priority.CANCEL
        )
        try:
            self._raise_failure(reply, rejected=False)
        except UnknownOrder:
            # A cancel repeated after a lost answer finds the order final: ask the broker which
            # final state, so the repeat reads as done (see .writes).
            if await self._broker_ord_status(view.order_id) == s.CANCELED:
                return OrderAck(
                    command.account_id,
                    command.client_order_id,
                    str(view.order_id),
                    OrderStatus.CANCELLED,
                    duplicate=True,
                )
            raise
        return OrderAck(
            command.account_id, command.client_order_id, str(view.order_id), self.cache.status_of(view.order_id)
        )

    async def _broker_ord_status(self, order_id: int) -> str | None:
        found = await self._rest().call("order/item", method="GET", query={"id": order_id}, priority=Priority.CANCEL)
        return str(found.get("ordStatus")) if isinstance(found, dict) else None

    async def flatten(self, command: FlattenPosition) -> OrderAck:
        """Cancel working orders, then close with a market order under the flatten's clOrdId
        (see :mod:`.flatten` for why not liquidateposition, and why this is safe to rerun)."""
        rest = self._rest()
        account_id = self._account_ids[command.account_id]
        contracts = None if command.symbol is None else {await self._contract_id(command.symbol)}
        closing = await flatten_account(
            rest, self.broker_account(command.account_id), account_id, contracts, command.client_order_id, self._symbol
        )
        return OrderAck(
            command.account_id,
            command.client_order_id,
            ",".join(map(str, closing)) or "none",
            OrderStatus.FILLED if closing else OrderStatus.CANCELLED,
        )

    def _view(self, account: str, client_order_id: str) -> Any:
        view = self.cache.order_for(self._account_ids[account], client_order_id)
        if view is None:
            raise UnknownOrder(f"no Tradovate order with clOrdId {client_order_id}")
        return view

    @staticmethod
    def _raise_failure(reply: Any, *, rejected: bool) -> None:
        if reply is None:
            raise UnknownOrder("not found (404)", code="404")
        reason = reply.get("failureReason") if isinstance(reply, dict) else None
        if not reason or reason == "Success":
            return
        text = reply.get("failureText") or reason
        if rejected:
            raise OrderRejected(f"{reason}: {text}", code=reason)
        if reason in ("TooLate", "UnknownReason"):
            raise UnknownOrder(f"{reason}: {text}", code=reason)
        raise OrderRejected(f"{reason}: {text}", code=reason)

    # -- state -------------------------------------------------------------------------------------
    async def snapshot(self, account_id: str) -> AccountSnapshot:
        """Ask the broker (REST ``user/syncrequest`` for this account), not our cache."""
        tv_id = self._account_ids[account_id]
        snap = await self._rest().call("user/syncrequest", {"accounts": [tv_id]}, priority=Priority.MODIFY)
        with answers.reading("user/syncrequest", snap):
            return await self._snapshot_of(account_id, tv_id, snap)

    async def _snapshot_of(self, account_id: str, tv_id: int, snap: Any) -> AccountSnapshot:
        """The snapshot in the model's terms; a wrong-shaped part raises (read as BAD_ANSWER)."""
        view = EntityCache({tv_id: account_id}, self._symbol)
        view.on_protocol_error = _raise
        self._remember_contracts(snap.get("contracts"))
        await view.apply_snapshot(snap, emit=False)
        orders: list[OrderEvent] = []
        for order in view.orders.values():
            if order.account_id == tv_id and not view.status_of(order.order_id).is_final:
                orders.append(await view._order_event(order, None, s.parse_iso(None)))
        positions: list[PositionEvent] = []
        for (acct, contract_id), net in view.positions.items():
            if acct == tv_id and net:
                entity: Json = next(
                    (p for p in snap["positions"] if p["contractId"] == contract_id and p["accountId"] == acct), {}
                )
                positions.append(
                    PositionEvent(
                        account_id, await self._symbol(contract_id, None), net, parsing.price_in(entity.get("netPrice"))
                    )
                )
        cash = [c for c in snap.get("cashBalances") or [] if c.get("accountId") == tv_id]
        balance = Decimal(str(cash[0].get("amount", 0))) if cash else Decimal(0)
        return AccountSnapshot(account_id, balance, tuple(orders), tuple(positions))

    def health(self) -> SessionHealth:
        return SessionHealth(
            platform=self.platform, state=self._state, last_error=self._last_error, rate_headroom=self.budget.headroom
        )


def _raise(exc: BrokerError) -> None:
    """A snapshot is an answer to a question: an unreadable part fails it (as BAD_ANSWER)."""
    if isinstance(exc, codec.CodecError):
        raise exc
