"""ProjectX Gateway adapter (TopstepX and the other ProjectX firms): REST for commands, the
SignalR user hub for events, one rate budget for everything.

Exactly-once placement rests on ``customTag``: the gateway refuses a second order with a tag
already used on the account, so the adapter sends our client order id as the tag and reads that
refusal as "already placed" — it looks the order up and returns its ack with ``duplicate=True``.
A place whose answer was lost (timeout, reset) is therefore simply sent again.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, ClassVar

from ..base import BrokerAdapter, SessionConfig
from ..errors import BrokerError, BrokerUnavailable, OrderRejected, UnknownOrder, UnsupportedOperation
from ..model import (
    AccountSnapshot, CancelOrder, Capabilities, ConnectionState, FlattenPosition, ModifyOrder,
    OrderAck, OrderStatus, OrderType, PlaceOrder, SessionHealth, TimeInForce,
)
from ..ratebudget import Priority, RateBudget
from . import parsing
from . import schemas as px
from .config import ProjectXConfig
from .hub import UserHubClient
from .tracking import Tracker
from .transport import GatewaySession


class ProjectXAdapter(BrokerAdapter):
    platform: ClassVar[str] = "projectx"
    capabilities: ClassVar[Capabilities] = Capabilities(
        order_types=frozenset({OrderType.MARKET, OrderType.LIMIT, OrderType.STOP}),
        brackets=True, oco=False,
    )

    def __init__(self, config: SessionConfig) -> None:
        super().__init__(config)
        self.px = ProjectXConfig.from_session(config)
        # Our grant time precedes the server's arrival time; a little slack on the window keeps
        # a request granted just as a slot frees from landing inside the server's window.
        limit, window = self.px.rate_limit
        self.budget = RateBudget([(limit, window + self.px.budget_slack_s)], name=f"projectx-{config.session_id}")
        self.session = GatewaySession(self.px, self.budget)
        self._ids: dict[str, int] = {}                  # our account id → ProjectX accountId
        self._contract_lookups: dict[str, asyncio.Future[dict[str, Any]]] = {}  # our symbol → contract
        self._symbols: dict[str, str] = {}               # contractId → our symbol
        self.tracker = Tracker({}, self._symbol_for)
        self.hub: UserHubClient | None = None
        self.reconciled = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------
    async def connect(self) -> None:
        if self._state is ConnectionState.CONNECTED:
            return
        self._set_state(ConnectionState.CONNECTING)
        try:
            await self.session.start()
        except BaseException as exc:
            self._set_state(ConnectionState.DISCONNECTED, f"login failed: {exc}")
            raise
        try:
            await self._map_accounts()
            self.hub = UserHubClient(self.px, self.session, list(self._ids.values()),
                                     self._on_hub_event, self._on_hub_state)
            await self.hub.start()
        except BaseException:
            await self.session.close()
            self._set_state(ConnectionState.DISCONNECTED, "connect failed")
            raise
        self._set_state(ConnectionState.CONNECTED)

    async def disconnect(self) -> None:
        if self.hub is not None:
            await self.hub.close()
            self.hub = None
        await self.session.close()
        self._set_state(ConnectionState.DISCONNECTED)

    async def _map_accounts(self) -> None:
        data = await self._call(px.ACCOUNT_SEARCH, {"onlyActiveAccounts": False}, Priority.MODIFY)
        by_name = {a["name"]: int(a["id"]) for a in data.get("accounts", [])}
        missing = [name for name in self.px.accounts.values() if name not in by_name]
        if missing:
            raise BrokerError(f"ProjectX login sees no account named {', '.join(missing)}", code="ACCOUNT")
        self._ids = {ours: by_name[name] for ours, name in self.px.accounts.items()}
        self.tracker = Tracker({pid: ours for ours, pid in self._ids.items()}, self._symbol_for)

    # -- orders ------------------------------------------------------------------------
    async def place(self, command: PlaceOrder) -> OrderAck:
        if command.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
            # The Gateway's Order/place has no time-in-force field: an IOC/FOK would silently rest.
            raise UnsupportedOperation(f"ProjectX cannot place {command.time_in_force.value.upper()} orders")
        known = self.tracker.by_client_id.get((command.account_id, command.client_order_id))
        if known is not None:
            return self._ack(command.account_id, command.client_order_id, known, duplicate=True)
        contract = await self._contract(command.symbol)
        try:
            body = parsing.place_request(
                account_id=self._account(command.account_id), contract_id=contract["id"], side=command.side,
                quantity=command.quantity, order_type=command.order_type, limit_price=command.limit_price,
                stop_price=command.stop_price, custom_tag=command.client_order_id, bracket=command.bracket,
                tick_size=parsing.to_decimal(contract.get("tickSize")),
            )
        except ValueError as exc:
            raise OrderRejected(str(exc), code="INVALID") from None
        try:
            data = await self._call(px.ORDER_PLACE, body, Priority.ENTRY)
        except BrokerUnavailable:
            # The answer was lost, not necessarily the order: the tag makes a resend idempotent.
            data = await self._call(px.ORDER_PLACE, body, Priority.ENTRY)
        code, message = int(data.get("errorCode") or 0), data.get("errorMessage")
        if data.get("success"):
            broker_id = str(data["orderId"])
            self.tracker.remember(command.account_id, command.client_order_id, broker_id, command.symbol,
                                  command.quantity)
            return self._ack(command.account_id, command.client_order_id, broker_id)
        if px.is_duplicate_tag_refusal(code, message):
            broker_id = await self._find_by_tag(command.account_id, command.client_order_id)
            if broker_id is not None:
                return self._ack(command.account_id, command.client_order_id, broker_id, duplicate=True)
        raise OrderRejected(message or px.PlaceOrderErrorCode(code).name, code=str(code))

    async def modify(self, command: ModifyOrder) -> OrderAck:
        broker_id = await self._order_id(command.account_id, command.client_order_id)
        body: dict[str, Any] = {"accountId": self._account(command.account_id), "orderId": int(broker_id),
                                "size": command.quantity, "limitPrice": command.limit_price,
                                "stopPrice": command.stop_price, "trailPrice": None}
        data = await self._call(px.ORDER_MODIFY, body, Priority.MODIFY)
        self._raise_for_order_error(data, command.client_order_id)
        return self._ack(command.account_id, command.client_order_id, broker_id)

    async def cancel(self, command: CancelOrder) -> OrderAck:
        broker_id = await self._order_id(command.account_id, command.client_order_id)
        tracked = self.tracker.orders.get(broker_id)
        if tracked is not None and tracked.last is not None and tracked.last.status is OrderStatus.CANCELLED:
            # A redelivered cancel: the order is cancelled already, which is what was asked.
            return self._ack(command.account_id, command.client_order_id, broker_id,
                             status=OrderStatus.CANCELLED, duplicate=True)
        data = await self._call(px.ORDER_CANCEL, {"accountId": self._account(command.account_id),
                                                  "orderId": int(broker_id)}, Priority.CANCEL)
        self._raise_for_order_error(data, command.client_order_id)
        return self._ack(command.account_id, command.client_order_id, broker_id, status=OrderStatus.CANCELLED)

    async def flatten(self, command: FlattenPosition) -> OrderAck:
        """The gateway has no one-call flatten: cancel working orders, then close each position."""
        account = self._account(command.account_id)
        contract_id = (await self._contract(command.symbol))["id"] if command.symbol else None
        orders = (await self._call(px.ORDER_SEARCH_OPEN, {"accountId": account}, Priority.CANCEL)).get("orders", [])
        for order in orders:
            if contract_id is None or order["contractId"] == contract_id:
                await self._call(px.ORDER_CANCEL, {"accountId": account, "orderId": order["id"]}, Priority.CANCEL)
        positions = (await self._call(px.POSITION_SEARCH_OPEN, {"accountId": account}, Priority.EXIT)).get("positions", [])
        closed = []
        for position in positions:
            if contract_id is None or position["contractId"] == contract_id:
                data = await self._call(px.POSITION_CLOSE, {"accountId": account,
                                                            "contractId": position["contractId"]}, Priority.EXIT)
                if not data.get("success"):
                    raise OrderRejected(data.get("errorMessage") or "close refused", code=str(data.get("errorCode")))
                closed.append(position["contractId"])
        return OrderAck(command.account_id, command.client_order_id, ",".join(closed) or "none", OrderStatus.FILLED)

    # -- state -----------------------------------------------------------------------
    async def snapshot(self, account_id: str) -> AccountSnapshot:
        account = self._account(account_id)
        accounts = (await self._call(px.ACCOUNT_SEARCH, {"onlyActiveAccounts": False}, Priority.MODIFY)).get("accounts", [])
        balance = next((parsing.to_decimal(a.get("balance")) for a in accounts if int(a["id"]) == account), None)
        orders = (await self._call(px.ORDER_SEARCH_OPEN, {"accountId": account}, Priority.MODIFY)).get("orders", [])
        positions = (await self._call(px.POSITION_SEARCH_OPEN, {"accountId": account}, Priority.MODIFY)).get("positions", [])
        snapshot_tracker = Tracker({account: account_id}, self._symbol_for)
        return AccountSnapshot(
            account_id=account_id,
            balance=balance or Decimal(0),
            open_orders=tuple(e for e in map(snapshot_tracker.order_event, orders) if e is not None),
            positions=tuple(e for e in map(snapshot_tracker.position_event, positions) if e is not None),
        )

    def health(self) -> SessionHealth:
        return SessionHealth(platform=self.platform, state=self._state, last_error=self._last_error,
                             rate_headroom=self.budget.headroom)

    # -- hub events ------------------------------------------------------------------
    def _on_hub_event(self, target: str, arguments: tuple[Any, ...]) -> None:
        if not arguments:
            return
        payload = parsing.unwrap(arguments[-1])
        if target == px.EVENT_ORDER:
            event: Any = self.tracker.order_event(payload)
        elif target == px.EVENT_TRADE:
            event = self.tracker.fill_event(payload)
        elif target == px.EVENT_POSITION:
            event = self.tracker.position_event(payload)
        else:
            return
        if event is not None:
            self._emit(event)

    async def _on_hub_state(self, up: bool, reason: str | None) -> None:
        if not up:
            self.reconciled.clear()
            self._set_state(ConnectionState.DEGRADED, reason)
            return
        await self.reconcile()
        self._set_state(ConnectionState.CONNECTED)

    async def reconcile(self) -> None:
        """After a gap in the hub: replay what REST says changed, each change once."""
        since = datetime.now(timezone.utc) - timedelta(hours=self.px.order_lookback_h)
        for ours, account in self._ids.items():
            body = {"accountId": account, "startTimestamp": parsing.format_time(since)}
            for trade in (await self._call(px.TRADE_SEARCH, body, Priority.MODIFY)).get("trades", []):
                self._emit_if(self.tracker.fill_event(trade))
            open_orders = (await self._call(px.ORDER_SEARCH_OPEN, {"accountId": account}, Priority.MODIFY)).get("orders", [])
            open_ids = {str(o["id"]) for o in open_orders}
            for order in open_orders:
                self._emit_if(self.tracker.order_event(order))
            if any(oid not in open_ids for oid in self.tracker.open_order_ids(ours)):
                for order in (await self._call(px.ORDER_SEARCH, body, Priority.MODIFY)).get("orders", []):
                    if str(order["id"]) not in open_ids:
                        self._emit_if(self.tracker.order_event(order))
            positions = (await self._call(px.POSITION_SEARCH_OPEN, {"accountId": account}, Priority.MODIFY)).get("positions", [])
            for position in positions:
                self._emit_if(self.tracker.position_event(position))
            for flat in self.tracker.flat_positions(ours, {self._symbol_for(p["contractId"]) for p in positions}):
                self._emit(flat)
        self.reconciled.set()

    def _emit_if(self, event: Any) -> None:
        if event is not None:
            self._emit(event)

    # -- helpers -----------------------------------------------------------------------
    async def _call(self, path: str, body: dict[str, Any], priority: Priority) -> dict[str, Any]:
        try:
            return await self.session.call(path, body, priority)
        except BrokerError as exc:
            self._last_error = exc.message
            raise

    def _account(self, account_id: str) -> int:
        try:
            return self._ids[account_id]
        except KeyError:
            raise KeyError(f"account {account_id!r} is not part of ProjectX session {self.config.session_id}") from None

    async def _contract(self, symbol: str) -> dict[str, Any]:
        """Resolve once per symbol; concurrent places of a fan-out share one lookup."""
        pending = self._contract_lookups.get(symbol)
        if pending is None:
            pending = self._contract_lookups[symbol] = asyncio.ensure_future(self._resolve_contract(symbol))
        try:
            return await asyncio.shield(pending)
        except BaseException:
            if pending.done():
                self._contract_lookups.pop(symbol, None)  # let the next call try again
            raise

    async def _resolve_contract(self, symbol: str) -> dict[str, Any]:
        try:
            code, wanted = parsing.contract_for_symbol(symbol)
        except (KeyError, ValueError) as exc:
            raise OrderRejected(f"no ProjectX contract for {symbol!r}: {exc}", code="CONTRACT") from None
        data = await self._call(px.CONTRACT_SEARCH, {"searchText": code, "live": self.px.live}, Priority.MODIFY)
        found = [c for c in data.get("contracts", []) if (px.split_contract_id(c["id"]) or ("",))[0] == code]
        match = next((c for c in found if c["id"] == wanted), None) if wanted else \
            next((c for c in found if c.get("activeContract")), None)
        if match is None and wanted:
            byid = await self._call(px.CONTRACT_SEARCH_BY_ID, {"contractId": wanted}, Priority.MODIFY)
            match = byid.get("contract") or next(iter(byid.get("contracts") or []), None)
        if match is None:
            raise OrderRejected(f"ProjectX has no contract for {symbol!r}", code=str(px.PlaceOrderErrorCode.CONTRACT_NOT_FOUND.value))
        self._symbols.setdefault(match["id"], symbol)
        return match

    def _symbol_for(self, contract_id: str) -> str:
        symbol = self._symbols.get(contract_id)
        if symbol is None:
            symbol = self._symbols[contract_id] = parsing.symbol_for_contract(contract_id)
        return symbol

    async def _order_id(self, account_id: str, client_order_id: str) -> str:
        broker_id = self.tracker.by_client_id.get((account_id, client_order_id))
        if broker_id is None:
            broker_id = await self._find_by_tag(account_id, client_order_id)
        if broker_id is None:
            raise UnknownOrder(f"no ProjectX order with custom tag {client_order_id!r}")
        return broker_id

    async def _find_by_tag(self, account_id: str, tag: str) -> str | None:
        """searchOpen first (cheap, the usual case), then the order history of the lookback window."""
        account = self._account(account_id)
        open_orders = (await self._call(px.ORDER_SEARCH_OPEN, {"accountId": account}, Priority.MODIFY)).get("orders", [])
        since = datetime.now(timezone.utc) - timedelta(hours=self.px.order_lookback_h)
        for orders in (open_orders, None):
            if orders is None:
                body = {"accountId": account, "startTimestamp": parsing.format_time(since)}
                orders = (await self._call(px.ORDER_SEARCH, body, Priority.MODIFY)).get("orders", [])
            for order in orders:
                if order.get("customTag") == tag:
                    self._emit_if(self.tracker.order_event(order))
                    self.tracker.remember(account_id, tag, str(order["id"]), self._symbol_for(order["contractId"]),
                                          int(order.get("size") or 0))
                    return str(order["id"])
        return None

    def _ack(self, account_id: str, client_order_id: str, broker_id: str, *, duplicate: bool = False,
             status: OrderStatus | None = None) -> OrderAck:
        tracked = self.tracker.orders.get(broker_id)
        current = tracked.last.status if tracked is not None and tracked.last is not None else OrderStatus.WORKING
        return OrderAck(account_id, client_order_id, broker_id, status or current, duplicate=duplicate)

    @staticmethod
    def _raise_for_order_error(data: dict[str, Any], client_order_id: str) -> None:
        if data.get("success"):
            return
        code, message = int(data.get("errorCode") or 0), data.get("errorMessage") or "refused"
        if code == px.ModifyOrderErrorCode.ORDER_NOT_FOUND:
            raise UnknownOrder(f"{client_order_id}: {message}", code=str(code))
        raise OrderRejected(f"{client_order_id}: {message}", code=str(code))

