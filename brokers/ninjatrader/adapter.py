"""The NinjaTrader 8 adapter: one running NinjaTrader, reached over its ATI, by either route.

``endpoint`` chooses the route (``config.py``): ``ati://host:port`` is the TCP interface (VALUE
pushes, reconnect with backoff), ``oif:///path/to/NinjaTrader 8`` the file interface
(instruction files in, the outgoing folder polled). ``accounts`` maps our ids to NinjaTrader
account names (``Sim101``). NinjaTrader has no login, so ``username``/``secret`` are ignored:
one adapter serves every account of that NinjaTrader.

The ATI answers no command (N-tk): a request waits for NinjaTrader's word on its ORDER ID (a
VALUE push, or the ``<id>.txt`` file), and no word within ``request_timeout_s`` is
``BrokerUnavailable(sent=True)``. Exactly once (docs/fidelity/ninjatrader.md): the ORDER ID
carries our client order id (``orderids.py``), nothing is resent, and :meth:`lookup` asks
NinjaTrader, answering "none" only when NinjaTrader's own lists cover the moment the id was
sent, and "cannot tell" otherwise. Fills are derived from filled quantities and averages and
reported once (``book.py``), across reconnects too.
"""

from __future__ import annotations

import asyncio
import logging
from typing import ClassVar

from ...common.retrying import forever
from ...common.tasks import stop_task
from ..base import BrokerAdapter, SessionConfig
from ..errors import BrokerUnavailable
from ..model import (
    AccountSnapshot,
    CancelOrder,
    Capabilities,
    ConnectionEvent,
    ConnectionState,
    FlattenPosition,
    ModifyOrder,
    OrderAck,
    OrderType,
    PlaceOrder,
)
from . import orders
from .book import Book
from .config import NtConfig, Route
from .oif import OifFolders
from .states import OrderReport, PositionReport
from .symbols import SymbolError
from .tcp import AtiConnection

log = logging.getLogger(__name__)


