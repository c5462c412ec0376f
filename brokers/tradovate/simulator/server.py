"""The simulated Tradovate server: aiohttp REST + WebSocket over the shared kernel.

REST: ``/v1/<endpoint>`` with Bearer auth (GET or POST, JSON). WebSocket: ``/v1/websocket``
speaking the SockJS-style frames of :mod:`..codec` — ``o`` on open, ``h`` every
``heartbeat_s``, ``a[...]`` replies and ``props`` pushes once the socket is authorized and
has sent ``user/syncrequest``. A clock task advances market time (``tick_ms``) and applies
the connection faults (``drop_connection`` closes the sockets of the account owner's user).

Who may log in: ``logins`` (a list of :class:`SimLogin`), each user seeing only its own
accounts; without it, one demo login owns ``accounts``. Limits count per user, as on the real
platform: two sessions (a third token request closes the oldest, and its sockets), fifty
WebSockets (the oldest closes and its token is revoked), the request windows of
:mod:`.limits`, and a socket whose client falls silent for ``client_ttl_s`` is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import uuid
from collections import deque
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web

from ...simkernel.exchange import SimExchange
from ...simkernel.faults import FaultSwitches
from ...simkernel.latency import Latency
from ...simkernel.logins import SimLogin
from ...simkernel.serving import IDLE_CLOSE_S, Background, HttpSite
from .. import codec
from .. import schemas as s
from .api import LOST_STATUS, Api
from .auth import MAX_SESSIONS, TokenStore, Users
from .book import TradovateBook
from .limits import ENDPOINT_LIMITS, LOCKOUT_S, USER_LIMITS, Limits

log = logging.getLogger(__name__)

DEMO_NAME, DEMO_PASSWORD = "demo-trader", "demo-password"
DEFAULT_ACCOUNTS = ("DEMO1001", "DEMO1002")
#: Docs (web-sockets connection overview): 50 WebSocket connections per user.
MAX_SOCKETS_PER_USER = 50
#: Undocumented: the docs only say to beat every 2.5 s "to avoid closing by server due to
#: inactivity". Two missed beats is the strictest plausible reading.
CLIENT_TTL_S = 5.0


def device_id_for(name: str) -> str:
    """A stable UUID device id per user name (what a real client keeps in its storage)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"copytrader-sim-device:{name}"))


class _Socket:
    """One client WebSocket: its outgoing queue, authorization and sync state."""

    def __init__(self, ws: web.WebSocketResponse, peer: str) -> None:
        self.ws = ws
        self.peer = peer
        self.out: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self.token: str | None = None
        self.user_id: int | None = None
        self.session_id: int | None = None
        self.accounts: set[str] = set()
        self.synced = False
        self.muted = False  # lose_heartbeats fault: the client's frames no longer count as alive
        self.opened = self.last_client_frame = asyncio.get_running_loop().time()

    def push(self, item: codec.Response | codec.Push) -> None:
        self.out.put_nowait(codec.encode_server_frame(codec.DataFrame((item,))))


def _logins(options: dict[str, Any]) -> list[SimLogin]:
    logins = options.get("logins")
    if logins:
        return [
            x if isinstance(x, SimLogin) else SimLogin(str(x["username"]), str(x["secret"]), tuple(x["accounts"]))
            for x in logins
        ]
    override = options.get("credentials", {})
    accounts = tuple(options.get("accounts") or DEFAULT_ACCOUNTS)
    return [SimLogin(str(override.get("name", DEMO_NAME)), str(override.get("password", DEMO_PASSWORD)), accounts)]


