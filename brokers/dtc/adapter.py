"""The Sierra Chart DTC adapter: one logon to a DTC server (Sierra Chart's, or a broker's).

Session: ``endpoint`` is ``dtc://host:port`` (or ``host:port``), ``username``/``secret`` the DTC
server's logon; ``accounts`` maps our ids to DTC TradeAccounts. Options (``options.py``):
``encoding`` (``binary``, the default, or ``json``), ``heartbeat_s``, ``trade_mode``,
``client_name``, ``handshake_timeout_s``, ``request_timeout_s``, ``reconnect_min_s``/
``reconnect_max_s``, ``fill_history_days``.

Every answer arrives as an ORDER_UPDATE: a request waits for the update carrying its
ClientOrderID and the reason that answers it (``pending.py``). Rejects carry their text in
InfoText and become ``OrderRejected`` / rejected order events with that text.

Exactly once (docs/fidelity/dtc.md): the order-entry page says a server rejects a ClientOrderID
used before in the trading session, but nothing relies on it: :meth:`place` never resends, a lost
answer is ``BrokerUnavailable(sent=True)``, and :meth:`lookup` asks the server (open orders, then
the fill history). A refused repeat is looked up and answered with the order that holds the id.
A lost connection is retried with backoff (``common.retrying``) unless the server's LOGOFF said
DoNotReconnect; after each reconnect the open orders, positions and fill history are read again
and what changed meanwhile is emitted, each fill once (``tracking.py``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

from ...common.retrying import forever
from ...common.tasks import stop_task
from ..base import BrokerAdapter, SessionConfig
from ..errors import AuthenticationFailed, BrokerError, BrokerUnavailable, UnsupportedOperation
from ..model import (
    AccountSnapshot,
    CancelOrder,
    Capabilities,
    ConnectionEvent,
    ConnectionState,
    FillEvent,
    FlattenPosition,
    ModifyOrder,
    OrderAck,
    OrderEvent,
    OrderType,
    PlaceOrder,
    PositionEvent,
)
from . import brackets, orders, parsing
from .codec import RAW_LIMIT, DecodeError, Message, encode, make
from .config import DtcConfig, parse_endpoint
from .messages import Encoding, MsgType
from .pending import Pending, RequestRefused
from .tracking import SessionBook
from .transport import DtcConnection, ReconnectElsewhere

log = logging.getLogger(__name__)
T = TypeVar("T")
LOGON_TEXT_BYTES = 31  # Username[32] and Password[32] keep room for the NUL


class DtcAdapter(BrokerAdapter):
    platform: ClassVar[str] = "dtc"
    capabilities: ClassVar[Capabilities] = Capabilities(
        order_types=frozenset({OrderType.MARKET, OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT}),
        brackets=True,
        oco=True,
    )

    def __init__(self, config: SessionConfig) -> None:
        super().__init__(config)
        self.dtc = DtcConfig.from_session(config)
        self.book = SessionBook(config.accounts)
        self.pending = Pending()
        self.connection: DtcConnection | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self.reconnects = 0

    # -- lifecycle ---------------------------------------------------------------------------
    async def connect(self) -> None:
        if self._state is ConnectionState.CONNECTED:
            return
        await self._stop_supervisor()  # a reconnect loop in progress gives way to this connect
        await self._close_connection("reconnecting")
        self._stopping = False
        self._set_state(ConnectionState.CONNECTING)
        try:
            await self._open()
            await self._resync(emit=False)  # what exists already is known, not news
        except BaseException as exc:
            await self._close_connection("connect failed")
            self._set_state(ConnectionState.DISCONNECTED, f"dtc: connect to {self.dtc.address} failed: {exc}")
            raise
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())
        self._set_state(ConnectionState.CONNECTED)

    async def disconnect(self) -> None:
        await self._stop_supervisor()
        await self._close_connection("client logoff")
        self.pending.fail_all(BrokerUnavailable("dtc: disconnected", sent=False))
        self._set_state(ConnectionState.DISCONNECTED)

    async def _open(self) -> None:
        """Encoding, logon, the trading flag and the accounts; ``self.connection`` on success."""
        for what, value in (("username", self.dtc.endpoint.username), ("password", self.dtc.endpoint.password)):
            if len(value.encode()) > LOGON_TEXT_BYTES:
                raise AuthenticationFailed(
                    f"dtc: the {what} is {len(value.encode())} bytes; LOGON_REQUEST carries at most {LOGON_TEXT_BYTES}",
                    code="LOGON_FIELD_TOO_LONG",
                )
        connection = await self._logon()
        self.connection = connection
        if not connection.flag("TradingIsSupported"):
            await self._close_connection("trading not supported")
            raise UnsupportedOperation(
                f"dtc: the server at {self.dtc.address} says trading is not supported (LOGON_RESPONSE "
                "TradingIsSupported = 0); on Sierra Chart turn on Allow Trading in the DTC server settings",
                code="TRADING_NOT_SUPPORTED",
            )
        listed = {m.as_text("TradeAccount") for m in await self._collect(MsgType.TRADE_ACCOUNTS_REQUEST)}
        missing = sorted(set(self.dtc.accounts.values()) - listed)
        if missing:
            await self._close_connection("accounts missing")
            raise AuthenticationFailed(f"dtc: the logon sees no trade account {', '.join(missing)}", code="ACCOUNT")

    async def _stop_supervisor(self) -> None:
        self._stopping = True
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            await stop_task(supervisor)

    async def _logon(self) -> DtcConnection:
        """Log on at the configured address, following one LOGON_RECONNECT_NEW_ADDRESS (a server
        that hands its clients on, e.g. a relay); the next reconnect starts at the configured one."""
        endpoint = self.dtc.endpoint
        try:
            return await DtcConnection.open(endpoint, self._on_message, self._on_decode_error)
        except ReconnectElsewhere as exc:
            try:
                host, port = parse_endpoint(exc.address)
            except ValueError:
                raise BrokerUnavailable(f"dtc: {exc.message} (an address we cannot read)", sent=False) from exc
            log.info("dtc session %s: %s", self.config.session_id, exc.message)
            moved = dataclasses.replace(endpoint, host=host, port=port)
            return await DtcConnection.open(moved, self._on_message, self._on_decode_error)

    async def _close_connection(self, reason: str) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            await connection.close(reason)

    async def _supervise(self) -> None:
        """Watch the connection; on loss reconnect with backoff and resync, unless told not to."""
        while not self._stopping:
            connection = self.connection
            if connection is None:
                return
            await connection.closed.wait()
            if self._stopping:
                return
            self.pending.fail_all(BrokerUnavailable(f"dtc: connection lost: {connection.close_reason}", sent=True))
            if connection.do_not_reconnect:
                self.connection = None
                self._set_state(
                    ConnectionState.DISCONNECTED,
                    f"dtc: {connection.close_reason} with DoNotReconnect; not reconnecting until connect() is called",
                )
                return
            self._set_state(ConnectionState.DEGRADED, f"dtc: connection lost: {connection.close_reason}")
            try:
                async for attempt in forever(
                    lambda exc: isinstance(exc, BrokerUnavailable),
                    what=f"dtc reconnect to {self.dtc.address}",
                    first_s=self.dtc.reconnect_min_s,
                    max_s=self.dtc.reconnect_max_s,
                ):
                    with attempt:
                        await self._reconnect_once()
            except BrokerError as exc:  # refused for good (credentials, trading switched off)
                self.connection = None
                self._set_state(ConnectionState.DISCONNECTED, f"dtc: reconnect refused: {exc}")
                return
            except Exception as exc:  # a bug must not leave the session DEGRADED with nobody on it
                log.exception("dtc session %s: reconnect failed", self.config.session_id)
                self.connection = None
                self._set_state(ConnectionState.DISCONNECTED, f"dtc: reconnect failed: {exc!r}")
                return
            self.reconnects += 1
            self._set_state(ConnectionState.CONNECTED)

    async def _reconnect_once(self) -> None:
        try:
            await self._open()
            await self._resync(emit=True)
        except BaseException:
            await self._close_connection("reconnect attempt failed")
            raise

    # -- orders ------------------------------------------------------------------------------
    async def place(self, command: PlaceOrder) -> OrderAck:
        """Send SUBMIT_NEW_SINGLE_ORDER once and wait for its ORDER_UPDATE; a bracket goes as a
        parent order with its exits as one OCO (``brackets.py``)."""
        if command.bracket is not None:
            return await brackets.place_bracket(self, command)
        return await orders.place(self, command)

    async def modify(self, command: ModifyOrder) -> OrderAck:
        return await orders.modify(self, command)

    async def cancel(self, command: CancelOrder) -> OrderAck:
        return await orders.cancel(self, command)

    async def flatten(self, command: FlattenPosition) -> OrderAck:
        return await orders.flatten(self, command)

    async def lookup(self, account_id: str, client_order_id: str) -> OrderAck | None:
        return await orders.lookup(self, account_id, client_order_id)

    # -- state -------------------------------------------------------------------------------
    async def snapshot(self, account_id: str) -> AccountSnapshot:
        account = self.broker_account(account_id)
        balances = await self._collect(MsgType.ACCOUNT_BALANCE_REQUEST, TradeAccount=account)
        cash = next((parsing.price_in(m.as_float("CashBalance")) for m in balances), None)
        return AccountSnapshot(
            account_id=account_id,
            balance=cash if cash is not None else Decimal(0),
            open_orders=tuple(await self.open_orders(account_id)),
            positions=tuple(await self.positions(account_id)),
        )

    async def open_orders(self, account_id: str) -> list[OrderEvent]:
        found = await self._collect(MsgType.OPEN_ORDERS_REQUEST, TradeAccount=self.broker_account(account_id))
        return [event for m in found if (event := self._read(lambda m: parsing.order_event(m, account_id), m))]

    async def positions(self, account_id: str) -> list[PositionEvent]:
        found = await self._collect(MsgType.CURRENT_POSITIONS_REQUEST, TradeAccount=self.broker_account(account_id))
        return [event for m in found if (event := self._read(lambda m: parsing.position_event(m, account_id), m))]

    async def fill_history(self, account_id: str) -> list[FillEvent]:
        """The server's fills of the last ``fill_history_days``, in time order, each traced to our
        ClientOrderID where this session saw the pair (``tracking.py`` says why it must)."""
        found = await self._collect(
            MsgType.HISTORICAL_ORDER_FILLS_REQUEST,
            TradeAccount=self.broker_account(account_id),
            NumberOfDays=self.dtc.fill_history_days,
        )

        def read(m: Message) -> FillEvent:
            return parsing.history_fill(m, account_id, self.book.client_ids.get(m.as_text("ServerOrderID")))

        return self.book.history_fills([fill for m in found if (fill := self._read(read, m))])

    async def _resync(self, *, emit: bool) -> None:
        """Open orders, positions and fills of every account; emit what changed (``emit``).
        Forgotten orders a complete fill history no longer lists are forgotten for good."""
        replay, complete = self.book.finished.begin_replay(), True
        for account_id in self.config.accounts:
            try:
                fills = await self.fill_history(account_id)
            except RequestRefused as exc:  # a server without fill history: resync what it has
                self.report(f"fill history of {account_id} refused, fills missed while away cannot be read: {exc}")
                fills, complete = [], False
            for fill in fills:
                self.book.finished.listed(replay, fill.broker_order_id)
            events = self.book.reconcile(
                account_id, await self.open_orders(account_id), fills, await self.positions(account_id)
            )
            if emit:
                for event in events:
                    self._emit(event)
        if complete:
            self.book.forget_for_good(self.book.finished.end_replay(replay))

    # -- the wire ----------------------------------------------------------------------------
    def live(self) -> DtcConnection:
        """The logged-on connection, or ``BrokerUnavailable(sent=False)``: nothing can be sent."""
        connection = self.connection
        if connection is None or connection.closed.is_set():
            raise BrokerUnavailable(f"dtc: not connected to {self.dtc.address}", sent=False)
        return connection

    async def answer(self, future: asyncio.Future[Message], connection: DtcConnection, what: str) -> Message:
        """Wait for an order request's ORDER_UPDATE; a timeout or a lost connection means the
        request may have been carried out (``sent=True``)."""
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.dtc.request_timeout_s)
        except TimeoutError:
            future.cancel()
            raise BrokerUnavailable(
                f"dtc: no answer to {what} within {self.dtc.request_timeout_s} s", sent=True
            ) from None

    async def _collect(self, msg_type: MsgType, **fields: str | int) -> list[Message]:
        """Send a RequestID request and gather its numbered answers."""
        connection = self.live()
        request_id, collector = self.pending.request(msg_type)
        connection.send(make(msg_type, RequestID=request_id, **fields))
        closed = asyncio.ensure_future(connection.closed.wait())
        waiting: set[asyncio.Future[Any]] = {collector.future, closed}
        try:
            done, _ = await asyncio.wait(
                waiting, timeout=self.dtc.request_timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            closed.cancel()
        if collector.future.done():
            return collector.future.result()
        collector.future.cancel()
        why = "the connection closed" if done else f"no answer within {self.dtc.request_timeout_s} s"
        raise BrokerUnavailable(f"dtc: {msg_type.name}: {why}", sent=False)

    def _on_message(self, msg: Message) -> None:
        if self.pending.offer_response(msg):
            return
        problems: list[Exception] = []
        try:
            if msg.type is MsgType.ORDER_UPDATE:
                events, problems = self.book.order_update(msg)
                for event in events:
                    self._emit(event)
            elif msg.type is MsgType.POSITION_UPDATE:
                position = self.book.position_update(msg)
                if position is not None:
                    self._emit(position)
        except parsing.BAD_VALUES as exc:
            problems.append(exc)
        finally:
            if msg.type is MsgType.ORDER_UPDATE:
                self.pending.offer_order(msg)
        for problem in problems:
            self.report_bad_input(f"{msg.spec.name} not understood: {problem}", self.raw(msg))

    def _on_decode_error(self, error: DecodeError) -> None:
        fatal = "; the stream cannot be read further, reconnecting" if error.fatal else ""
        self.report_bad_input(f"unreadable message ({error.kind}: {error.detail}){fatal}", error.raw)

    def report_bad_input(self, text: str, raw: bytes) -> None:
        """A message from the server that could not be read: a clear error with its raw bytes
        (truncated) where health and ``account.status`` show it, and as an event. Never raises."""
        self.report(f"{text}; raw[:{RAW_LIMIT}]={raw[:RAW_LIMIT].hex()}")

    def report(self, text: str) -> None:
        """An error no request raises: kept as the session's last error and sent as an event."""
        reason = f"dtc: {text}"
        log.error("dtc session %s: %s", self.config.session_id, reason)
        self._last_error = reason
        self._emit(ConnectionEvent(state=self._state, reason=reason))

    def raw(self, msg: Message) -> bytes:
        """The first bytes of ``msg`` as this connection's encoding carries it (for error reports)."""
        connection = self.connection
        try:
            return encode(msg, connection.encoding if connection else Encoding.BINARY)[:RAW_LIMIT]
        except Exception:  # noqa: BLE001 - a value our encoder refuses: say so instead of the bytes
            return repr(dict(msg.values)).encode()[:RAW_LIMIT]

    def _read(self, read: Callable[[Message], T | None], msg: Message) -> T | None:
        """``read(msg)``, or None after reporting a value the domain cannot hold."""
        try:
            return read(msg)
        except parsing.BAD_VALUES as exc:
            self.report_bad_input(f"{msg.spec.name} not understood: {exc}", self.raw(msg))
            return None
