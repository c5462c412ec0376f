"""The simulated DTC server: a TCP listener speaking DTC around the shared simulator kernel.

One dispatch table maps message types to handlers. The kernel does the trading; this server adds
the protocol around it: the encoding handshake (binary until an ENCODING_REQUEST grants JSON),
logon with the trading-support flags, heartbeats both ways with a silent client dropped after
two intervals, logoff, and the resync requests (accounts, open orders, positions).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from ...simkernel.exchange import SimExchange
from ...simkernel.logins import SimLogin
from ..codec import DecodeError, Message, StreamDecoder, make
from ..messages import Encoding, LogonStatus, MsgType, OrderUpdateReason
from .orders import OrderDesk
from .session import Session
from .updates import order_update, position_update

DEFAULT_ACCOUNTS = ("DTC-LEADER", "DTC-FOLLOWER-1", "DTC-FOLLOWER-2")
SUPPORTED_ENCODINGS = (Encoding.BINARY, Encoding.JSON)
Handler = Callable[[Session, Message], None]


class DtcSimulator:
    """Options: ``logins`` (list of :class:`SimLogin`; default one login ``username`` /
    ``password`` owning ``accounts``), ``initial_encoding`` (the server's pinned encoding before
    any ENCODING_REQUEST; default binary), ``default_heartbeat_s`` (used when the logon asks for
    0), ``time_scale`` (multiplies every heartbeat interval, so tests run in fractions of a
    second), ``client_id_reuse`` (``"reject"``, the default and what the order-entry page asks of
    a server, or ``"new_order"`` for a server that does not check), ``flatten_cancels_orders``
    (default False: a flatten leaves working orders alone, the answer a copier must survive).
    """

    def __init__(
        self, exchange: SimExchange | None = None, host: str = "127.0.0.1", port: int = 0, **options: Any
    ) -> None:
        self.exchange = exchange or SimExchange()
        self.host, self.port = host, port
        logins: list[SimLogin] | None = options.get("logins")
        if not logins:
            accounts = tuple(options.get("accounts", DEFAULT_ACCOUNTS))
            logins = [
                SimLogin(str(options.get("username", "sim-trader")), str(options.get("password", "sim")), accounts)
            ]
        self.logins = {login.username: login for login in logins}
        for login in logins:
            for account in login.accounts:
                self.exchange.open_account(account)
        self.initial_encoding = Encoding(options.get("initial_encoding", Encoding.BINARY))
        self.default_heartbeat_s = float(options.get("default_heartbeat_s", 10.0))
        self.time_scale = float(options.get("time_scale", 1.0))
        self.server_name = str(options.get("server_name", "CopyTrader DTC simulator"))
        self.desk = OrderDesk(
            self.exchange,
            self._publish,
            client_id_reuse=str(options.get("client_id_reuse", "reject")),
            flatten_cancels_orders=bool(options.get("flatten_cancels_orders", False)),
        )
        self.sessions: set[Session] = set()
        self.logons = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.routes: dict[int, Handler] = {
            MsgType.ENCODING_REQUEST: self._encoding,
            MsgType.LOGON_REQUEST: self._logon,
            MsgType.HEARTBEAT: self._heartbeat,
            MsgType.LOGOFF: self._logoff,
            MsgType.TRADE_ACCOUNTS_REQUEST: self._trade_accounts,
            MsgType.OPEN_ORDERS_REQUEST: self._open_orders,
            MsgType.CURRENT_POSITIONS_REQUEST: self._positions,
            MsgType.SUBMIT_NEW_SINGLE_ORDER: self.desk.submit,
            MsgType.SUBMIT_NEW_OCO_ORDER: self.desk.submit_oco,
            MsgType.SUBMIT_FLATTEN_POSITION_ORDER: self.desk.flatten,
            MsgType.HISTORICAL_ORDER_FILLS_REQUEST: self.desk.historical_fills,
            MsgType.CANCEL_ORDER: self.desk.cancel,
            MsgType.CANCEL_REPLACE_ORDER: self.desk.cancel_replace,
        }
        self._before_logon = {MsgType.ENCODING_REQUEST, MsgType.LOGON_REQUEST, MsgType.HEARTBEAT, MsgType.LOGOFF}

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> DtcSimulator:
        self.exchange.add_listener(self.desk.on_event)
        self.exchange.add_fault_listener(self._faults_changed)
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Log every client off (they may reconnect: the server is only going away) and close."""
        if self._server is None:
            return
        self.exchange.remove_listener(self.desk.on_event)
        self.exchange.remove_fault_listener(self._faults_changed)
        for session in list(self.sessions):
            self.logoff(session, "server shutting down")
        server, self._server = self._server, None
        server.close()
        await server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def logoff(self, session: Session, reason: str, *, do_not_reconnect: bool = False) -> None:
        session.send(make(MsgType.LOGOFF, Reason=reason[:95], DoNotReconnect=int(do_not_reconnect)))
        session.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(writer, StreamDecoder(self.initial_encoding))
        self.sessions.add(session)
        try:
            while not session.closed and (data := await reader.read(65536)):
                session.decoder.feed(data)
                while not session.closed and (item := session.decoder.next()) is not None:
                    self._dispatch(session, item)
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.sessions.discard(session)
            session.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _dispatch(self, session: Session, item: Message | DecodeError) -> None:
        if isinstance(item, DecodeError):
            if item.fatal:  # framing is lost: nothing after this can be read
                session.close()
            return  # one unreadable frame is skipped
        handler = self.routes.get(item.type)
        if handler is None:
            return  # a message a client has no business sending (e.g. ORDER_UPDATE): ignored
        if item.type not in self._before_logon and not session.logged_on:
            self.logoff(session, "logon required")
            return
        if item.type is not MsgType.HEARTBEAT or not self._heartbeats_lost(session):
            session.last_received = time.monotonic()
        handler(session, item)

    def _publish(self, account: str, message: Message) -> None:
        for session in list(self.sessions):
            if session.owns(account):
                session.send(message)

    def _faults_changed(self, account: str) -> None:
        if self.exchange.account(account).faults.take_drop():
            for session in list(self.sessions):
                if session.owns(account):
                    session.close()

    def _heartbeats_lost(self, session: Session) -> bool:
        names = session.login.accounts if session.login else ()
        return any(self.exchange.account(name).faults.lose_heartbeats for name in names)

    # -- handshake --------------------------------------------------------------------------
    def _encoding(self, session: Session, msg: Message) -> None:
        """Grant JSON or binary; anything else falls back to binary. After logon nothing changes."""
        requested = msg.as_int("Encoding")
        granted: Encoding = session.encoding
        if not session.logged_on:
            granted = Encoding(requested) if requested in SUPPORTED_ENCODINGS else Encoding.BINARY
        session.send(make(MsgType.ENCODING_RESPONSE, Encoding=int(granted)))
        session.decoder.encoding = granted

    def _logon(self, session: Session, msg: Message) -> None:
        def refuse(text: str) -> None:
            session.send(make(MsgType.LOGON_RESPONSE, Result=int(LogonStatus.ERROR), ResultText=text))
            session.close()

        if session.logged_on:
            session.send(make(MsgType.LOGON_RESPONSE, Result=int(LogonStatus.ERROR), ResultText="already logged on"))
            return
        login = self.logins.get(msg.as_text("Username"))
        if login is None or login.secret != msg.as_text("Password"):
            refuse("invalid username or password")
            return
        account = msg.as_text("TradeAccount")
        if account and account not in login.accounts:
            refuse(f"trade account {account!r} is not available to this user")
            return
        interval = msg.as_int("HeartbeatIntervalInSeconds")
        session.login, session.trade_account = login, account
        session.heartbeat_s = (interval if interval > 0 else self.default_heartbeat_s) * self.time_scale
        self.logons += 1
        session.send(
            make(
                MsgType.LOGON_RESPONSE,
                Result=int(LogonStatus.SUCCESS),
                ResultText="logged on",
                ServerName=self.server_name,
                TradingIsSupported=1,
                OCOOrdersSupported=0,
                OrderCancelReplaceSupported=1,
                BracketOrdersSupported=0,
                MarketDepthIsSupported=0,
                MarketDataSupported=0,
                SecurityDefinitionsSupported=0,
                HistoricalPriceDataSupported=0,
            )
        )
        task = asyncio.get_running_loop().create_task(self._heartbeats(session))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _heartbeats(self, session: Session) -> None:
        """Send a heartbeat every interval; drop the client after two intervals of silence."""
        while not session.closed:
            await asyncio.sleep(session.heartbeat_s)
            if time.monotonic() - session.last_received > 2 * session.heartbeat_s:
                self.logoff(session, "heartbeat timeout")
                return
            session.send(make(MsgType.HEARTBEAT, CurrentDateTime=int(time.time())))
            with contextlib.suppress(ConnectionError):
                await session.writer.drain()

    def _heartbeat(self, session: Session, msg: Message) -> None:
        """Nothing to answer: receiving it already counted as a sign of life."""

    def _logoff(self, session: Session, msg: Message) -> None:
        session.close()

    # -- resync -----------------------------------------------------------------------------
    def _accounts(self, session: Session, wanted: str) -> list[str] | None:
        assert session.login is not None
        if not wanted:
            return list(session.login.accounts)
        return [wanted] if wanted in session.login.accounts else None

    def _trade_accounts(self, session: Session, msg: Message) -> None:
        accounts = self._accounts(session, "") or []
        for n, account in enumerate(accounts, start=1):
            session.send(
                make(
                    MsgType.TRADE_ACCOUNT_RESPONSE,
                    TotalNumberMessages=len(accounts),
                    MessageNumber=n,
                    TradeAccount=account,
                    RequestID=msg.as_int("RequestID"),
                )
            )

    def _open_orders(self, session: Session, msg: Message) -> None:
        request_id = msg.as_int("RequestID")
        accounts = self._accounts(session, msg.as_text("TradeAccount"))
        if accounts is None:
            text = f"trade account {msg.as_text('TradeAccount')!r} is not available"
            session.send(make(MsgType.OPEN_ORDERS_REJECT, RequestID=request_id, RejectText=text))
            return
        orders = [o for name in accounts for o in self.exchange.open_orders(name)]
        if not msg.as_int("RequestAllOrders"):
            orders = [o for o in orders if o.order_id == msg.as_text("ServerOrderID")]
        reason = OrderUpdateReason.OPEN_ORDERS_REQUEST_RESPONSE
        if not orders:
            session.send(
                make(
                    MsgType.ORDER_UPDATE,
                    RequestID=request_id,
                    TotalNumMessages=1,
                    MessageNumber=1,
                    NoOrders=1,
                    OrderUpdateReason=int(reason),
                )
            )
        for n, order in enumerate(orders, start=1):
            extra = {"RequestID": request_id, "TotalNumMessages": len(orders), "MessageNumber": n}
            session.send(order_update(order, reason, **extra))

    def _positions(self, session: Session, msg: Message) -> None:
        request_id = msg.as_int("RequestID")
        accounts = self._accounts(session, msg.as_text("TradeAccount"))
        if accounts is None:
            text = f"trade account {msg.as_text('TradeAccount')!r} is not available"
            session.send(make(MsgType.CURRENT_POSITIONS_REJECT, RequestID=request_id, RejectText=text))
            return
        events = [
            self.exchange.position_event(name, symbol)
            for name in accounts
            for symbol, position in sorted(self.exchange.account(name).positions.items())
            if position.net_quantity
        ]
        if not events:
            empty = {"RequestID": request_id, "TotalNumberMessages": 1, "MessageNumber": 1, "NoPositions": 1}
            session.send(make(MsgType.POSITION_UPDATE, **empty))
        for n, event in enumerate(events, start=1):
            extra = {"RequestID": request_id, "TotalNumberMessages": len(events), "MessageNumber": n}
            session.send(position_update(event, **extra))
