"""Our asyncio dxLink client: SETUP, AUTH, KEEPALIVE, one FEED channel, Quote/Trade events.

The connection is re-made through ``common/retrying.forever`` whenever it is lost (socket
closed, ERROR TIMEOUT, the server silent past its keepaliveTimeout); after each reconnect the
channel is re-opened, FEED_SETUP re-sent and the whole subscription sent again with
``reset: true``, so what the caller asked for survives any number of reconnects. A refused
token is not retried: it surfaces from :meth:`connected` and :meth:`events`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import aiohttp

from ...common.retrying import Sleep, forever
from ...common.tasks import stop_task
from ..model import ConnectionState
from . import protocol as p
from .events import EVENT_TYPES, MarketEvent, typed

log = logging.getLogger(__name__)
#: Told of every change of the connection's state (never of a retry that changes nothing).
StateListener = Callable[[ConnectionState, str | None], None]
#: Told of every frame dropped as malformed: the reason and the raw text, truncated.
BadFrameListener = Callable[[str], None]
RAW_KEPT = 200
CLIENT_VERSION = f"{p.PROTOCOL_VERSION}-copytrader"
FEED_CHANNEL = 1


class DxLinkError(Exception):
    """An ERROR from the server or a broken exchange; ``kind`` is the dxLink error type."""

    def __init__(self, message: str, kind: str = "UNKNOWN") -> None:
        super().__init__(message)
        self.kind = kind


class AuthError(DxLinkError):
    """The token was refused: retrying with the same token cannot help."""


class ConnectionLost(DxLinkError):
    """The socket went away or fell silent: worth reconnecting."""


def _worth_retrying(exc: BaseException) -> bool:
    return isinstance(exc, ConnectionLost | aiohttp.ClientError | OSError | asyncio.TimeoutError)


class DxLinkClient:
    """One dxLink connection with one FEED channel. ``data_format`` COMPACT or FULL;
    ``keepalive_s`` is our keepaliveTimeout (we send KEEPALIVE at half of it when idle);
    ``event_fields`` is sent as acceptEventFields (None = the server's defaults);
    ``on_state`` hears each change of :attr:`state` once (connected, connecting again after a
    loss, disconnected for good), so a health report never repeats per retry; ``on_bad_frame``
    hears of each frame dropped as malformed (reason and raw text), which never ends the
    connection."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        data_format: p.DataFormat = "COMPACT",
        keepalive_s: float = 60.0,
        event_fields: dict[str, list[str]] | None = None,
        first_retry_s: float = 0.2,
        max_retry_s: float = 10.0,
        step_timeout_s: float = 10.0,
        sleep: Sleep | None = None,
        on_state: StateListener | None = None,
        on_bad_frame: BadFrameListener | None = None,
    ) -> None:
        self.url, self.token = url, token
        self.state = ConnectionState.DISCONNECTED
        self.last_error: str | None = None
        self._on_state = on_state
        self._on_bad_frame = on_bad_frame
        self.data_format: p.DataFormat = data_format
        self.keepalive_s = keepalive_s
        self.event_fields = event_fields
        self.first_retry_s, self.max_retry_s = first_retry_s, max_retry_s
        self.step_timeout_s = step_timeout_s
        self._sleep = sleep
        self.wanted: set[tuple[str, str]] = set()
        self.connects = 0
        self.config: p.FeedConfig | None = None
        self._queue: asyncio.Queue[MarketEvent | BaseException] = asyncio.Queue()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ready = asyncio.Event()
        self._failure: BaseException | None = None
        self._task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None

    # -- public ----------------------------------------------------------------------------
    async def start(self) -> None:
        self._failure = None
        self._set_state(ConnectionState.CONNECTING, None)
        self._http = aiohttp.ClientSession()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="dxlink-client")

    async def close(self) -> None:
        if self._task is not None:
            await stop_task(self._task)
            self._task = None
        if self._http is not None:
            await self._http.close()
            self._http = None
        self._set_state(ConnectionState.DISCONNECTED, None)

    async def __aenter__(self) -> DxLinkClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connected(self, timeout_s: float = 10.0) -> None:
        """Wait until the channel is open and subscribed (or raise the fatal failure)."""
        async with asyncio.timeout(timeout_s):
            while not self._ready.is_set():
                if self._failure is not None:
                    raise self._failure
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._ready.wait(), 0.05)
        if self._failure is not None:
            raise self._failure

    async def subscribe(self, symbols: Iterable[str], types: Iterable[str] = EVENT_TYPES) -> None:
        keys = {(kind, symbol) for kind in types for symbol in symbols} - self.wanted
        self.wanted |= keys
        await self._send_if_ready(p.FeedSubscription(channel=FEED_CHANNEL, add=_items(keys)))

    async def unsubscribe(self, symbols: Iterable[str], types: Iterable[str] = EVENT_TYPES) -> None:
        keys = {(kind, symbol) for kind in types for symbol in symbols} & self.wanted
        self.wanted -= keys
        await self._send_if_ready(p.FeedSubscription(channel=FEED_CHANNEL, remove=_items(keys)))

    async def events(self) -> AsyncIterator[MarketEvent]:
        """Quote/Trade events in arrival order, across reconnects; a fatal failure is raised."""
        while True:
            item = await self._queue.get()
            if isinstance(item, BaseException):
                raise item
            yield item

    # -- the connection --------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            async for attempt in forever(
                _worth_retrying,
                what=f"dxLink {self.url}",
                first_s=self.first_retry_s,
                max_s=self.max_retry_s,
                sleep=self._sleep,
            ):
                with attempt:
                    await self._session_once()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - a fatal failure goes to the caller
            self._failure = exc
            self._set_state(ConnectionState.DISCONNECTED, _describe(exc))
            self._queue.put_nowait(exc)

    def _set_state(self, state: ConnectionState, reason: str | None) -> None:
        if reason:
            self.last_error = reason
        if state is self.state:
            return
        self.state = state
        if self._on_state is not None:
            try:
                self._on_state(state, reason)
            except Exception:  # noqa: BLE001 - a listener's bug must not end the connection
                log.exception("dxLink state listener failed")

    async def _session_once(self) -> None:
        """One connection's life; a loss worth retrying turns the state back to CONNECTING."""
        try:
            await self._connection()
        except Exception as exc:
            if _worth_retrying(exc):
                self._set_state(ConnectionState.CONNECTING, _describe(exc))
            raise

    async def _connection(self) -> None:
        assert self._http is not None
        self._ready.clear()
        async with self._http.ws_connect(self.url, autoping=True) as ws:
            self._ws = ws
            self.connects += 1
            try:
                server_timeout = await self._handshake(ws)
                keepalive = asyncio.get_running_loop().create_task(self._keepalive(ws))
                try:
                    await self._read(ws, server_timeout)
                finally:
                    keepalive.cancel()
            finally:
                self._ws = None
                self._ready.clear()

    async def _handshake(self, ws: aiohttp.ClientWebSocketResponse) -> float:
        """SETUP/AUTH/CHANNEL_REQUEST/FEED_SETUP/FEED_SUBSCRIPTION, each answer awaited."""
        await self._send(
            ws, p.Setup(channel=0, version=CLIENT_VERSION, keepaliveTimeout=self.keepalive_s, acceptKeepaliveTimeout=60)
        )
        if self.token is not None:
            await self._send(ws, p.Auth(channel=0, token=self.token))
        setup = await self._expect(ws, p.Setup, 60.0)
        server_timeout = float(setup.keepaliveTimeout or 60.0)
        while (await self._expect(ws, p.AuthState, server_timeout)).state != "AUTHORIZED":
            if self.token is None:
                raise AuthError("the server requires a token", "UNAUTHORIZED")
        await self._send(ws, p.ChannelRequest(channel=FEED_CHANNEL, service=p.FEED, parameters={"contract": "AUTO"}))
        await self._expect(ws, p.ChannelOpened, server_timeout)
        await self._send(
            ws,
            p.FeedSetup(channel=FEED_CHANNEL, acceptDataFormat=self.data_format, acceptEventFields=self.event_fields),
        )
        self.config = await self._expect(ws, p.FeedConfig, server_timeout)
        if self.wanted:
            await self._send(ws, p.FeedSubscription(channel=FEED_CHANNEL, reset=True, add=_items(self.wanted)))
        self._ready.set()
        self._set_state(ConnectionState.CONNECTED, None)
        return server_timeout

    async def _expect(self, ws: aiohttp.ClientWebSocketResponse, kind: type[Any], silence_s: float) -> Any:
        """The next message of ``kind``; ERRORs raise, KEEPALIVEs are skipped."""
        async with asyncio.timeout(min(silence_s, self.step_timeout_s)):
            while True:
                message = await self._next(ws, silence_s)
                if isinstance(message, kind):
                    return message
                if not isinstance(message, p.Keepalive):
                    log.debug("dxLink: %r while waiting for %s", message, kind.__name__)

    async def _next(self, ws: aiohttp.ClientWebSocketResponse, silence_s: float) -> p.Message:
        """One message; a closed socket or a server silent for ``silence_s`` is ConnectionLost."""
        try:
            frame = await ws.receive(timeout=silence_s)
        except TimeoutError:
            raise ConnectionLost(f"no message from the server for {silence_s:g}s", "TIMEOUT") from None
        if frame.type != aiohttp.WSMsgType.TEXT:
            raise ConnectionLost(f"connection closed ({frame.type.name})")
        try:
            message = p.decode(frame.data)
        except p.ProtocolError as exc:
            self._bad_frame(str(exc), frame.data)
            await self._send(ws, p.Error(channel=0, error=exc.kind, message=str(exc)[:200]))
            return p.Keepalive(channel=0)  # a bad frame is reported and skipped, never fatal
        if isinstance(message, p.Error):
            if message.error == "UNAUTHORIZED":
                raise AuthError(message.message, message.error)
            if message.error in ("TIMEOUT", "UNSUPPORTED_PROTOCOL"):
                raise ConnectionLost(message.message, message.error)
            log.warning("dxLink ERROR %s on channel %d: %s", message.error, message.channel, message.message)
        return message

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, silence_s: float) -> None:
        while True:
            message = await self._next(ws, silence_s)
            if isinstance(message, p.FeedConfig) and message.channel == FEED_CHANNEL:
                self.config = message
            elif isinstance(message, p.FeedData) and message.channel == FEED_CHANNEL:
                self._deliver(message)
            elif isinstance(message, p.ChannelClosed) and message.channel == FEED_CHANNEL:
                raise ConnectionLost("the server closed the FEED channel")
            elif isinstance(message, p.AuthState) and message.state == "UNAUTHORIZED":
                raise AuthError("the server withdrew the authorization", "UNAUTHORIZED")

    def _deliver(self, message: p.FeedData) -> None:
        config = self.config
        try:
            if config is None or config.dataFormat == "FULL":
                raw = p.full_events(message.data)
            else:
                raw = p.compact_events(message.data, config.eventFields or {})
            events = [typed(event) for event in raw]
        except p.ProtocolError as exc:
            self._bad_frame(f"undecodable FEED_DATA: {exc}", p.encode(message))
            return
        for event in events:
            if event is not None and (type(event).__name__, event.symbol) in self.wanted:
                self._queue.put_nowait(event)

    def _bad_frame(self, reason: str, raw: object) -> None:
        text = raw if isinstance(raw, str) else repr(raw)
        detail = f"{reason[:RAW_KEPT]} (raw: {text[:RAW_KEPT]!r}{'…' if len(text) > RAW_KEPT else ''})"
        log.warning("dxLink: frame dropped: %s", detail)
        if self._on_bad_frame is not None:
            try:
                self._on_bad_frame(detail)
            except Exception:  # noqa: BLE001 - a listener's bug must not end the connection
                log.exception("dxLink bad-frame listener failed")

    async def _keepalive(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """KEEPALIVE at half our timeout, so the server never sees us silent for all of it."""
        while not ws.closed:
            await asyncio.sleep(self.keepalive_s / 2)
            await self._send(ws, p.Keepalive(channel=0))

    async def _send(self, ws: aiohttp.ClientWebSocketResponse, message: p.Message) -> None:
        try:
            await ws.send_str(p.encode(message))
        except (ConnectionError, RuntimeError) as exc:
            raise ConnectionLost(f"send failed: {exc}") from exc

    async def _send_if_ready(self, message: p.FeedSubscription) -> None:
        """Send now when connected; otherwise the next handshake sends the whole subscription."""
        if self._ready.is_set() and self._ws is not None and (message.add or message.remove):
            with contextlib.suppress(ConnectionLost):
                await self._send(self._ws, message)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def _items(keys: Iterable[tuple[str, str]]) -> list[p.Subscription]:
    return [p.Subscription(type=kind, symbol=symbol) for kind, symbol in sorted(keys)]
