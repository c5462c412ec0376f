"""The simulated Tradovate server: aiohttp REST + WebSocket over the shared kernel.

REST: ``/v1/<endpoint>`` with Bearer auth (GET or POST, JSON). WebSocket: ``/v1/websocket``
speaking the SockJS-style frames of :mod:`..codec` — ``o`` on open, ``h`` every
``heartbeat_s``, ``a[...]`` replies and ``props`` pushes once the socket is authorized and
has sent ``user/syncrequest``. A clock task advances market time (``tick_ms``) and applies
the connection faults (``drop_connection`` closes every socket of the account's user).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web

from ...simkernel.exchange import SimExchange
from ...simkernel.faults import FaultSwitches
from ...simkernel.latency import Latency
from .. import codec
from .. import schemas as s
from .api import LOST_STATUS, Api
from .auth import TokenStore
from .book import TradovateBook

log = logging.getLogger(__name__)

DEMO_USER = {"name": "demo-trader", "password": "demo-password", "appId": "CopyTrader",
             "appVersion": "1.0", "cid": 8, "sec": "sim-secret-0000", "deviceId": "sim-device"}
DEFAULT_ACCOUNTS = ("DEMO1001", "DEMO1002")


class _Socket:
    """One client WebSocket: its outgoing queue, authorization and sync state."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.out: asyncio.Queue[str | None] = asyncio.Queue()
        self.token: str | None = None
        self.accounts: set[str] = set()
        self.synced = False
        self.last_client_frame = asyncio.get_running_loop().time()

    def push(self, item: codec.Response | codec.Push) -> None:
        self.out.put_nowait(codec.encode_server_frame(codec.DataFrame((item,))))


class TradovateSimulator:
    def __init__(self, exchange: SimExchange | None = None, host: str = "127.0.0.1", port: int = 0,
                 **options: Any) -> None:
        self.exchange = exchange or SimExchange(seed=int(options.get("seed", 7)))
        self.host, self.port = host, port
        self.options = options
        self.tick_ms = float(options.get("tick_ms", 50.0))
        self.heartbeat_s = float(options.get("heartbeat_s", 2.5))
        self.latency = Latency.parse(options.get("latency"))
        self.credentials = {**DEMO_USER, **options.get("credentials", {})}
        self.account_names = tuple(options.get("accounts", DEFAULT_ACCOUNTS))
        for name in self.account_names:
            self.exchange.open_account(name, Decimal(str(options.get("balance", 50000))))
        self.book = TradovateBook(self.exchange, 100001, str(self.credentials["name"]))
        for name in self.account_names:
            self.book.add_account(name)
        self.tokens = TokenStore(float(options.get("token_ttl", 90 * 60)))
        self.api = Api(self.exchange, self.book, self.tokens, self.credentials,
                       penalty_seconds=int(options.get("penalty_seconds", 1)),
                       rate_limit_reply=str(options.get("rate_limit_reply", "penalty")))
        self.sockets: set[_Socket] = set()
        self.connections_opened = 0
        self._runner: web.AppRunner | None = None
        self._clock: asyncio.Task[None] | None = None
        self._unsubscribe = self.book.subscribe(self._on_props)

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/v1/websocket", self._websocket)
        app.router.add_route("*", "/v1/{endpoint:.+}", self._rest)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server  # aiohttp exposes the bound port only here
        assert server is not None and server.sockets  # type: ignore[attr-defined]  # asyncio.Server
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]  # asyncio.Server
        self._clock = asyncio.get_running_loop().create_task(self._run_clock())

    async def stop(self) -> None:
        if self._clock is not None:
            self._clock.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._clock
        for sock in list(self.sockets):
            await sock.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
        self._unsubscribe()
        self.book.close()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/v1/websocket"

    def demo_credentials(self) -> dict[str, Any]:
        return {**self.credentials, "accounts": list(self.account_names)}

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
            if any(self.faults(name).take_drop() for name in self.account_names):
                for sock in list(self.sockets):
                    await sock.ws.close(code=1006, message=b"simulated drop")

    def _on_props(self, account: str, event: dict[str, Any]) -> None:
        for sock in self.sockets:
            if sock.synced and account in sock.accounts:
                sock.push(codec.Push(s.PROPS, event))

    # -- REST ------------------------------------------------------------------------------------
    async def _rest(self, request: web.Request) -> web.StreamResponse:
        await self.latency.wait()
        body: Any = None
        if request.can_read_body:
            raw = await request.text()
            try:
                body = json.loads(raw) if raw.strip() else None
            except json.JSONDecodeError:
                return web.Response(status=400, text="Malformed JSON")
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        status, payload = await self.api.call(request.match_info["endpoint"], dict(request.query), body, token)
        if status == LOST_STATUS:  # carried out, answer lost: reset the connection, reply nothing
            if request.transport is not None:
                request.transport.abort()
            raise ConnectionResetError("simulated lost response")
        if status == 429:
            return web.Response(status=429)  # docs: "429 Too Many Requests", Content-Length: 0
        if status != 200:
            return web.Response(status=status, text=payload if isinstance(payload, str) else "")
        return web.json_response(payload)

    # -- WebSocket ------------------------------------------------------------------------------
    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        sock = _Socket(ws)
        self.sockets.add(sock)
        self.connections_opened += 1
        sock.out.put_nowait(codec.OPEN)
        writer = asyncio.get_running_loop().create_task(self._writer(sock))
        beats = asyncio.get_running_loop().create_task(self._heartbeats(sock))
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
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
                await sock.ws.send_str(text)

    async def _heartbeats(self, sock: _Socket) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            sock.out.put_nowait(codec.SERVER_HEARTBEAT)

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
            token = codec.token_from_body(req.body)
            ok = self.tokens.lookup(token) is not None
            if ok:
                sock.token = token
            sock.push(codec.Response(req.request_id, 200 if ok else 401, None if ok else "Access is denied"))
            return
        if sock.token is None:
            sock.push(codec.Response(req.request_id, 401, "Access is denied"))
            return
        body = req.json_body()
        status, payload = await self.api.call(endpoint, req.query_params(), body, sock.token)
        if status == LOST_STATUS:
            return  # carried out, answer lost: the client's request times out
        if endpoint == "user/syncrequest" and status == 200:
            sock.accounts = self.api._sync_accounts(body if isinstance(body, dict) else {})
            sock.synced = True
        sock.push(codec.Response(req.request_id, status, payload))
