"""The built-in paper platform: the adapter contract over an in-process simulated exchange.

It lets the whole pipeline run with no external system. All paper sessions in a process that
name the same ``venue`` share one exchange, so a leader and its followers trade one price path.
Options: ``latency`` (ms, or ``"50+20"`` for a log-normal tail), ``seed``, ``tick_ms`` (how often
market time advances), ``partial_fill_lot``, ``balance``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from operator import attrgetter
from typing import Any, ClassVar, TypeVar

from ..base import BrokerAdapter, SessionConfig
from ..errors import BrokerUnavailable, OrderRejected, UnknownOrder
from ..model import (
    AccountSnapshot,
    CancelOrder,
    Capabilities,
    ConnectionState,
    FillCorrection,
    FillEvent,
    FlattenPosition,
    ModifyOrder,
    OrderAck,
    OrderEvent,
    OrderStatus,
    PlaceOrder,
    PositionEvent,
)
from ..options import read_options
from ..simkernel.exchange import KernelEvent, SimError, SimExchange, SimOrder
from ..simkernel.latency import Latency
from .options import PaperOptions

#: Finished orders the paper venue keeps per account (the kernel's default is 5,000, a real
#: broker's day). The paper venue runs inside the executor, for every paper account of the
#: process: at ≈0.5 KB per order (traced, ``scripts/executor_memory.py``) 5,000 would be 2.4 GB at
#: 1,000 paper followers, over the chart's executor limit. The executor looks back only as far
#: as a redelivered intent (seconds of orders), so a thousand per account is plenty.
PAPER_HISTORY_LIMIT = 1000

#: One kernel event type in, the same type out (a renamed copy).
E = TypeVar("E", bound=KernelEvent)


class _Venue:
    """One shared exchange plus the clock task that moves its market time."""

    def __init__(self, seed: int, tick_ms: float) -> None:
        self.exchange = SimExchange(seed=seed, history_limit=PAPER_HISTORY_LIMIT)
        self.tick_ms = tick_ms
        self.users = 0
        self.clock: asyncio.Task[None] | None = None

    async def _run_clock(self) -> None:
        while True:
            await asyncio.sleep(self.tick_ms / 1000.0)
            self.exchange.advance()

    def acquire(self) -> None:
        self.users += 1
        if self.clock is None and self.tick_ms > 0:
            self.clock = asyncio.get_running_loop().create_task(self._run_clock())

    def release(self) -> None:
        self.users -= 1
        if self.users <= 0 and self.clock is not None:
            self.clock.cancel()
            self.clock = None


_VENUES: dict[str, _Venue] = {}
_RENAMERS: dict[type, Callable[[Any, str], Any]] = {}


def _renamer(kind: type[E]) -> Callable[[E, str], E]:
    """``replace(event, account_id=...)`` for one event class: its init fields read in one
    ``attrgetter`` call and passed back in order, so ``__init__`` (and any check) runs as before."""
    known = _RENAMERS.get(kind)
    if known is None:
        names = [f.name for f in dataclasses.fields(kind) if f.init]
        where = names.index("account_id")
        getter = attrgetter(*names)
        read = getter if len(names) > 1 else lambda event: (getter(event),)  # one name: no tuple

        def rename(event: Any, account_id: str) -> Any:
            values = list(read(event))
            values[where] = account_id
            return kind(*values)

        known = _RENAMERS[kind] = rename
    return known


def venue(name: str = "paper", *, seed: int = 7, tick_ms: float = 100.0) -> _Venue:
    """The process-wide venue of that name (created on first use)."""
    if name not in _VENUES:
        _VENUES[name] = _Venue(seed, tick_ms)
    return _VENUES[name]


def reset_venues() -> None:
    """Forget every venue (tests start from a fresh market)."""
    for v in _VENUES.values():
        if v.clock is not None:
            v.clock.cancel()
    _VENUES.clear()


class PaperAdapter(BrokerAdapter):
    platform: ClassVar[str] = "paper"
    capabilities: ClassVar[Capabilities] = Capabilities(brackets=True, oco=True, fill_corrections=True)

    def __init__(self, config: SessionConfig) -> None:
        super().__init__(config)
        options = read_options(PaperOptions, config.options)
        self._venue = venue(options.venue, seed=options.seed, tick_ms=options.tick_ms)
        self.exchange = self._venue.exchange
        self._latency = Latency.parse(options.latency)
        self._by_name = {name: account_id for account_id, name in config.accounts.items()}
        self._balance = options.balance
        self._lot = options.partial_fill_lot

    # -- lifecycle ---------------------------------------------------------------------
    async def connect(self) -> None:
        if self._state is ConnectionState.CONNECTED:
            return
        for name in self.config.accounts.values():
            account = self.exchange.open_account(name, self._balance)
            if self._lot:
                account.faults.partial_fill_lot = int(self._lot)
        self.exchange.add_listener(self._on_kernel_event)
        self._venue.acquire()
        self._set_state(ConnectionState.CONNECTED)

    async def disconnect(self) -> None:
        if self._state is ConnectionState.DISCONNECTED:
            return
        self.exchange.remove_listener(self._on_kernel_event)
        self._venue.release()
        self._set_state(ConnectionState.DISCONNECTED)

    # -- orders ------------------------------------------------------------------------
    async def place(self, command: PlaceOrder) -> OrderAck:
        await self._round_trip()
        order, duplicate = self.exchange.submit(
            self.broker_account(command.account_id),
            symbol=command.symbol,
            side=command.side,
            quantity=command.quantity,
            order_type=command.order_type,
            limit_price=command.limit_price,
            stop_price=command.stop_price,
            time_in_force=command.time_in_force,
            client_order_id=command.client_order_id,
            bracket=command.bracket,
        )
        self._maybe_lose_response(command.account_id)
        if order.status is OrderStatus.REJECTED and not duplicate:
            raise OrderRejected(order.reason or "rejected", code="REJECTED")
        return self._ack(command.account_id, order, duplicate)

    async def lookup(self, account_id: str, client_order_id: str) -> OrderAck | None:
        await self._round_trip()
        found = self.exchange.orders_with_client_id(self.broker_account(account_id), client_order_id)
        return self._ack(account_id, found[0], duplicate=True) if found else None

    async def modify(self, command: ModifyOrder) -> OrderAck:
        await self._round_trip()
        order = self._order_for(command.account_id, command.client_order_id)
        try:
            self.exchange.modify(
                order.account,
                order.order_id,
                quantity=command.quantity,
                limit_price=command.limit_price,
                stop_price=command.stop_price,
            )
        except SimError as exc:
            raise UnknownOrder(str(exc)) from None
        return self._ack(command.account_id, order)

    async def cancel(self, command: CancelOrder) -> OrderAck:
        await self._round_trip()
        order = self._order_for(command.account_id, command.client_order_id)
        if order.status is OrderStatus.CANCELLED:
            return self._ack(command.account_id, order, duplicate=True)  # a repeated cancel is done already
        try:
            self.exchange.cancel(order.account, order.order_id)
        except SimError as exc:
            raise UnknownOrder(str(exc)) from None
        return self._ack(command.account_id, order)

    async def flatten(self, command: FlattenPosition) -> OrderAck:
        await self._round_trip()
        closing = self.exchange.flatten(
            self.broker_account(command.account_id), command.symbol, client_order_id=command.client_order_id
        )
        self._maybe_lose_response(command.account_id)
        order_id = ",".join(o.order_id for o in closing) or "none"
        return OrderAck(command.account_id, command.client_order_id, order_id, OrderStatus.FILLED)

    async def snapshot(self, account_id: str) -> AccountSnapshot:
        await self._round_trip()
        name = self.broker_account(account_id)
        account = self.exchange.account(name)
        return AccountSnapshot(
            account_id=account_id,
            balance=account.balance,
            open_orders=tuple(self._ours(o.to_event()) for o in self.exchange.open_orders(name)),
            positions=tuple(
                self._ours(self.exchange.position_event(name, symbol))
                for symbol, position in account.positions.items()
                if position.net_quantity
            ),
        )

    # -- internals ---------------------------------------------------------------------
    async def _round_trip(self) -> None:
        """The request's way to the venue and back: the configured latency, and at 0 ms one
        turn of the event loop, as a network broker's answer always arrives in a later turn.
        Without that turn, a zero-latency answer was handled inside the call itself, and in a
        burst each lane's order waited for the earlier lanes' answers to be reported first:
        at 200 followers, copy k was handed over after k−1 acks were processed (#16)."""
        if self._state is not ConnectionState.CONNECTED:
            raise BrokerUnavailable(f"paper session {self.config.session_id} is not connected")
        if self._latency.fixed_ms or self._latency.jitter_ms:
            await self._latency.wait()
        else:
            await asyncio.sleep(0)

    def _maybe_lose_response(self, account_id: str) -> None:
        """The ``lose_response`` faults: the exchange acted, the answer never arrives."""
        if self.exchange.account(self.broker_account(account_id)).faults.take_lose_response():
            raise BrokerUnavailable("paper: response lost after the order was accepted", sent=True)

    def _order_for(self, account_id: str, client_order_id: str) -> SimOrder:
        order = self.exchange.find_by_client_id(self.broker_account(account_id), client_order_id)
        if order is None:
            raise UnknownOrder(f"no order with client id {client_order_id}")
        return order

    @staticmethod
    def _ack(account_id: str, order: SimOrder, duplicate: bool = False) -> OrderAck:
        return OrderAck(account_id, order.client_order_id or "", order.order_id, order.status, duplicate=duplicate)

    def _ours(self, event: E) -> E:
        """Rename the exchange's account to our account id (the event itself when they agree:
        events are frozen). ``dataclasses.replace`` did the same at four times the CPU, four
        times per copied order (#16)."""
        account_id = self._by_name[event.account_id]
        if account_id == event.account_id:
            return event
        return _renamer(type(event))(event, account_id)

    def _on_kernel_event(self, event: KernelEvent) -> None:
        if event.account_id in self._by_name and isinstance(
            event, (OrderEvent, FillEvent, FillCorrection, PositionEvent)
        ):
            self._emit(self._ours(event))