class NinjaTraderAdapter(BrokerAdapter):
    platform: ClassVar[str] = "ninjatrader"
    capabilities: ClassVar[Capabilities] = Capabilities(
        order_types=frozenset({OrderType.MARKET, OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT}),
        brackets=False,
        oco=False,
        # The ATI says only "Rejected" (an order state, NT-20): the copy is reported rejected
        # with no broker text to show.
        reject_reasons=False,
    )

    def __init__(self, config: SessionConfig) -> None:
        super().__init__(config)
        self.nt = NtConfig.from_session(config)
        self.book = Book(self.nt.accounts)
        self.connection: AtiConnection | None = None
        self.folders: OifFolders | None = None
        self.connections = 0  # ATI connections opened: the TCP route's generation
        self.reconnects = 0
        self.bad_input: list[str] = []
        self._emitting = False
        self._broker_connected = True
        self._route_up = False  # the socket or folders are open (NinjaTrader's own link aside)
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False

    # -- lifecycle ---------------------------------------------------------------------------
    async def connect(self) -> None:
        if self._state is ConnectionState.CONNECTED:
            return
        await self._stop_supervisor()
        self._stopping = False
        self._set_state(ConnectionState.CONNECTING)
        try:
            if self.nt.route is Route.OIF:
                await self._open_folders()
            else:
                await self._open_ati()
        except BaseException as exc:
            await self._close_route("connect failed")
            self._set_state(ConnectionState.DISCONNECTED, f"ninjatrader: connect to {self.nt.address} failed: {exc}")
            raise
        self._emitting = True
        self._route_up = True
        if self.nt.route is Route.ATI:
            self._supervisor = asyncio.get_running_loop().create_task(self._supervise())
        self._set_state(ConnectionState.CONNECTED if self._broker_connected else ConnectionState.DEGRADED)

    async def _open_ati(self) -> None:
        self.book.memory.begin()  # what this connection lists is the next replay (forgetting.py)
        self.connection = await AtiConnection.open(self.nt.host, self.nt.port, self, self.nt.connect_timeout_s)
        self.connections += 1

    async def _open_folders(self) -> None:
        assert self.nt.incoming is not None and self.nt.outgoing is not None
        folders = OifFolders(self.nt.incoming, self.nt.outgoing, list(self.nt.accounts.values()), self, self.nt.poll_s)
        await folders.open()
        self.folders = folders

    async def disconnect(self) -> None:
        await self._stop_supervisor()
        await self._close_route("client disconnect")
        self._emitting = self._route_up = False
        self.book.fail_waiters(BrokerUnavailable("ninjatrader: disconnected", sent=False))
        self._set_state(ConnectionState.DISCONNECTED)

    async def _stop_supervisor(self) -> None:
        self._stopping = True
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            await stop_task(supervisor)

    async def _close_route(self, reason: str) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            await connection.close(reason)
        folders, self.folders = self.folders, None
        if folders is not None:
            await folders.close()

    async def _supervise(self) -> None:
        """On a lost ATI connection: fail what waits (it may have been carried out), reconnect
        with backoff, and take NinjaTrader's state again; the ledger reports new fills once."""
        while not self._stopping:
            connection = self.connection
            if connection is None:
                return
            await connection.closed.wait()
            if self._stopping:
                return
            reason = connection.close_reason
            self._route_up = False
            self.book.forget_changes()
            self.book.fail_waiters(BrokerUnavailable(f"ninjatrader: ATI connection lost: {reason}", sent=True))
            self._set_state(ConnectionState.DEGRADED, f"ninjatrader: ATI connection lost: {reason}")
            try:
                async for attempt in forever(
                    lambda exc: isinstance(exc, BrokerUnavailable),
                    what=f"ninjatrader reconnect to {self.nt.address}",
                    first_s=self.nt.reconnect_min_s,
                    max_s=self.nt.reconnect_max_s,
                ):
                    with attempt:
                        await self._open_ati()
            except Exception as exc:  # a bug must not leave the session DEGRADED with nobody on it
                log.exception("ninjatrader session %s: reconnect failed", self.config.session_id)
                self.connection = None
                self._set_state(ConnectionState.DISCONNECTED, f"ninjatrader: reconnect failed: {exc!r}")
                return
            self.reconnects += 1
            self._route_up = True
            self._set_state(ConnectionState.CONNECTED if self._broker_connected else ConnectionState.DEGRADED)

    # -- what the route says (FeedListener) ----------------------------------------------------
    def on_order(self, nt_id: str, report: OrderReport) -> None:
        """A change of an order this adapter placed is news even while connecting (a fill while
        the caller had us disconnected); other orders' state on connect is only known."""
        ours = nt_id in self.book.orders or self.book.ended(nt_id) is not None
        for event in self.book.order_report(nt_id, report):
            if self._emitting or ours:
                self._emit(event)

    def on_position(self, account: str, instrument: str, report: PositionReport) -> None:
        try:
            event = self.book.position_report(account, instrument, report)
        except SymbolError as exc:
            self.on_bad_input(f"position of {account} in {instrument!r}: {exc}")
            return
        if event is not None and self._emitting:
            self._emit(event)

    def on_orders_list(self, account: str, ids: list[str]) -> None:
        self.book.order_list(account, ids)

    def on_order_files(self, ids: set[str]) -> None:
        self.book.files_after_wipe(ids)

    def on_connection(self, connected: bool) -> None:
        """NinjaTrader's own connection (to its broker) went up or down."""
        self._broker_connected = connected
        if self._route_up and self._emitting:
            if connected:
                self._set_state(ConnectionState.CONNECTED)
            else:
                self._set_state(
                    ConnectionState.DEGRADED, "ninjatrader: NinjaTrader reports its connection DISCONNECTED"
                )

    def on_bad_input(self, text: str) -> None:
        """Something NinjaTrader sent that could not be read: kept as the last error and sent
        as an event; never raised into the reader."""
        reason = f"ninjatrader: {text}"
        log.error("ninjatrader session %s: %s", self.config.session_id, reason)
        self.bad_input.append(reason)
        self._last_error = reason
        self._emit(ConnectionEvent(state=self._state, reason=reason))

    # -- the route -----------------------------------------------------------------------------
    @property
    def generation(self) -> int:
        """Changes when what NinjaTrader told us may have been lost: a new ATI connection, or
        the outgoing folder wiped (a NinjaTrader restart)."""
        if self.nt.route is Route.OIF:
            return self.folders.generation if self.folders is not None else -1
        return self.connections

    async def wait_route(self) -> None:
        """Wait (up to ``request_timeout_s``) for the route while the supervisor reconnects:
        a lookup right after a lost answer must ask NinjaTrader, not fail on the gap."""
        deadline = asyncio.get_running_loop().time() + self.nt.request_timeout_s
        while not self._route_up and self._supervisor is not None and not self._supervisor.done():
            if asyncio.get_running_loop().time() >= deadline:
                raise BrokerUnavailable(f"ninjatrader: not reconnected to {self.nt.address} in time", sent=False)
            await asyncio.sleep(0.02)

    async def send(self, lines: list[str], order_ids: list[str]) -> None:
        """Hand ``lines`` to NinjaTrader: COMMAND tokens, or one instruction file."""
        if self.nt.route is Route.OIF:
            if self.folders is None:
                raise BrokerUnavailable("ninjatrader: not connected (folders not open)", sent=False)
            self.folders.write(lines, order_ids)
            return
        connection = self.connection
        if connection is None or connection.closed.is_set():
            raise BrokerUnavailable(f"ninjatrader: not connected to {self.nt.address}", sent=False)
        for n, line in enumerate(lines):
            try:
                await connection.send(line)
            except BrokerUnavailable as exc:
                raise BrokerUnavailable(exc.message, sent=exc.sent or n > 0) from exc

    # -- orders --------------------------------------------------------------------------------
    async def place(self, command: PlaceOrder) -> OrderAck:
        return await orders.place(self, command)

    async def modify(self, command: ModifyOrder) -> OrderAck:
        return await orders.modify(self, command)

    async def cancel(self, command: CancelOrder) -> OrderAck:
        return await orders.cancel(self, command)

    async def flatten(self, command: FlattenPosition) -> OrderAck:
        return await orders.flatten(self, command)

    async def lookup(self, account_id: str, client_order_id: str) -> OrderAck | None:
        return await orders.lookup(self, account_id, client_order_id)

    # -- state ---------------------------------------------------------------------------------
    async def snapshot(self, account_id: str) -> AccountSnapshot:
        """Open orders this adapter placed and NinjaTrader still works, positions, and the cash
        value (TCP ``CashValue``; the file route has none, so the ``balance`` option or 0)."""
        account = self.broker_account(account_id)
        if self.nt.route is Route.OIF and self.folders is not None:
            self.folders.scan()
        elif self.connection is None:
            raise BrokerUnavailable(f"ninjatrader: not connected to {self.nt.address}", sent=False)
        balance = self.connection.cache.cash(account) if self.connection is not None else None
        if balance is None:
            balance = self.nt.balance
        return AccountSnapshot(
            account_id=account_id,
            balance=balance,
            open_orders=tuple(self.book.open_orders(account_id)),
            positions=tuple(self.book.open_positions(account_id)),
        )
