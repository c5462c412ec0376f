"""The simulated DTC server: a TCP listener speaking DTC around the shared simulator kernel.

One dispatch table maps message types to handlers. The kernel does the trading; this server adds
the protocol around it: the encoding handshake (binary until an ENCODING_REQUEST grants JSON),
logon with the trading-support flags, heartbeats both ways with a silent client dropped after
two intervals, logoff, and the resync requests (accounts, open orders, positions).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from ...instruments import INSTRUMENTS
from ...model import FillEvent
from ...simkernel.exchange import KernelEvent, SimExchange
from ...simkernel.faults import FaultSwitches
from ...simkernel.latency import Latency
from ...simkernel.logins import SimLogin
from ...simkernel.serving import Background
from ..codec import DecodeError, Message, StreamDecoder, make
from ..messages import Encoding, LogonStatus, MsgType
from .oco import OcoDesk
from .orders import OrderDesk
from .resync import Resync
from .session import Session

log = logging.getLogger(__name__)

DEFAULT_ACCOUNTS = ("DTC-LEADER", "DTC-FOLLOWER-1", "DTC-FOLLOWER-2")
SUPPORTED_ENCODINGS = (Encoding.BINARY, Encoding.JSON)
Handler = Callable[[Session, Message], None]
PASSWORD_BYTES = 31  # char Password[32], NUL-terminated
#: Requests that carry out or change orders: the ones ``latency`` delays.
ORDER_ENTRY = frozenset(
    {
        MsgType.SUBMIT_NEW_SINGLE_ORDER,
        MsgType.SUBMIT_NEW_OCO_ORDER,
        MsgType.SUBMIT_FLATTEN_POSITION_ORDER,
        MsgType.CANCEL_ORDER,
        MsgType.CANCEL_REPLACE_ORDER,
    }
)


def fit_login(login: SimLogin) -> SimLogin:
    """The login with a password DTC can carry: LOGON_REQUEST's Password holds 31 bytes, and the
    shared login planner issues 36-character UUIDs. A longer secret becomes its first 31
    characters without dashes; ``credentials_for`` tells the password actually served."""
    if len(login.secret.encode()) <= PASSWORD_BYTES:
        return login
    return SimLogin(login.username, login.secret.replace("-", "")[:PASSWORD_BYTES], login.accounts)


def demo_symbols(today: date | None = None) -> list[str]:
    """Each known root in its quarterly front month (``ESZ6``): what a trader can send here."""
    today = today or date.today()
    code = "HMUZ"[(today.month - 1) // 3]
    return [f"{root}{code}{today.year % 10}" for root in INSTRUMENTS]


class DtcSimulator:
    """Options: ``logins`` (list of :class:`SimLogin`; default one login ``username`` /
    ``password`` owning ``accounts``), ``initial_encoding`` (the server's pinned encoding before
    any ENCODING_REQUEST; default binary), ``default_heartbeat_s`` (used when the logon asks for
    0), ``time_scale`` (multiplies every heartbeat interval, so tests run in fractions of a
    second), ``client_id_reuse`` (``"reject"``, the default and what the order-entry page asks of
    a server, or ``"new_order"`` for a server that does not check), ``flatten_cancels_orders``
    (default False: a flatten leaves working orders alone, the answer a copier must survive),
    ``oco_supported`` (default True: SUBMIT_NEW_OCO_ORDER, standalone or attached to a parent
    sent with IsParentOrder 1; False declares and refuses it), ``trading_supported`` (default True; False answers the logon with TradingIsSupported 0, a
    Sierra Chart server without "Allow Trading"), ``latency`` (ms or ``"50+20"`` before each
    order-entry request is handled), ``tick_ms`` (market clock; default 0 = prices move only by
    ``exchange.advance()``/``set_price``).
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
        self.logins = {login.username: fit_login(login) for login in logins}
        for login in logins:
            for account in login.accounts:
                self.exchange.open_account(account)
        self.initial_encoding = Encoding(options.get("initial_encoding", Encoding.BINARY))
        self.default_heartbeat_s = float(options.get("default_heartbeat_s", 10.0))
        self.time_scale = float(options.get("time_scale", 1.0))
        self.server_name = str(options.get("server_name", "CopyTrader DTC simulator"))
        self.trading_supported = bool(options.get("trading_supported", True))
        self.latency = Latency.parse(options.get("latency", 0))
        self.tick_ms = float(options.get("tick_ms", 0.0))
        self.resync = Resync(self.exchange)
        self._background = Background()
        self.desk = OrderDesk(
            self.exchange,
            self._publish,
            client_id_reuse=str(options.get("client_id_reuse", "reject")),
            flatten_cancels_orders=bool(options.get("flatten_cancels_orders", False)),
        )
        self.oco = OcoDesk(self.exchange, self.desk, supported=bool(options.get("oco_supported", True)))
        self.sessions: set[Session] = set()
        self.logons = 0
        #: Test hook: the server is unreachable (each new connection is closed at once, before
        #: any answer) while the exchange goes on trading, e.g. filling orders nobody hears of.
        self.hold_connections = False
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.routes: dict[int, Handler] = {
            MsgType.ENCODING_REQUEST: self._encoding,
            MsgType.LOGON_REQUEST: self._logon,
            MsgType.HEARTBEAT: self._heartbeat,
            MsgType.LOGOFF: self._logoff,
            MsgType.TRADE_ACCOUNTS_REQUEST: self.resync.trade_accounts,
            MsgType.OPEN_ORDERS_REQUEST: self.resync.open_orders,
            MsgType.CURRENT_POSITIONS_REQUEST: self.resync.positions,
            MsgType.ACCOUNT_BALANCE_REQUEST: self.resync.balance,
            MsgType.SUBMIT_NEW_SINGLE_ORDER: self.desk.submit,
            MsgType.SUBMIT_NEW_OCO_ORDER: self.oco.submit,
            MsgType.SUBMIT_FLATTEN_POSITION_ORDER: self.desk.flatten,
            MsgType.HISTORICAL_ORDER_FILLS_REQUEST: self.desk.historical_fills,
            MsgType.CANCEL_ORDER: self.desk.cancel,
            MsgType.CANCEL_REPLACE_ORDER: self.desk.cancel_replace,
        }
        self._before_logon = {MsgType.ENCODING_REQUEST, MsgType.LOGON_REQUEST, MsgType.HEARTBEAT, MsgType.LOGOFF}

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> DtcSimulator:
        self.exchange.add_listener(self._price_oco_legs)
        self.exchange.add_listener(self.desk.on_event)
        self.exchange.add_forget_listener(self.desk.forget)
        self.exchange.add_fault_listener(self._faults_changed)
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        if self.tick_ms > 0:
            self._background.spawn(self._clock(), "dtc-sim-clock")
        return self

    async def _clock(self) -> None:
        while True:
            await asyncio.sleep(self.tick_ms / 1000.0)
            self.exchange.advance()

    async def stop(self) -> None:
        """Log every client off (they may reconnect: the server is only going away) and close."""
        if self._server is None:
            return
        self.exchange.remove_listener(self._price_oco_legs)
        self.exchange.remove_listener(self.desk.on_event)
        self.exchange.remove_forget_listener(self.desk.forget)
        self.exchange.remove_fault_listener(self._faults_changed)
        for session in list(self.sessions):
            self.logoff(session, "server shutting down")
        await self._background.cancel_all()
        server, self._server = self._server, None
        server.close()
        await server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _price_oco_legs(self, event: KernelEvent) -> None:
        if isinstance(event, FillEvent):
            self.oco.on_fill(event)

    # -- the shared simulator shape (conformance harness, ``copytrader sim``, the demo) ---------
    @property
    def base_url(self) -> str:
        """Where clients connect: DTC is plain TCP, so a ``dtc://host:port`` address."""
        return f"dtc://{self.host}:{self.port}"

    def credentials_for(self, username: str) -> dict[str, Any]:
        """What a client of ``username`` puts in its LOGON_REQUEST, and the accounts it sees."""
        login = self.logins[username]
        return {"username": login.username, "password": login.secret, "accounts": list(login.accounts)}

    def demo_credentials(self) -> dict[str, Any]:
        """The first login's credentials, every login, the address and the symbols to trade."""
        first = next(iter(self.logins))
        return {
            **self.credentials_for(first),
            "logins": [self.credentials_for(name) for name in self.logins],
            "host": self.host,
            "port": self.port,
            "base_url": self.base_url,
            "encodings": [e.name.lower() for e in SUPPORTED_ENCODINGS],
            "symbols": demo_symbols(),
        }

    def faults(self, account_name: str) -> FaultSwitches:
        return self.exchange.account(account_name).faults

    def logoff(self, session: Session, reason: str, *, do_not_reconnect: bool = False) -> None:
        session.send(make(MsgType.LOGOFF, Reason=reason[:95], DoNotReconnect=int(do_not_reconnect)))
        session.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(writer, StreamDecoder(self.initial_encoding))
        if self.hold_connections:
            session.close()
            return
        self.sessions.add(session)
        try:
            while not session.closed and (data := await reader.read(65536)):
                session.decoder.feed(data)
                while not session.closed and (item := session.decoder.next()) is not None:
                    if isinstance(item, Message) and item.type in ORDER_ENTRY:
                        await self.latency.wait()
                    self._dispatch(session, item)
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:  # a bug in one handler ends that connection, never the server
            log.exception("DTC simulator: connection handler failed; closing that connection")
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
        lost = item.type in ORDER_ENTRY and self._answer_lost(session, item)
        session.muted = lost  # the request is carried out; nothing it causes reaches this client
        handler(session, item)
        if lost:
            session.reset()  # and the connection goes with the answer

    def _answer_lost(self, session: Session, msg: Message) -> bool:
        """Fault ``lose_response_next``/``_rate`` of the request's account (a cancel or a
        cancel-replace names none: any account of the login)."""
        named = msg.values.get("TradeAccount") or session.trade_account
        names = [str(named)] if named else list(session.login.accounts if session.login else ())
        return any(self.exchange.account(n).faults.take_lose_response() for n in names if n in self.exchange.accounts)

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
                TradingIsSupported=int(self.trading_supported),
                OCOOrdersSupported=int(self.oco.supported),
                OrderCancelReplaceSupported=1,
                BracketOrdersSupported=int(self.oco.supported),
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
