"""The user-hub client: our own small SignalR JSON client on aiohttp's WebSocket.

Why not pysignalr or signalrcore: pysignalr >= 1.3 needs websockets >= 15 while async-rithmic
(the coming Rithmic adapter) needs websockets < 15, and the resolver silently falls back to an
older pysignalr; signalrcore is thread-based and pulls in its own socket stack. The JSON hub
protocol is small, our sans-I/O codec already speaks it for the simulator, and aiohttp is a
dependency anyway — so the adapter adds no new package and no websockets pin at all.

The client keeps one socket, resubscribes after every reconnect and then tells the adapter
(``on_reconnected``) so it can reconcile what it missed via REST.

A record that cannot be read goes to ``on_bad`` and the client reads on: the 0x1E separator
keeps the framing intact, so the records after it are whole, and closing would only put the
next good push behind a reconnect and a reconciliation. A bad handshake still ends the attempt
(nothing after it can be trusted), and a server ``Close`` record ends the session as the
protocol says.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp

from ...common.retrying import forever, log_before_sleep
from ...common.tasks import stop_task
from ..errors import BrokerUnavailable
from . import answers, codec
from . import schemas as px
from .config import ProjectXConfig
from .transport import GatewaySession

log = logging.getLogger(__name__)

EventCallback = Callable[[str, tuple[Any, ...]], None]
StateCallback = Callable[[bool, str | None], Awaitable[None]]
BadCallback = Callable[[codec.ProtocolError], None]


def _ws_url(http_url: str, query: dict[str, str]) -> str:
    parts = urlsplit(http_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), ""))


class UserHubClient:
    def __init__(
        self,
        config: ProjectXConfig,
        session: GatewaySession,
        account_ids: list[int],
        on_event: EventCallback,
        on_state: StateCallback,
        on_bad: BadCallback | None = None,
    ) -> None:
        self.config = config
        self._on_bad: BadCallback = on_bad or _log_bad
        self.session = session
        self.account_ids = account_ids
        self._on_event = on_event
        self._on_state = on_state
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._runner: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._pending: dict[str, asyncio.Future[codec.Message]] = {}
        self._ids = itertools.count(1)
        self.connects = 0
        self._closing = False
        self._last_seen = time.monotonic()  # the last frame from the server (the keepalive's watch)

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Connect and subscribe once (raising if that fails), then keep it up in the background."""
        await self._connect_and_subscribe()
        self._runner = asyncio.get_running_loop().create_task(self._run(), name="projectx-user-hub")

    async def close(self) -> None:
        self._closing = True
        if self._runner is not None:
            await stop_task(self._runner)
        await self._drop()

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed and self._ready.is_set()

    # -- connection ----------------------------------------------------------------------
    async def _connect_and_subscribe(self) -> None:
        http = self.session.socket_http
        token = self.session.token or ""
        query = {"access_token": token}
        if self.config.negotiate:
            url = self.config.hub_url.rstrip("/") + "/negotiate?negotiateVersion=1"
            async with http.post(url, headers={"Authorization": f"Bearer {token}"}) as response:
                if response.status == 401:
                    await self.session.reauthenticate(stale=token)
                    raise BrokerUnavailable("user hub negotiate: token refused", code="401")
                response.raise_for_status()
                negotiated = answers.decode(await response.read(), "negotiate")
            connection = negotiated.get("connectionToken") or negotiated.get("connectionId")
            if not isinstance(connection, str):
                raise codec.ProtocolError("negotiate answered no connection id", answers.raw_text(negotiated))
            query["id"] = connection
        try:
            ws = await http.ws_connect(
                _ws_url(self.config.hub_url, query), heartbeat=None, timeout=aiohttp.ClientWSTimeout(ws_close=2.0)
            )
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 401:
                await self.session.reauthenticate(stale=token)
            raise BrokerUnavailable(f"user hub refused the socket: HTTP {exc.status}") from exc
        self._ws = ws
        decoder = codec.Decoder(expect_handshake="response")
        await ws.send_str(codec.handshake_request())
        while not decoder.handshake_done:
            frame = await asyncio.wait_for(ws.receive(), self.config.request_timeout_s)
            if frame.type is not aiohttp.WSMsgType.TEXT:
                raise BrokerUnavailable(f"user hub closed during handshake ({frame.type.name})")
            self._dispatch(decoder.feed(frame.data))
        self._decoder = decoder
        self._ready.set()
        self.connects += 1
        self._reader = asyncio.get_running_loop().create_task(self._read(ws, decoder))
        await self._subscribe_all()

    async def _subscribe_all(self) -> None:
        calls = [self.invoke(px.SUBSCRIBE_ACCOUNTS)]
        for account_id in self.account_ids:
            for method in (px.SUBSCRIBE_ORDERS, px.SUBSCRIBE_POSITIONS, px.SUBSCRIBE_TRADES):
                calls.append(self.invoke(method, account_id))
        await asyncio.gather(*calls)

    async def invoke(self, target: str, *arguments: Any) -> Any:
        """Invoke a hub method and wait for its completion (errors raise ``BrokerUnavailable``)."""
        if self._ws is None or self._ws.closed:
            raise BrokerUnavailable(f"user hub is not connected ({target})")
        invocation_id = str(next(self._ids))
        future: asyncio.Future[codec.Message] = asyncio.get_running_loop().create_future()
        self._pending[invocation_id] = future
        try:
            await self._ws.send_str(codec.invocation(target, arguments, invocation_id))
            reply = await asyncio.wait_for(future, self.config.request_timeout_s)
        finally:
            self._pending.pop(invocation_id, None)
        if reply.error:
            raise BrokerUnavailable(f"user hub {target} failed: {reply.error}")
        return reply.result

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, decoder: codec.Decoder) -> None:
        """Read until the socket ends; :meth:`_keepalive` pings and watches for silence, so
        the read waits without a timer of its own per frame (#16: a timeout context and a
        timer handle for every frame, on every copy's pushes)."""
        self._last_seen = time.monotonic()
        watchdog = asyncio.get_running_loop().create_task(self._keepalive(ws))
        try:
            while not ws.closed:
                frame = await ws.receive()
                if frame.type is aiohttp.WSMsgType.BINARY:  # the JSON protocol is text: report, read on
                    self._last_seen = time.monotonic()
                    self._on_bad(codec.ProtocolError("binary frame on the JSON hub protocol", frame.data))
                    continue
                if frame.type is not aiohttp.WSMsgType.TEXT:
                    break  # closed, or closed by the watchdog for silence
                self._last_seen = time.monotonic()
                if self._dispatch(decoder.feed(frame.data, on_bad=self._on_bad, whole=True)):
                    break
        finally:
            watchdog.cancel()
        self._ready.clear()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(BrokerUnavailable("user hub connection lost"))

    async def _keepalive(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Every ``keepalive_s``: a SignalR ping if nothing came in that long, and a socket
        that sent nothing (not even the server's pings) for ``server_timeout_s`` is closed,
        which ends the read: the server went silent, the connection counts as dropped."""
        step = self.config.keepalive_s
        while not ws.closed:
            await asyncio.sleep(step)
            silent = time.monotonic() - self._last_seen
            if silent > self.config.server_timeout_s:
                log.warning("user hub: no frame for %.1f s; closing the socket", silent)
                await ws.close()
                return
            if silent >= step:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.send_str(codec.ping())

    def _dispatch(self, messages: list[codec.Message]) -> bool:
        """Route messages; ``True`` when the server closed the session."""
        for message in messages:
            if message.type is codec.MessageType.INVOCATION and message.target:
                try:
                    self._on_event(message.target, message.arguments)
                except Exception:  # one bad payload must not kill the stream
                    log.exception("user hub handler failed for %s", message.target)
            elif message.type is codec.MessageType.COMPLETION and message.invocation_id:
                future = self._pending.get(message.invocation_id)
                if future is not None and not future.done():
                    future.set_result(message)
            elif message.type is codec.MessageType.CLOSE:
                return True
        return False

    async def _drop(self) -> None:
        self._ready.clear()
        reader = getattr(self, "_reader", None)
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if reader is not None:
            await stop_task(reader, Exception)
        self._ws = None

    async def _run(self) -> None:
        """Supervise: wait for the reader to end, then reconnect with backoff and resubscribe."""
        while not self._closing:
            reader = getattr(self, "_reader", None)
            if reader is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.shield(reader)
            if self._closing:
                return
            await self._drop()
            await self._on_state(False, "user hub connection lost")
            try:
                await self._reconnect()
            except Exception:
                if self._closing:
                    return
                raise
            await self._on_state(True, None)

    async def _reconnect(self) -> None:
        """Connect and resubscribe until it works (backoff ``reconnect_min_s`` doubling to
        ``reconnect_max_s``); gives up only when the client is closing."""
        retrying = forever(
            lambda exc: isinstance(exc, Exception) and not self._closing,
            what="user hub reconnect",
            first_s=self.config.reconnect_min_s,
            max_s=self.config.reconnect_max_s,
            before_sleep=log_before_sleep("user hub reconnect", logging.INFO),
        )
        async for attempt in retrying:
            with attempt:
                if self._closing:
                    return
                try:
                    await self._connect_and_subscribe()
                except Exception:
                    await self._drop()
                    raise


def _log_bad(exc: codec.ProtocolError) -> None:
    log.error("user hub: %s; raw: %s", exc, exc.raw)
