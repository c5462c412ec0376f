"""The Rithmic adapter: one login, an ORDER plant and a PNL plant connection, over our codec.

Session: ``endpoint`` is the gateway URL (``wss://…``; ``ws://`` on loopback for the simulator),
``username``/``secret`` the Rithmic user and password; ``options``: ``system_name`` (required by
the login [RG]), ``app_name`` (the approved, prefixed name [I42]), ``app_version``,
``timeout_s``, ``exchanges`` (root → exchange, overriding the CME Group defaults).

Exactly-once rules (docs/fidelity/rithmic.md R-30): nothing documents that Rithmic refuses a
repeated ``user_tag``, so :meth:`place` never retries; a request whose answer was lost raises
``BrokerUnavailable(sent=True)`` and the executor calls :meth:`lookup`, which asks the broker
(324, the day's orders) for the tag. Flatten closes positions with a market order carrying the
flatten's client order id (3504 takes no user_tag, so its orders could never be traced).

Not done yet: reconnecting (a dropped link leaves the adapter DEGRADED until ``connect``),
brackets (330), fill busts. Lookups see the current day's orders only.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from decimal import Decimal
from typing import Any, ClassVar

from ...common.clock import today_utc
from ..base import BrokerAdapter, SessionConfig
from ..errors import AuthenticationFailed, BrokerUnavailable, OrderRejected, UnknownOrder
from ..instruments import split_symbol
from ..model import (
    AccountSnapshot,
    CancelOrder,
    Capabilities,
    ConnectionState,
    FlattenPosition,
    ModifyOrder,
    OrderAck,
    OrderEvent,
    OrderStatus,
    OrderType,
    PlaceOrder,
    PositionEvent,
    Side,
)
from . import codec, parsing
from .transport import PlantConnection, RequestRefused

ORDER_PLANT, PNL_PLANT = 2, 4
DEFAULT_EXCHANGES = {
    **dict.fromkeys(("ES", "MES", "NQ", "MNQ", "RTY", "M2K", "6E"), "CME"),
    **dict.fromkeys(("YM", "MYM"), "CBOT"),
    **dict.fromkeys(("CL", "MCL"), "NYMEX"),
    **dict.fromkeys(("GC", "MGC"), "COMEX"),
}


class RithmicAdapter(BrokerAdapter):
    platform: ClassVar[str] = "rithmic"
    capabilities: ClassVar[Capabilities] = Capabilities(
        order_types=frozenset({OrderType.MARKET, OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT})
    )

    def __init__(self, config: SessionConfig) -> None:
        super().__init__(config)
        options = config.options
        if not config.endpoint or config.username is None or config.secret is None:
            raise ValueError("rithmic: endpoint, username and secret are required")
        self.system_name = str(options.get("system_name", ""))
        self.app = (str(options.get("app_name", "copytrader")), str(options.get("app_version", "1.0")))
        self.timeout_s = float(options.get("timeout_s", 10.0))
        self.exchanges = {**DEFAULT_EXCHANGES, **options.get("exchanges", {})}
        self.routes: dict[str, str] = {}
        self._order: PlantConnection | None = None
        self._pnl: PlantConnection | None = None
        self._closing = False  # our own close: a plant's reader ending is not a lost link
        self._ours = {broker: ours for ours, broker in config.accounts.items()}

    # -- lifecycle -------------------------------------------------------------------------
    async def connect(self) -> None:
        self._set_state(ConnectionState.CONNECTING)
        try:
            self._order = await self._plant(ORDER_PLANT, self._on_order_push)
            info = (await self._order.request(300))[-1]
            self.fcm_id, self.ib_id = info.fcm_id, info.ib_id
            routes = await self._order.request(310, subscribe_for_updates=True, **self._ids(310))
            self.routes = {r.exchange: r.trade_route for r in routes if r.trade_route}
            accounts = {m.account_id for m in await self._order.request(302, **self._ids(302)) if m.account_id}
            missing = set(self.config.accounts.values()) - accounts
            if missing:
                raise AuthenticationFailed(f"rithmic: the login does not see accounts {sorted(missing)}")
            self._pnl = await self._plant(PNL_PLANT, self._on_pnl_push)
            for account in self.config.accounts.values():
                await self._order.request(308, account_id=account, **self._ids(308))
                await self._pnl.request(400, request=1, account_id=account, **self._ids(400))
        except BaseException:
            await self._close()
            self._set_state(ConnectionState.DISCONNECTED, "connect failed")
            raise
        self._set_state(ConnectionState.CONNECTED)

    async def disconnect(self) -> None:
        await self._close()
        self._set_state(ConnectionState.DISCONNECTED)

    async def _plant(self, infra_type: int, on_push: Any) -> PlantConnection:
        assert self.config.endpoint and self.config.username is not None and self.config.secret is not None
        plant = PlantConnection(
            self.config.endpoint, on_push=on_push, on_closed=self._on_closed, timeout_s=self.timeout_s
        )
        await plant.open()
        try:
            await plant.login(self.config.username, self.config.secret, self.system_name, *self.app, infra_type)
        except BaseException:
            await plant.close()
            raise
        return plant

    async def _close(self) -> None:
        self._closing = True
        for plant in (self._order, self._pnl):
            if plant is not None:
                with contextlib.suppress(Exception):
                    await plant.close()
        self._order = self._pnl = None
        self._closing = False

    def _on_closed(self) -> None:
        if self._state is ConnectionState.CONNECTED and not self._closing:
            self._set_state(ConnectionState.DEGRADED, "rithmic: plant connection lost")

    def _ids(self, template_id: int) -> dict[str, Any]:
        """fcm_id/ib_id from 301, on the requests that carry them (as async-rithmic sets them)."""
        names = codec.TEMPLATES[template_id].DESCRIPTOR.fields_by_name
        ids = {"fcm_id": getattr(self, "fcm_id", ""), "ib_id": getattr(self, "ib_id", "")}
        return {k: v for k, v in ids.items() if k in names}

    def _plant_or_fail(self) -> PlantConnection:
        if self._order is None or not self._order.connected:
            raise BrokerUnavailable("rithmic: not connected", sent=False)
        return self._order

    # -- orders ----------------------------------------------------------------------------
    async def place(self, command: PlaceOrder) -> OrderAck:
        order = self._plant_or_fail()
        exchange = self._exchange(command.symbol)
        route = self.routes.get(exchange)
        if route is None:
            raise OrderRejected(f"rithmic: no trade route for {exchange}")
        fields: dict[str, Any] = dict(
            user_tag=command.client_order_id,
            account_id=self.broker_account(command.account_id),
            symbol=command.symbol,
            exchange=exchange,
            quantity=command.quantity,
            transaction_type=parsing.TRANSACTION[command.side],
            duration=parsing.DURATION[command.time_in_force],
            price_type=parsing.PRICE_TYPE[command.order_type],
            trade_route=route,
            manual_or_auto=2,  # AUTO: a copier's orders are machine-generated
            **self._ids(312),
        )
        if command.limit_price is not None:
            fields["price"] = float(command.limit_price)
        if command.stop_price is not None:
            fields["trigger_price"] = float(command.stop_price)
        try:
            replies = await order.request(312, **fields)
        except RequestRefused as exc:
            raise OrderRejected(f"rithmic: {exc.text}", code=exc.code) from exc
        basket = next((m.basket_id for m in replies if m.basket_id), "")
        return OrderAck(command.account_id, command.client_order_id, basket, OrderStatus.WORKING)

    async def modify(self, command: ModifyOrder) -> OrderAck:
        current = await self._working(command.account_id, command.client_order_id)
        fields: dict[str, Any] = dict(
            account_id=self.broker_account(command.account_id),
            basket_id=current.broker_order_id,
            symbol=current.symbol,
            exchange=self._exchange(current.symbol),
            quantity=command.quantity or current.quantity,
            price_type=parsing.PRICE_TYPE[current.order_type],
            **self._ids(314),
        )
        limit = command.limit_price or current.limit_price
        stop = command.stop_price or current.stop_price
        if limit is not None:
            fields["price"] = float(limit)
        if stop is not None:
            fields["trigger_price"] = float(stop)
        try:
            await self._plant_or_fail().request(314, **fields)
        except RequestRefused as exc:
            raise UnknownOrder(f"rithmic: modify refused: {exc.text}", code=exc.code) from exc
        return OrderAck(command.account_id, command.client_order_id, current.broker_order_id, current.status)

    async def cancel(self, command: CancelOrder) -> OrderAck:
        current = await self._working(command.account_id, command.client_order_id)
        account = self.broker_account(command.account_id)
        try:
            await self._plant_or_fail().request(
                316, account_id=account, basket_id=current.broker_order_id, **self._ids(316)
            )
        except RequestRefused as exc:
            raise UnknownOrder(f"rithmic: cancel refused: {exc.text}", code=exc.code) from exc
        return OrderAck(command.account_id, command.client_order_id, current.broker_order_id, OrderStatus.CANCELLED)

    async def flatten(self, command: FlattenPosition) -> OrderAck:
        """Cancel working orders (320 + 316), then one tagged market order per open position."""
        account = self.broker_account(command.account_id)
        for order in await self._orders(account, 320):
            if command.symbol is None or order.symbol == command.symbol:
                with contextlib.suppress(RequestRefused):  # it finished meanwhile
                    await self._plant_or_fail().request(
                        316, account_id=account, basket_id=order.broker_order_id, **self._ids(316)
                    )
        snapshot = await self.snapshot(command.account_id)
        ack = OrderAck(command.account_id, command.client_order_id, "none", OrderStatus.FILLED)
        for position in snapshot.positions:
            if position.net_quantity and (command.symbol is None or position.symbol == command.symbol):
                side = Side.SELL if position.net_quantity > 0 else Side.BUY
                closing = PlaceOrder(
                    command.account_id, command.client_order_id, position.symbol, side, abs(position.net_quantity)
                )
                ack = await self.place(closing)
        return ack

    async def lookup(self, account_id: str, client_order_id: str) -> OrderAck | None:
        """The day's orders (324) at the broker; the first one placed under the tag."""
        found = [
            o for o in await self._orders(self.broker_account(account_id), 324) if o.client_order_id == client_order_id
        ]
        if not found:
            return None
        first = min(found, key=lambda o: int(o.broker_order_id) if o.broker_order_id.isdigit() else 0)
        return OrderAck(account_id, client_order_id, first.broker_order_id, first.status, duplicate=True)

    async def snapshot(self, account_id: str) -> AccountSnapshot:
        account = self.broker_account(account_id)
        if self._pnl is None or not self._pnl.connected:
            raise BrokerUnavailable("rithmic: PNL plant not connected", sent=False)

        def ours(message: Any) -> bool:
            return codec.template_of(message) in (450, 451) and message.is_snapshot and message.account_id == account

        replies = await self._pnl.request(402, collect=ours, account_id=account, **self._ids(402))
        balance = next((Decimal(m.account_balance) for m in replies if codec.template_of(m) == 451), Decimal(0))
        positions = tuple(self._position(account_id, m) for m in replies if codec.template_of(m) == 450)
        open_orders = tuple(await self._orders(account, 320))
        return AccountSnapshot(account_id, balance, open_orders, positions)

    # -- internals -------------------------------------------------------------------------
    def _exchange(self, symbol: str) -> str:
        root, _ = split_symbol(symbol)
        exchange = self.exchanges.get(root)
        if exchange is None:
            raise OrderRejected(f"rithmic: no exchange known for {symbol}")
        return str(exchange)

    async def _orders(self, account: str, template_id: int) -> list[OrderEvent]:
        """Orders from 320 (open) or 324 (the day's), read from their 352 snapshots."""

        def ours(message: Any) -> bool:
            return codec.template_of(message) == 352 and message.is_snapshot and message.account_id == account

        extra = {"date": today_utc().strftime("%Y%m%d")} if template_id == 324 else {}
        replies = await self._plant_or_fail().request(
            template_id, collect=ours, account_id=account, **extra, **self._ids(template_id)
        )
        events = [parsing.order_event(m) for m in replies if codec.template_of(m) == 352]
        return [self._as_ours(e) for e in events if e is not None]

    async def _working(self, account_id: str, client_order_id: str) -> OrderEvent:
        for order in await self._orders(self.broker_account(account_id), 320):
            if order.client_order_id == client_order_id:
                return order
        raise UnknownOrder(f"rithmic: no working order {client_order_id!r}")

    def _as_ours(self, event: OrderEvent) -> OrderEvent:
        return replace(event, account_id=self._ours.get(event.account_id, event.account_id))

    def _position(self, account_id: str, message: Any) -> PositionEvent:
        average = parsing.price(message.avg_open_fill_price, message.symbol) if message.net_quantity else None
        return PositionEvent(
            account_id=account_id,
            symbol=message.symbol,
            net_quantity=int(message.net_quantity),
            average_price=average,
            realized_pnl=Decimal(repr(message.day_closed_pnl)),
        )

    def _on_order_push(self, message: Any) -> None:
        if message.account_id not in self._ours:
            return
        event = parsing.order_event(message)
        if event is not None:
            self._emit(self._as_ours(event))
        fill = parsing.fill_event(message)
        if fill is not None:
            self._emit(replace(fill, account_id=self._ours[fill.account_id]))

    def _on_pnl_push(self, message: Any) -> None:
        if codec.template_of(message) == 450 and not message.is_snapshot and message.account_id in self._ours:
            self._emit(self._position(self._ours[message.account_id], message))
