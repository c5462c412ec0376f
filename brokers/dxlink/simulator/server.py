"""The simulated dxLink server: one WebSocket endpoint, one dispatch table for every message type.

Defaults are the strictest reading of the sources: authentication is required (AUTH_STATE
UNAUTHORIZED is sent unprompted after SETUP, as in the spec's transcript), a client silent for its
announced ``keepaliveTimeout`` is dropped with ``ERROR TIMEOUT``, a client that sends no SETUP
within ``setup_timeout_s`` likewise, and channels other than FEED are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from ...simkernel.pricepath import PricePath
from ...simkernel.serving import Background, HttpSite
from .. import protocol as p
from .feed import FeedChannel, MarketData

DEFAULT_TOKEN = "sim-dxlink-token"
PATH = "/dxlink-ws"


@dataclass(eq=False)
class Session:
    """One client connection."""

    ws: web.WebSocketResponse
    setup: p.Setup | None = None
    authorized: bool = False
    token: str | None = None
    client_timeout_s: float = 60.0  # how long the client may stay silent (its keepaliveTimeout)
    server_timeout_s: float = 60.0  # what we promised (our keepaliveTimeout)
    last_received: float = field(default_factory=time.monotonic)
    last_sent: float = field(default_factory=time.monotonic)
    channels: dict[int, FeedChannel] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    received: list[p.Message] = field(default_factory=list)
    closing: bool = False
    muted: bool = False  # a fault: the server stops sending anything to this client


Handler = Callable[[Session, Any], Awaitable[None]]


class DxLinkSimulator:
    """Options: ``tokens`` (accepted AUTH tokens; default ``[DEFAULT_TOKEN]``), ``auth_required``
    (default True), ``keepalive_s`` (longest keepaliveTimeout we accept or promise; default 60),
    ``setup_timeout_s`` (default 10; the real value is undocumented), ``tick_ms`` (price clock;
    0 = manual :meth:`tick`), ``seed`` (price path), ``prices`` (a :class:`PricePath` to share,
    e.g. a kernel's ``SimExchange.prices``; default one of its own from ``seed``), ``version``
    (our SETUP version).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **options: Any) -> None:
        self.host, self.port = host, port
        self.tokens = set(options.get("tokens", [DEFAULT_TOKEN]))
        self.auth_required = bool(options.get("auth_required", True))
        self.keepalive_s = float(options.get("keepalive_s", 60.0))
        self.setup_timeout_s = float(options.get("setup_timeout_s", 10.0))
        self.tick_ms = float(options.get("tick_ms", 100.0))
        self.version = str(options.get("version", f"{p.PROTOCOL_VERSION}-copytrader-sim"))
        prices = options.get("prices") or PricePath(seed=int(options.get("seed", 7)))
        self.market = MarketData(prices, lambda: time.time() * 1000)
        self.sessions: set[Session] = set()
        self.connections = 0
        self.history: list[Session] = []  # every connection ever made, for tests to read back
        self._site = HttpSite()
        self._background = Background()
        self._closing: set[asyncio.Task[bool]] = set()
        self.url = ""
        self._dispatch: dict[type[Any], Handler] = {
            p.Setup: self._on_setup,
            p.Auth: self._on_auth,
            p.Keepalive: self._on_keepalive,
            p.ChannelRequest: self._on_channel_request,
            p.ChannelCancel: self._on_channel_cancel,
            p.FeedSetup: self._on_feed_setup,
            p.FeedSubscription: self._on_feed_subscription,
            p.Error: self._on_error,
        }

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application()
        app.router.add_get(PATH, self._serve)
        self.port = await self._site.start(app, self.host, self.port)
        self.url = f"ws://{self.host}:{self.port}{PATH}"
        self._background.spawn(self._watchdog(), "dxlink-sim-keepalive")
        if self.tick_ms > 0:
            self._background.spawn(self._clock(), "dxlink-sim-clock")

    async def stop(self) -> None:
        await self._background.cancel_all()
        await self.drop_all()
        await self._site.stop()

    async def __aenter__(self) -> DxLinkSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def drop_all(self) -> None:
        """Close every connection (a test's network failure)."""
        for session in list(self.sessions):
            await session.ws.close()

    async def expire_token(self, token: str) -> None:
        """A token's lifetime ends (its issuer's rule, not dxLink's): it is no longer accepted,
        and sessions authorized with it get AUTH_STATE UNAUTHORIZED and lose their channels (what
        a real server does here is undocumented; this is the plausible strict reading)."""
        self.tokens.discard(token)
        for session in list(self.sessions):
            if session.authorized and session.token == token:
                session.authorized = False
                session.channels.clear()
                await self.send(session, p.AuthState(channel=0, state="UNAUTHORIZED"))

    async def send_raw_all(self, text: str) -> None:
        """A fault: a frame that need not be a valid message, to every open connection."""
        for session in list(self.sessions):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await session.ws.send_str(text)

    def mute_all(self) -> None:
        """A fault: every open connection stops hearing from us (no data, no KEEPALIVE)."""
        for session in self.sessions:
            session.muted = True

    def subscriptions(self) -> set[tuple[str, str]]:
        """Every (event type, symbol) some open channel is subscribed to."""
        return {key for s in self.sessions for ch in s.channels.values() for key in ch.subscriptions}

    # -- the socket ------------------------------------------------------------------------
    async def _serve(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        session = Session(ws)
        self.sessions.add(session)
        self.history.append(session)
        self.connections += 1
        try:
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    await self._error(session, 0, "INVALID_MESSAGE", "only text frames carry dxLink messages")
                    continue
                session.last_received = time.monotonic()
                try:
                    message = p.decode(frame.data)
                except p.ProtocolError as exc:
                    await self._error(session, 0, exc.kind, str(exc))
                    continue
                session.received.append(message)
                handler = self._dispatch.get(type(message))
                if handler is None:
                    await self._error(session, message.channel, "BAD_ACTION", f"{_tag(message)} is sent by servers")
                elif session.setup is None and not isinstance(message, p.Setup | p.Error):
                    await self._error(session, 0, "BAD_ACTION", "SETUP must come first")
                else:
                    await handler(session, message)
        finally:
            self.sessions.discard(session)
        return ws

    async def send(self, session: Session, message: p.Message) -> None:
        if session.ws.closed or session.muted:
            return
        async with session.lock:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await session.ws.send_str(p.encode(message))
                session.last_sent = time.monotonic()

    async def _error(self, session: Session, channel: int, kind: p.ErrorKind, text: str) -> None:
        await self.send(session, p.Error(channel=channel, error=kind, message=text))

    # -- connection messages ---------------------------------------------------------------
    async def _on_setup(self, session: Session, message: p.Setup) -> None:
        if message.version.split("-", 1)[0] != p.PROTOCOL_VERSION:
            await self._error(session, 0, "UNSUPPORTED_PROTOCOL", f"unsupported version {message.version[:64]!r}")
            await session.ws.close()
            return
        session.setup = message
        # The client promises to speak within its keepaliveTimeout; we hold it to no more than ours.
        session.client_timeout_s = min(float(message.keepaliveTimeout or self.keepalive_s), self.keepalive_s)
        session.server_timeout_s = min(float(message.acceptKeepaliveTimeout or self.keepalive_s), self.keepalive_s)
        await self.send(
            session,
            p.Setup(
                channel=0,
                version=self.version,
                keepaliveTimeout=session.server_timeout_s,
                acceptKeepaliveTimeout=session.client_timeout_s,
            ),
        )
        session.authorized = not self.auth_required
        await self.send(session, p.AuthState(channel=0, state="AUTHORIZED" if session.authorized else "UNAUTHORIZED"))

    async def _on_auth(self, session: Session, message: p.Auth) -> None:
        if message.token in self.tokens:
            session.authorized, session.token = True, message.token
            await self.send(session, p.AuthState(channel=0, state="AUTHORIZED", userId="sim-user"))
            return
        session.authorized = False
        await self._error(session, 0, "UNAUTHORIZED", "invalid token")
        await self.send(session, p.AuthState(channel=0, state="UNAUTHORIZED"))

    async def _on_keepalive(self, session: Session, message: p.Keepalive) -> None:
        """Nothing to answer: receiving it already reset the client's silence timer."""

    async def _on_error(self, session: Session, message: p.Error) -> None:
        """Informational (the spec expects no reply); kept in ``session.received`` for tests."""

    # -- channels --------------------------------------------------------------------------
    async def _on_channel_request(self, session: Session, message: p.ChannelRequest) -> None:
        if not session.authorized:
            await self._error(session, message.channel, "UNAUTHORIZED", "authorize before opening channels")
        elif message.channel % 2 == 0:
            await self._error(session, message.channel, "BAD_ACTION", "clients use odd channel numbers")
        elif message.service != p.FEED:
            await self._error(session, message.channel, "BAD_ACTION", f"service {message.service[:32]!r} not offered")
        else:
            session.channels[message.channel] = FeedChannel(message.channel)
            await self.send(
                session, p.ChannelOpened(channel=message.channel, service=p.FEED, parameters=message.parameters)
            )

    async def _on_channel_cancel(self, session: Session, message: p.ChannelCancel) -> None:
        if session.channels.pop(message.channel, None) is None:
            await self._error(session, message.channel, "BAD_ACTION", "no such channel")
            return
        await self.send(session, p.ChannelClosed(channel=message.channel))

    def _channel(self, session: Session, channel: int) -> FeedChannel | None:
        return session.channels.get(channel) if session.authorized else None

    async def _on_feed_setup(self, session: Session, message: p.FeedSetup) -> None:
        channel = self._channel(session, message.channel)
        if channel is None:
            await self._error(session, message.channel, "BAD_ACTION", "no open FEED channel")
            return
        await self.send(session, channel.setup(message))

    async def _on_feed_subscription(self, session: Session, message: p.FeedSubscription) -> None:
        channel = self._channel(session, message.channel)
        if channel is None:
            await self._error(session, message.channel, "BAD_ACTION", "no open FEED channel")
            return
        added = channel.subscribe(message)
        if not channel.configured:  # data is decoded by the last FEED_CONFIG: state it first
            channel.configured = True
            await self.send(session, channel.config())
        # A snapshot of the current value for each new subscription (TICKER contract).
        snapshot = [e for symbol in sorted({s for _, s in added}) for e in self.market.events(symbol)]
        for frame in channel.frames([e for e in snapshot if (e["eventType"], e["eventSymbol"]) in added]):
            await self.send(session, frame)

    # -- clocks ----------------------------------------------------------------------------
    async def tick(self) -> None:
        """Move every subscribed symbol one step and send the new events to its subscribers."""
        symbols = {symbol for _, symbol in self.subscriptions()}
        if not symbols:
            return
        events = self.market.step(symbols)
        for session in list(self.sessions):
            for channel in list(session.channels.values()):
                for frame in channel.frames(events):
                    await self.send(session, frame)

    async def _clock(self) -> None:
        while True:
            await asyncio.sleep(self.tick_ms / 1000)
            await self.tick()

    def _close_later(self, session: Session) -> None:
        """Close without holding up the watchdog (a close waits for the peer's close frame)."""
        task = asyncio.get_running_loop().create_task(session.ws.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _watchdog(self) -> None:
        """Drop silent clients (ERROR TIMEOUT, then close); keep our side alive with KEEPALIVE."""
        while True:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            for session in [s for s in self.sessions if not s.closing]:
                limit = session.client_timeout_s if session.setup else self.setup_timeout_s
                if now - session.last_received > limit:
                    what = "keepalive" if session.setup else "SETUP"
                    await self._error(session, 0, "TIMEOUT", f"no {what} message received for {limit:g}s")
                    session.closing = True
                    self._close_later(session)
                elif session.setup and now - session.last_sent > session.server_timeout_s / 2:
                    await self.send(session, p.Keepalive(channel=0))


def _tag(message: p.Message) -> str:
    return str(type(message).__struct_config__.tag)
