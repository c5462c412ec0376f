"""A Tradovate socket that goes silent (no ``h``, no push, not closed) is given up and replaced.

Tradovate's server sends ``h`` every 2.5 s; a socket that sends nothing for
``stale_after_s`` is presumed dead (a half-open TCP connection after a network change looks
exactly like this: no error, no close). The read waits without a timer per frame since #16,
so the heartbeat task is the watchdog: these tests pin that it still notices, and that a
socket that keeps talking is left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from copytrader.brokers.tradovate.config import TradovateConfig
from copytrader.brokers.tradovate.transport import UserSocket


class QuietServer:
    """Speaks just enough of the socket (open, authorize, sync) and then says nothing more,
    unless ``beat_s`` is set: then an ``h`` frame that often, as Tradovate does."""

    def __init__(self, beat_s: float | None = None) -> None:
        self.beat_s = beat_s
        self.connections = 0
        self.url = ""
        self._server: TestServer | None = None

    async def socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections += 1
        await ws.send_str("o")
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.TEXT or msg.data == "[]":
                continue
            endpoint, request_id = msg.data.split("\n")[:2]
            data: Any = {} if endpoint == "user/syncrequest" else None
            await ws.send_str("a" + json.dumps([{"s": 200, "i": int(request_id), "d": data}]))
            if endpoint == "user/syncrequest" and self.beat_s:
                asyncio.get_running_loop().create_task(self._beat(ws))
        return ws

    async def _beat(self, ws: web.WebSocketResponse) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            while not ws.closed:
                await asyncio.sleep(self.beat_s or 1)
                await ws.send_str("h")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/ws", self.socket)
        self._server = TestServer(app)
        await self._server.start_server()
        self.url = str(self._server.make_url("/ws"))

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.close()


class FakeRest:
    user_id = 1

    async def ensure_token(self) -> str:
        return "token"

    async def recover(self, stale: str | None) -> None:
        return None


@contextlib.asynccontextmanager
async def running_socket(server: QuietServer, **options: float) -> AsyncIterator[tuple[UserSocket, list[str]]]:
    config = TradovateConfig(
        rest_url="http://unused", ws_url=server.url, name="u", password="p", reconnect_initial_s=0.05, **options
    )
    states: list[str] = []

    async def on_sync(data: Any, first: bool) -> None:
        return None

    async def on_props(data: dict[str, Any]) -> None:
        return None

    async with aiohttp.ClientSession() as http:
        sock = UserSocket(
            config,
            http,
            FakeRest(),  # type: ignore[arg-type]  # the two calls the socket makes
            on_sync,
            on_props,
            lambda state, reason: states.append(state),
        )
        task = asyncio.get_running_loop().create_task(sock.run())
        try:
            await asyncio.wait_for(asyncio.shield(sock.ready), 5)
            yield sock, states
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await sock.close()


@pytest.fixture
async def quiet() -> AsyncIterator[QuietServer]:
    server = QuietServer()
    await server.start()
    yield server
    await server.stop()


async def test_a_silent_socket_is_closed_and_the_session_comes_back(quiet: QuietServer) -> None:
    async with running_socket(quiet, heartbeat_s=0.1, stale_after_s=0.4) as (sock, states):
        async with asyncio.timeout(5):
            while quiet.connections < 2 or sock.connects < 2:
                await asyncio.sleep(0.02)
        assert sock.stale_closes >= 1
        assert "connecting" in states and states[-1] == "connected"


async def test_a_socket_that_beats_is_not_closed() -> None:
    server = QuietServer(beat_s=0.1)
    await server.start()
    try:
        async with running_socket(server, heartbeat_s=0.1, stale_after_s=0.4) as (sock, states):
            await asyncio.sleep(1.5)  # an absence: nothing may happen in this window
            assert (server.connections, sock.connects, sock.stale_closes) == (1, 1, 0)
            assert "connecting" not in states
    finally:
        await server.stop()