class TradovateSimulator:
    def __init__(
        self, exchange: SimExchange | None = None, host: str = "127.0.0.1", port: int = 0, **options: Any
    ) -> None:
        self.exchange = exchange or SimExchange(seed=int(options.get("seed", 7)))
        self.host, self.port = host, port
        self.options = options
        self.tick_ms = float(options.get("tick_ms", 50.0))
        self.idle_close_s = float(options.get("idle_close_s", IDLE_CLOSE_S))  # an idle REST connection closes
        self.tls: ssl.SSLContext | None = options.get("tls")  # HTTPS and WSS, as the real platform
        self.heartbeat_s = float(options.get("heartbeat_s", 2.5))
        self.client_ttl_s = float(options.get("client_ttl_s", CLIENT_TTL_S))
        self.max_sockets = int(options.get("max_sockets_per_user", MAX_SOCKETS_PER_USER))
        self.latency = Latency.parse(options.get("latency"))
        self.logins = _logins(options)
        self.users = Users(self.logins)
        self.account_names = tuple(a for login in self.logins for a in login.accounts)
        for name in self.account_names:
            self.exchange.open_account(name, Decimal(str(options.get("balance", 50000))))
        first = next(iter(self.users))
        self.book = TradovateBook(self.exchange, first.user_id, first.name)
        for user in self.users:
            for name in user.accounts:
                self.book.add_account(name, user.user_id)
        self.tokens = TokenStore(
            float(options.get("token_ttl", 90 * 60)), max_sessions=int(options.get("max_sessions", MAX_SESSIONS))
        )
        self.tokens.on_session_closed.append(self._session_closed)
        self.limits = Limits(
            user_limits=tuple(tuple(w) for w in options.get("rate_limits", USER_LIMITS)),
            endpoint_limits={
                k: tuple(tuple(w) for w in v) for k, v in options.get("endpoint_limits", ENDPOINT_LIMITS).items()
            },
            penalty_seconds=float(options.get("penalty_seconds", 1)),
            penalty_scope=str(options.get("penalty_scope", "subnet")),
            captcha_after=options.get("captcha_after"),
            lockout_s=float(options.get("lockout_s", LOCKOUT_S)),
        )
        self.api = Api(
            self.exchange,
            self.book,
            self.tokens,
            self.users,
            self.limits,
            rate_limit_reply=str(options.get("rate_limit_reply", "penalty")),
            bad_login_reply=str(options.get("bad_login_reply", "errorText")),
        )
        self.sockets: set[_Socket] = set()
        self._garbage_answers: dict[str, list[bytes]] = {}
        self.connections_opened = 0
        self.closed_for_silence = 0
        # The latest REST requests as (endpoint, client connection): which connection carried
        # what, for tests of the client's connection reuse (address and port name a connection).
        self.rest_requests: deque[tuple[str, object]] = deque(maxlen=10_000)
        self._site = HttpSite()
        self._background = Background()
        self._unsubscribe = self.book.subscribe(self._on_props)

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/v1/websocket", self._websocket)
        app.router.add_route("*", "/v1/{endpoint:.+}", self._rest)
        # aiohttp's default grace for open handlers: sockets are closed first, in stop().
        self.port = await self._site.start(
            app, self.host, self.port, shutdown_timeout=60.0, idle_close_s=self.idle_close_s, ssl_context=self.tls
        )
        self._background.spawn(self._run_clock(), "tradovate-sim-clock")

    async def stop(self) -> None:
        await self._background.cancel_all()
        for sock in list(self.sockets):
            await sock.ws.close()
        await self._site.stop()
        self._unsubscribe()
        self.book.close()

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}/v1"

    @property
    def ws_url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://{self.host}:{self.port}/v1/websocket"

    def credentials_for(self, username: str) -> dict[str, Any]:
        """Everything a client of ``username`` sends to accesstokenrequest, plus its accounts."""
        user = self.users.by_name[username]
        return {**self.users.credentials(user, device_id_for(user.name)), "accounts": list(user.accounts)}

    def demo_credentials(self) -> dict[str, Any]:
        """The first login's credentials (``accounts``: its accounts) and every login."""
        first = next(iter(self.users))
        logins = [
            {"name": u.name, "password": u.password, "accounts": list(u.accounts), "deviceId": device_id_for(u.name)}
            for u in self.users
        ]
        return {**self.credentials_for(first.name), "logins": logins}

    def open_sessions(self, username: str) -> list[int]:
        return self.tokens.open_sessions(self.users.by_name[username].user_id)

    # -- hooks of the conformance harness (platform-neutral names) ---------------------------
    def open_other_sessions(self, count: int, username: str | None = None) -> None:
        """Another app of the same user logs in ``count`` times (each a new session)."""
        user = self.users.by_name[username] if username else next(iter(self.users))
        for _ in range(count):
            self.tokens.open_session(user.user_id)

    def session_count(self) -> int:
        """Sessions opened so far, by every client (the adapter's logins included)."""
        return self.tokens.sessions_opened

    def set_endpoint_limit(self, cls: str, requests: int, seconds: float) -> None:
        self.limits.set_endpoint_limit(cls, (requests, seconds))

    def set_user_limit(self, requests: int, seconds: float) -> None:
        self.limits.set_user_limits((requests, seconds))

    def faults(self, account_name: str) -> FaultSwitches:
        return self.exchange.account(account_name).faults

    def account_id(self, account_name: str) -> int:
        return self.book.account_ids[account_name]

    # -- market time and connection faults ---------------------------------------------------
    async def _run_clock(self) -> None:
        while True:
            await asyncio.sleep(self.tick_ms / 1000.0)
            try:
                self.exchange.advance()
            except Exception:  # a kernel bug must not stop market time for every test
                log.exception("exchange.advance failed")
            for name in self.account_names:
                faults = self.faults(name)
                owner = self.users.owner_of(name)
                if faults.take_drop():
                    for sock in self._sockets_of(owner.user_id if owner else None):
                        await sock.ws.close(code=1006, message=b"simulated drop")
                if faults.take_lose_heartbeats():
                    for sock in self._sockets_of(owner.user_id if owner else None):
                        sock.muted = True

    def send_raw(self, data: str | bytes) -> int:
        """The garbage fault: ``data`` goes on every synced socket exactly as given — a text
        frame, or a binary one for bytes — in order with the pushes. Returns how many got it."""
        synced = [x for x in self.sockets if x.synced]
        for sock in synced:
            sock.out.put_nowait(data)
        return len(synced)

    def answer_garbage(self, endpoint: str, body: bytes) -> None:
        """The garbage-answer fault: the next REST request to ``endpoint`` is carried out, and
        its answer is ``body`` exactly as given (HTTP 200, JSON content type)."""
        self._garbage_answers.setdefault(endpoint.strip("/").lower(), []).append(body)

    def _sockets_of(self, user_id: int | None) -> list[_Socket]:
        return [x for x in self.sockets if user_id is None or x.user_id in (user_id, None)]

    def _session_closed(self, user_id: int, session_id: int) -> None:
        """A session ended by a newer token request: its sockets close (its tokens are revoked)."""
        for sock in [x for x in self.sockets if x.session_id == session_id]:
            asyncio.get_running_loop().create_task(sock.ws.close(code=1000, message=b"session closed"))

    def _on_props(self, account: str, event: dict[str, Any]) -> None:
        for sock in self.sockets:
            if sock.synced and account in sock.accounts:
                sock.push(codec.Push(s.PROPS, event))

    # -- REST ------------------------------------------------------------------------------------
    async def _rest(self, request: web.Request) -> web.StreamResponse:
        await self.latency.wait()
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                body = codec.loads(raw) if raw.strip() else None
            except codec.CodecError:  # not JSON, not UTF-8, too deep, NaN: the client's garbage
                return web.Response(status=400, text="Malformed JSON")
        transport = request.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        self.rest_requests.append((request.match_info["endpoint"].strip("/").lower(), peer))
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        status, payload = await self.api.call(
            request.match_info["endpoint"], dict(request.query), body, token, peer=request.remote or ""
        )
        if status == LOST_STATUS:  # carried out, answer lost: reset the connection, reply nothing
            if request.transport is not None:
                request.transport.abort()
            raise ConnectionResetError("simulated lost response")
        garbage = self._garbage_answers.get(request.match_info["endpoint"].strip("/").lower())
        if garbage:
            return web.Response(status=200, body=garbage.pop(0), content_type="application/json")
        if status == 429:
            return web.Response(status=429)  # docs: "429 Too Many Requests", Content-Length: 0
        if status != 200:
            return web.Response(status=status, text=payload if isinstance(payload, str) else "")
        return web.json_response(payload)

    # -- WebSocket ------------------------------------------------------------------------------
    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        sock = _Socket(ws, request.remote or "")
        self.sockets.add(sock)
        self.connections_opened += 1
        sock.out.put_nowait(codec.OPEN)
        writer = asyncio.get_running_loop().create_task(self._writer(sock))
        beats = asyncio.get_running_loop().create_task(self._heartbeats(sock))
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                if not sock.muted:
                    sock.last_client_frame = asyncio.get_running_loop().time()
                await self._on_client_text(sock, msg.data)
        finally:
            self.sockets.discard(sock)
            sock.out.put_nowait(None)
            beats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beats
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await writer
        return ws

    async def _writer(self, sock: _Socket) -> None:
        while (text := await sock.out.get()) is not None:
            if sock.ws.closed:
                return
            with contextlib.suppress(ConnectionError):
                if isinstance(text, bytes):
                    await sock.ws.send_bytes(text)
                else:
                    await sock.ws.send_str(text)

    async def _heartbeats(self, sock: _Socket) -> None:
        """Server ``h`` every ``heartbeat_s``; close the socket after ``client_ttl_s`` of silence."""
        loop = asyncio.get_running_loop()
        step = max(0.01, min(self.heartbeat_s, self.client_ttl_s / 4))
        next_beat = loop.time() + self.heartbeat_s
        while True:
            await asyncio.sleep(step)
            now = loop.time()
            if now - sock.last_client_frame > self.client_ttl_s:
                self.closed_for_silence += 1
                await sock.ws.close(code=1000, message=b"no heartbeat")
                return
            if now >= next_beat:
                next_beat = now + self.heartbeat_s
                sock.out.put_nowait(codec.SERVER_HEARTBEAT)

    async def _enforce_socket_limit(self, user_id: int) -> None:
        """Docs: past the per-user limit the oldest connection closes and its token is revoked."""
        mine = sorted((x for x in self.sockets if x.user_id == user_id), key=lambda x: x.opened)
        while len(mine) > self.max_sockets:
            oldest = mine.pop(0)
            if oldest.token:
                self.tokens.expire(oldest.token)
            await oldest.ws.close(code=1000, message=b"connection limit")

    async def _on_client_text(self, sock: _Socket, text: str) -> None:
        try:
            frame = codec.decode_client_frame(text)
        except codec.CodecError:
            return  # real server ignores garbage lines; a client bug shows as a timeout
        if isinstance(frame, codec.ClientHeartbeat):
            return
        asyncio.get_running_loop().create_task(self._on_request(sock, frame))

    async def _on_request(self, sock: _Socket, req: codec.Request) -> None:
        await self.latency.wait()
        endpoint = req.endpoint.strip("/").lower()
        if endpoint == "authorize":
            token = self.tokens.lookup(codec.token_from_body(req.body))
            if token is not None:
                sock.token, sock.user_id, sock.session_id = token.value, token.user_id, token.session_id
                await self._enforce_socket_limit(token.user_id)
            sock.push(codec.Response(req.request_id, 200 if token else 401, None if token else "Access is denied"))
            return
        if sock.token is None:
            sock.push(codec.Response(req.request_id, 401, "Access is denied"))
            return
        body = req.json_body()
        status, payload = await self.api.call(endpoint, req.query_params(), body, sock.token, peer=sock.peer)
        if status == LOST_STATUS:
            return  # carried out, answer lost: the client's request times out
        if endpoint == "user/syncrequest" and status == 200 and not s.is_penalty(payload):
            user = self.users.by_id[sock.user_id] if sock.user_id is not None else None
            mine = set(user.accounts) if user else set()
            sock.accounts = self.api._sync_accounts(body if isinstance(body, dict) else {}, mine)
            sock.synced = True
        sock.push(codec.Response(req.request_id, status, payload))
