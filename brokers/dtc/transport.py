"""One DTC client connection: encoding handshake, logon, heartbeats both ways, logoff.

The adapter (``adapter.py``) sits on this. It owns no trading logic: every message after logon
goes to ``on_message``. A DTC session is the TCP connection itself (no token, no resume), so a
lost connection means a new :meth:`DtcConnection.open` and a resync by the caller.

Following a public client (DTCSharp): the encoding request goes first, in binary, and the reply
is awaited before anything else is sent; the connection is given up when nothing has arrived
for two heartbeat intervals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import AuthenticationFailed, BrokerError, BrokerUnavailable
from .codec import DecodeError, Message, StreamDecoder, encode, make
from .messages import Encoding, LogonStatus, MsgType, TradeMode

__all__ = ["DtcConnection", "DtcEndpoint", "ReconnectElsewhere", "logon_error"]

OnMessage = Callable[[Message], None]
OnError = Callable[[DecodeError], None]
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DtcEndpoint:
    host: str
    port: int
    username: str
    password: str
    encoding: Encoding = Encoding.BINARY
    heartbeat_s: int = 10  # DTCSharp documents 5–60 s; 0 would mean none, which we never ask for
    trade_account: str = ""
    client_name: str = "CopyTrader"
    trade_mode: TradeMode = TradeMode.LIVE
    handshake_timeout_s: float = 30.0  # DTCSharp waits 30 s for each of the two replies
    time_scale: float = 1.0  # multiplies our own heartbeat clock (tests; the wire keeps heartbeat_s)


class ReconnectElsewhere(BrokerUnavailable):
    """LOGON_RECONNECT_NEW_ADDRESS: the server sends the client to ``address`` (host:port)."""

    def __init__(self, message: str, address: str) -> None:
        super().__init__(message, code="RECONNECT_NEW_ADDRESS", sent=False)
        self.address = address


def logon_error(response: Message) -> BrokerError:
    """The error for a LOGON_RESPONSE whose Result is not success.

    LOGON_ERROR (2) does not say whether the credentials or the server are at fault, so it is
    treated as permanent like LOGON_ERROR_NO_RECONNECT (3): retrying bad credentials in a loop
    is what a server may lock a user out for. RECONNECT_NEW_ADDRESS (4) is transient.
    """
    result, text = response.as_int("Result"), response.as_text("ResultText")
    if result == LogonStatus.RECONNECT_NEW_ADDRESS:
        address = response.as_text("ReconnectAddress")
        return ReconnectElsewhere(f"reconnect to {address}: {text}", address)
    name = LogonStatus(result).name if result in LogonStatus._value2member_map_ else str(result)
    return AuthenticationFailed(f"logon refused ({name}): {text}", code=f"LOGON_{name}")


class DtcConnection:
    """An open, logged-on DTC session. Build it with :meth:`open`."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        endpoint: DtcEndpoint,
        on_message: OnMessage,
        on_error: OnError | None = None,
    ) -> None:
        self.reader, self.writer, self.endpoint = reader, writer, endpoint
        self.on_message = on_message
        self.on_error = on_error
        self.decoder = StreamDecoder(Encoding.BINARY, exact_size=False)  # tolerate other versions
        self.logon_response: Message | None = None
        self.decode_errors: deque[DecodeError] = deque(maxlen=100)  # the latest, for tests and logs
        self.close_reason: str | None = None
        self.do_not_reconnect = False
        self.closed = asyncio.Event()
        self.last_received = time.monotonic()
        self.heartbeats_received = 0
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def open(cls, endpoint: DtcEndpoint, on_message: OnMessage, on_error: OnError | None = None) -> DtcConnection:
        """Connect, negotiate the encoding, log on; raises a :class:`BrokerError` on failure.

        ``on_error`` hears of every frame that could not be read (the raw bytes inside), so the
        caller can report it; ``on_message`` gets every other message after logon. Neither may
        stop the reader: an exception from either is logged and reading goes on.
        """
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(endpoint.host, endpoint.port), endpoint.handshake_timeout_s
            )
        except (OSError, TimeoutError) as exc:
            raise BrokerUnavailable(f"cannot connect to {endpoint.host}:{endpoint.port}: {exc}", sent=False) from exc
        connection = cls(reader, writer, endpoint, on_message, on_error)
        try:
            await connection._handshake()
        except BaseException:
            connection._abort("handshake failed")
            raise
        connection._tasks = [
            asyncio.get_running_loop().create_task(connection._read()),
            asyncio.get_running_loop().create_task(connection._heartbeat()),
        ]
        return connection

    @property
    def encoding(self) -> Encoding:
        return self.decoder.encoding

    def flag(self, name: str) -> bool:
        """A LOGON_RESPONSE support flag (TradingIsSupported, OCOOrdersSupported...)."""
        return self.logon_response is not None and bool(self.logon_response.as_int(name))

    def send(self, message: Message) -> None:
        if self.closed.is_set():
            raise BrokerUnavailable(f"DTC connection closed: {self.close_reason}", sent=False)
        self.writer.write(encode(message, self.encoding))

    async def close(self, reason: str = "client logoff") -> None:
        if not self.closed.is_set():
            with contextlib.suppress(ConnectionError, BrokerError):
                self.send(make(MsgType.LOGOFF, Reason=reason[:95]))
                await self.writer.drain()
        self._abort(reason)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()

    # -- internals ----------------------------------------------------------------------------
    def _abort(self, reason: str) -> None:
        if not self.closed.is_set():
            self.close_reason = reason
            self.closed.set()
            self.writer.close()

    async def _next(self) -> Message:
        """Read the next message during the handshake (before the reader task runs)."""
        while True:
            item = self.decoder.next()
            if isinstance(item, Message):
                return item
            if isinstance(item, DecodeError):
                if item.fatal:
                    raise BrokerUnavailable(f"unreadable handshake reply: {item.detail}", sent=False)
                self.decode_errors.append(item)
                continue
            data = await self.reader.read(65536)
            if not data:
                raise BrokerUnavailable("server closed the connection during logon", sent=False)
            self.decoder.feed(data)

    async def _expect(self, msg_type: MsgType) -> Message:
        async def wait() -> Message:
            while True:
                message = await self._next()
                if message.type is msg_type:
                    return message
                if message.type is MsgType.LOGOFF:
                    raise BrokerUnavailable(f"logged off during logon: {message.as_text('Reason')}", sent=False)

        try:
            return await asyncio.wait_for(wait(), self.endpoint.handshake_timeout_s)
        except TimeoutError as exc:
            raise BrokerUnavailable(
                f"no {msg_type.name} within {self.endpoint.handshake_timeout_s} s", sent=False
            ) from exc

    async def _handshake(self) -> None:
        ep = self.endpoint
        self.send(make(MsgType.ENCODING_REQUEST, Encoding=int(ep.encoding)))
        granted = await self._expect(MsgType.ENCODING_RESPONSE)
        encoding = granted.as_int("Encoding")
        if encoding not in (Encoding.BINARY, Encoding.JSON):
            raise BrokerUnavailable(f"server insists on encoding {encoding}, which is not implemented", sent=False)
        self.decoder.encoding = Encoding(encoding)
        self.send(
            make(
                MsgType.LOGON_REQUEST,
                Username=ep.username,
                Password=ep.password,
                HeartbeatIntervalInSeconds=ep.heartbeat_s,
                TradeMode=int(ep.trade_mode),
                TradeAccount=ep.trade_account,
                ClientName=ep.client_name,
            )
        )
        response = await self._expect(MsgType.LOGON_RESPONSE)
        if response.as_int("Result") != LogonStatus.SUCCESS:
            raise logon_error(response)
        self.logon_response = response
        self.last_received = time.monotonic()

    async def _read(self) -> None:
        try:
            while not self.closed.is_set():
                for item in self.decoder:
                    self._take(item)
                if self.closed.is_set():
                    return
                data = await self.reader.read(65536)
                if not data:
                    self._abort(self.close_reason or "server closed the connection")
                    return
                self.last_received = time.monotonic()
                self.decoder.feed(data)
        except ConnectionError as exc:
            self._abort(f"connection error: {exc}")

    def _take(self, item: Message | DecodeError) -> None:
        try:
            self._deliver(item)
        except Exception:  # a bug in a callback must not end the reader (and the session)
            log.exception("DTC %s:%s: handling a message failed", self.endpoint.host, self.endpoint.port)

    def _deliver(self, item: Message | DecodeError) -> None:
        if isinstance(item, DecodeError):
            self.decode_errors.append(item)
            if item.fatal:
                self._abort(f"unreadable stream: {item.detail}")
            if self.on_error is not None:
                self.on_error(item)
            return
        if item.type is MsgType.LOGOFF:
            self.do_not_reconnect = bool(item.as_int("DoNotReconnect"))
            self._abort(f"server logoff: {item.as_text('Reason')}")
            return
        if item.type is MsgType.HEARTBEAT:
            self.heartbeats_received += 1
        else:
            self.on_message(item)

    async def _heartbeat(self) -> None:
        interval = self.endpoint.heartbeat_s * self.endpoint.time_scale
        while not self.closed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closed.wait(), interval)
            if self.closed.is_set():
                return
            if time.monotonic() - self.last_received > 2 * interval:
                self._abort("heartbeat timeout: nothing from the server for two intervals")
                return
            with contextlib.suppress(ConnectionError, BrokerError):
                self.send(make(MsgType.HEARTBEAT, CurrentDateTime=int(time.time())))
                await self.writer.drain()
