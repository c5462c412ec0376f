"""The Rithmic adapter: one login, an ORDER and a PNL plant (:mod:`.session`), over our codec.

Session: ``endpoint`` is the gateway URL (``wss://…``; ``ws://`` on loopback for the simulator),
``username``/``secret`` the Rithmic user and password; ``options`` (:mod:`.options`):
``system_name`` (asked of the gateway with 16 when absent and only one is offered), ``app_name``
(the approved, prefixed name [I42]), ``app_version``, ``timeout_s``, ``reconnect_min_s``/
``reconnect_max_s``, ``reject_attempts``, ``ack_wait_s``, ``exchanges`` (root → exchange,
overriding the CME Group defaults).

Exactly-once rules (docs/fidelity/rithmic.md R-30): nothing documents that Rithmic refuses a
repeated ``user_tag``, so :meth:`place` never resends after a timeout; a request whose answer was
lost raises ``BrokerUnavailable(sent=True)`` and the executor calls :meth:`lookup`, which asks the
broker (324, the day's orders) for the tag. Flatten closes positions with a market order carrying
the flatten's client order id: ExitPosition (3504) takes no user_tag, so its orders could never be
found by lookup and a retried flatten could close twice.

After a lost link the session reconnects and :meth:`_resync` reports what happened meanwhile
(320 + 324 orders, 402 positions) through a :class:`.ledger.Ledger`, so every fill is reported
once. Frames the codec cannot read, and 352s that cannot be read into the model, are reported
with their raw bytes (truncated) on the event stream and in health, never dropped silently.

Not done: OCO (328), bracket modifies (332/334), fill busts (how Rithmic reports one is UNDOCUMENTED). Lookups see the
current day's orders only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from decimal import Decimal
from typing import Any, ClassVar

from google.protobuf.message import Message

from ...common.clock import today_utc
from ..base import BrokerAdapter, SessionConfig
from ..errors import BrokerError, BrokerUnavailable, OrderRejected, UnknownOrder
from ..instruments import split_symbol
from ..model import (
    AccountSnapshot,
    CancelOrder,
    Capabilities,
    ConnectionEvent,
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
from ..options import read_options
from . import codec, parsing
from .fields import DEFAULT_EXCHANGES, BadAnswer, bracket_fields, position_event, raw_text
from .fields import balance as wire_balance
from .ledger import Ledger
from .options import RithmicOptions
from .session import ORDER_PLANT, PNL_PLANT, PlantSet
from .transport import RequestRefused

log = logging.getLogger(__name__)


class RithmicAdapter(BrokerAdapter):
    platform: ClassVar[str] = "rithmic"
    capabilities: ClassVar[Capabilities] = Capabilities(
        order_types=frozenset({OrderType.MARKET, OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT}),
        brackets=True,
    )

    def __init__(self, config: SessionConfig) -> None:
        super().__init__(config)
        if not config.endpoint or config.username is None or config.secret is None:
            raise ValueError("rithmic: endpoint, username and secret are required")
        options = read_options(RithmicOptions, config.options)
        self.exchanges = {**DEFAULT_EXCHANGES, **options.exchanges}
        self._ours = {broker: ours for ours, broker in config.accounts.items()}
        self.ledger = Ledger()
        self.ack_wait_s = options.ack_wait_s
        self._waiters: dict[str, asyncio.Future[OrderEvent]] = {}
        self.plants = PlantSet(
            config,
            on_push=self._on_push,
            on_state=self._set_state,
            on_bad_frame=self._bad_frame,
            on_restored=self._resync,
            options=options,
        )

    @property
    def routes(self) -> dict[str, str]:
        return self.plants.routes

    # -- lifecycle -------------------------------------------------------------------------
    async def connect(self) -> None:
        self._set_state(ConnectionState.CONNECTING)
        try:
            await self.plants.open()
            await self._seed()
        except BaseException:
            await self.plants.close()
            self._set_state(ConnectionState.DISCONNECTED, "connect failed")
            raise
        self._set_state(ConnectionState.CONNECTED)

    async def disconnect(self) -> None:
        await self.plants.close()
        self._set_state(ConnectionState.DISCONNECTED)

    async def _seed(self) -> None:
        """What the broker holds at connect, remembered (not reported) so a later resync reports
        only what changed after it."""
        for account in self.config.accounts.values():
            for order, _ in await self._orders(account, 324):
                self.ledger.seed_order(order)
            for position in (await self._pnl_snapshot(account))[1]:
                self.ledger.position(position)

    async def _resync(self) -> None:
        """After a reconnect: every order and position change the pushes of the gap carried.
        Forgotten orders the day's orders (324) no longer list are forgotten for good."""
        replay = self.ledger.finished.begin_replay()
        for account in self.config.accounts.values():
            found: dict[str, tuple[OrderEvent, Message]] = {}
            for order, message in await self._orders(account, 324) + await self._orders(account, 320):
                found[order.broker_order_id] = (order, message)  # 320 (open now) overrides 324
            for order, message in found.values():
                self.ledger.finished.listed(replay, order.broker_order_id)
                average = _average(message.avg_fill_price)
                fill = self.ledger.missed_fill(order, average)
                if fill is not None:
                    self._emit(fill)
                elif self.ledger.unreported(order) > 0:  # fills we cannot price: say so, never drop
                    self._unreadable("ORDER", "a snapshot with unreported fills but no avg_fill_price", message)
                changed = self.ledger.order(order, snapshot=True)
                if changed is not None:
                    self._emit(changed)
            positions = (await self._pnl_snapshot(account))[1]
            for position in positions:
                if (event := self.ledger.position(position, snapshot=True)) is not None:
                    self._emit(event)
            for flat in self.ledger.flat_positions(self._ours[account], {p.symbol for p in positions}):
                self._emit(flat)
        self.ledger.finished.end_replay(replay)

    # -- orders ----------------------------------------------------------------------------
    async def place(self, command: PlaceOrder) -> OrderAck:
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
            **self.plants.ids(312),
        )
        if command.limit_price is not None:
            fields["price"] = float(command.limit_price)
        if command.stop_price is not None:
            fields["trigger_price"] = float(command.stop_price)
        template_id = 312
        if command.bracket is not None:
            template_id = 330
            fields.update(user_type=self.plants.user_type, **self.plants.ids(330), **bracket_fields(command))
        replies = await self._call(ORDER_PLANT, template_id, OrderRejected, **fields)
        basket = next((m.basket_id for m in replies if m.basket_id), "")
        if not basket:
            raise BadAnswer("rithmic: 313 carried no basket_id", raw_text(b"".join(codec.encode(m) for m in replies)))
        state = await self._first_state(basket)
        if state is not None and state.status is OrderStatus.REJECTED:
            raise OrderRejected(f"rithmic: {state.reason or 'rejected'}", code="REJECT")
        status = state.status if state is not None else OrderStatus.WORKING
        return OrderAck(command.account_id, command.client_order_id, basket, status)

    async def _first_state(self, basket: str) -> OrderEvent | None:
        """The order's first 352 (open, filled or rejected): 313 only says Rithmic took the
        order; the exchange's answer follows it on the same socket [PB78]. None when it does not
        come within ``ack_wait_s`` (the order stands; its events follow)."""
        known = self.ledger.orders.get(basket)
        if known is not None:
            return known
        waiter = self._waiters.setdefault(basket, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), self.ack_wait_s)
        except TimeoutError:
            return None
        finally:
            self._waiters.pop(basket, None)

    async def modify(self, command: ModifyOrder) -> OrderAck:
        current = await self._working(command.account_id, command.client_order_id)
        fields: dict[str, Any] = dict(
            account_id=self.broker_account(command.account_id),
            basket_id=current.broker_order_id,
            symbol=current.symbol,
            exchange=self._exchange(current.symbol),
            quantity=command.quantity or current.quantity,
            price_type=parsing.PRICE_TYPE[current.order_type],
            **self.plants.ids(314),
        )
        limit = command.limit_price or current.limit_price
        stop = command.stop_price or current.stop_price
        if limit is not None:
            fields["price"] = float(limit)
        if stop is not None:
            fields["trigger_price"] = float(stop)
        await self._call(ORDER_PLANT, 314, UnknownOrder, **fields)
        return OrderAck(command.account_id, command.client_order_id, current.broker_order_id, current.status)

    async def cancel(self, command: CancelOrder) -> OrderAck:
        """Cancel the working order; a repeated cancel of one already cancelled is a duplicate ack."""
        account = self.broker_account(command.account_id)
        try:
            current = await self._working(command.account_id, command.client_order_id)
        except UnknownOrder:
            done = await self.lookup(command.account_id, command.client_order_id)
            if done is not None and done.status in (OrderStatus.CANCELLED, OrderStatus.EXPIRED):
                return done
            raise
        await self._call(
            ORDER_PLANT,
            316,
            UnknownOrder,
            account_id=account,
            basket_id=current.broker_order_id,
            **self.plants.ids(316),
        )
        return OrderAck(command.account_id, command.client_order_id, current.broker_order_id, OrderStatus.CANCELLED)

    async def cancel_all(self, account_id: str) -> None:
        """CancelAllOrders (346) for one account: the platform's own "cancel everything"."""
        account = self.broker_account(account_id)
        await self._call(
            ORDER_PLANT,
            346,
            UnknownOrder,
            account_id=account,
            user_type=self.plants.user_type,
            manual_or_auto=2,
            **self.plants.ids(346),
        )

    async def flatten(self, command: FlattenPosition) -> OrderAck:
        """Cancel working orders (346 for the whole account, else 320 + 316), then one market order
        per open position tagged with the flatten's id (3504 cannot carry it, see the module)."""
        account = self.broker_account(command.account_id)
        if command.symbol is None:
            await self.cancel_all(command.account_id)
        else:
            for order, _ in await self._orders(account, 320):
                if order.symbol == command.symbol:
                    with contextlib.suppress(UnknownOrder):  # it finished meanwhile
                        await self._call(
                            ORDER_PLANT,
                            316,
                            UnknownOrder,
                            account_id=account,
                            basket_id=order.broker_order_id,
                            **self.plants.ids(316),
                        )
        ack = OrderAck(command.account_id, command.client_order_id, "none", OrderStatus.FILLED)
        for position in (await self._pnl_snapshot(account))[1]:
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
            o
            for o, _ in await self._orders(self.broker_account(account_id), 324)
            if o.client_order_id == client_order_id
        ]
        if not found:
            return None
        first = min(found, key=lambda o: int(o.broker_order_id) if o.broker_order_id.isdigit() else 0)
        return OrderAck(account_id, client_order_id, first.broker_order_id, first.status, duplicate=True)

    async def snapshot(self, account_id: str) -> AccountSnapshot:
        account = self.broker_account(account_id)
        balance, positions = await self._pnl_snapshot(account)
        open_orders = tuple(order for order, _ in await self._orders(account, 320))
        return AccountSnapshot(account_id, balance, open_orders, tuple(p for p in positions if p.net_quantity))

    # -- requests --------------------------------------------------------------------------
    async def _call(
        self, infra_type: int, template_id: int, refused: type[BrokerError], **fields: Any
    ) -> list[Message]:
        """A request; an ``rp_code [code, text]`` refusal becomes ``refused``; a Reject (75) that
        outlived the retries becomes ``BrokerUnavailable(sent=False)``: it was not carried out."""
        try:
            return await self.plants.call(infra_type, template_id, **fields)
        except RequestRefused as exc:
            if exc.unhandled:
                raise BrokerUnavailable(f"rithmic: {exc}", code=exc.code, sent=False) from exc
            raise refused(f"rithmic: {exc.text or exc}", code=exc.code) from exc

    async def _orders(self, account: str, template_id: int) -> list[tuple[OrderEvent, Message]]:
        """Orders from 320 (open) or 324 (the day's), read from their 352 snapshots."""

        def ours(message: Any) -> bool:
            return codec.template_of(message) == 352 and message.is_snapshot and message.account_id == account

        extra = {"date": today_utc().strftime("%Y%m%d")} if template_id == 324 else {}
        replies = await self.plants.call(
            ORDER_PLANT, template_id, collect=ours, account_id=account, **extra, **self.plants.ids(template_id)
        )
        found = []
        for message in replies:
            if codec.template_of(message) == 352:
                event = parsing.order_event(message)
                if event is None:
                    self._unreadable("ORDER", "a 352 snapshot the model cannot read", message)
                else:
                    found.append((self._as_ours(event), message))
        return found

    async def _pnl_snapshot(self, account: str) -> tuple[Decimal, list[PositionEvent]]:
        def ours(message: Any) -> bool:
            return codec.template_of(message) in (450, 451) and message.is_snapshot and message.account_id == account

        replies = await self.plants.call(PNL_PLANT, 402, collect=ours, account_id=account, **self.plants.ids(402))
        balance = next((wire_balance(m.account_balance) for m in replies if codec.template_of(m) == 451), Decimal(0))
        try:
            positions = [position_event(self._ours[account], m) for m in replies if codec.template_of(m) == 450]
        except parsing.OutOfRange as exc:
            raw = raw_text(b"".join(codec.encode(m) for m in replies))
            raise BadAnswer(f"rithmic: PnL snapshot with {exc}", raw) from exc
        return balance, positions

    async def _working(self, account_id: str, client_order_id: str) -> OrderEvent:
        for order, _ in await self._orders(self.broker_account(account_id), 320):
            if order.client_order_id == client_order_id:
                return order
        raise UnknownOrder(f"rithmic: no working order {client_order_id!r}")

    def _exchange(self, symbol: str) -> str:
        root, _ = split_symbol(symbol)
        exchange = self.exchanges.get(root)
        if exchange is None:
            raise OrderRejected(f"rithmic: no exchange known for {symbol}")
        return str(exchange)

    def _as_ours(self, event: OrderEvent) -> OrderEvent:
        return replace(event, account_id=self._ours.get(event.account_id, event.account_id))

    # -- pushes ----------------------------------------------------------------------------
    def _on_push(self, infra_type: int, message: Any) -> None:
        template_id = codec.template_of(message)
        if template_id == 352:
            self._on_order_notification(message)
        elif template_id == 450 and not message.is_snapshot:
            if message.account_id in self._ours:
                try:
                    position = position_event(self._ours[message.account_id], message)
                except parsing.OutOfRange as exc:
                    self._unreadable("PNL", f"a 450 with {exc}", message)
                    return
                event = self.ledger.position(position)
                if event is not None:
                    self._emit(event)
        elif template_id == 75:
            self._unreadable("ORDER" if infra_type == ORDER_PLANT else "PNL", "an unsolicited Reject (75)", message)
        # 351 repeats 352 in Rithmic's own words; 451, 350, 309 … carry nothing the model needs

    def _on_order_notification(self, message: Any) -> None:
        if message.account_id not in self._ours:
            return
        event = parsing.order_event(message)
        fill = parsing.fill_event(message)
        if event is None and message.notify_type in parsing.STATE_TYPES:
            self._unreadable("ORDER", "a 352 the model cannot read", message)
        if message.notify_type == parsing.FILL and fill is None:
            self._unreadable("ORDER", "a 352 FILL without a readable execution", message)
        if event is not None:
            emitted = self.ledger.order(self._as_ours(event))
            waiter = self._waiters.pop(event.broker_order_id, None)
            if waiter is not None and not waiter.done() and emitted is not None:
                waiter.set_result(emitted)
            if emitted is not None:
                self._emit(emitted)
        if fill is not None:
            counted = self.ledger.fill(replace(fill, account_id=self._ours[fill.account_id]))
            if counted is not None:
                self._emit(counted)

    # -- bad input -------------------------------------------------------------------------
    def _bad_frame(self, plant: str, why: str, raw: bytes) -> None:
        self._report(f"rithmic {plant} plant: unreadable frame: {why}; raw={raw_text(raw)}")

    def _unreadable(self, plant: str, what: str, message: Message) -> None:
        self._report(f"rithmic {plant} plant: {what}; raw={raw_text(codec.encode(message))}")

    def _report(self, text: str) -> None:
        """Health keeps the text (→ account.status); subscribers see it as a ConnectionEvent."""
        log.error("rithmic session %s: %s", self.config.session_id, text)
        self._last_error = text
        self._emit(ConnectionEvent(state=self._state, reason=text))


def _average(value: float) -> Decimal | None:
    """352 ``avg_fill_price`` as a Decimal; None when absent, zero or not a finite number."""
    average = Decimal(repr(value))
    return average if average.is_finite() and average > 0 else None
