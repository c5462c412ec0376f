"""With ``COPYTRADER_REDIS_URL``, web workers share sessions, login counters and the webhook
replay cache, and a logout on one worker reaches sockets held by another (AsyncRedisManager)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from pathlib import Path

import pytest
import socketio
from aiohttp.test_utils import TestClient, TestServer
from ci_skips import needs
from waiting import wait_until
from webtest_helpers import PASSWORD, WEBHOOK_SECRET

from copytrader.app.factory import create_app
from copytrader.core.config import parse_config
from copytrader.core.settings import Settings
from copytrader.demo.configgen import demo_config
from copytrader.web.auth import RedisSessions
from copytrader.web.realtime import session_room
from copytrader.web.webhook import (
    RedisReplayCache,
    WebhookRefused,
    WebhookVerifier,
    sign,
)

REDIS = os.environ.get("COPYTRADER_TEST_REDIS_URL")
pytestmark = [
    pytest.mark.redis,
    needs("redis", "COPYTRADER_TEST_REDIS_URL not set (scripts/services.sh starts Redis)", available=REDIS),
]


async def test_sessions_and_replay_cache_are_shared() -> None:
    assert REDIS
    a, b = RedisSessions(REDIS), RedisSessions(REDIS)
    session = await a.create("admin")
    assert (await b.get(session.token)) == session
    await b.delete(session.token)
    assert await a.get(session.token) is None
    key = f"test:{secrets.token_hex(4)}"
    assert [await a.hit(key, 60) for _ in range(3)] == [1, 2, 3]
    body = b'{"x": 1}'
    header = sign(WEBHOOK_SECRET, body)
    await WebhookVerifier(WEBHOOK_SECRET, RedisReplayCache(REDIS)).verify(header, body)
    with pytest.raises(WebhookRefused):
        await WebhookVerifier(WEBHOOK_SECRET, RedisReplayCache(REDIS)).verify(header, body)


async def test_logout_on_one_worker_ends_the_socket_held_by_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COPYTRADER_ADMIN_PASSWORD", PASSWORD)
    config = parse_config(demo_config(2), env={})
    clients, hubs = [], []
    for name in ("one", "two"):
        app = create_app(
            Settings(data_dir=tmp_path / name, roles=("web",), app_id=f"redis-{name}", redis_url=REDIS), config
        )
        assert app.runtime.web is not None
        hubs.append(app.runtime.web.hub)
        client = TestClient(TestServer(app.web.web_app))
        await client.start_server()
        clients.append(client)
    one, two = clients
    try:
        token = (await one.get("/login")).cookies["ct_login"].value
        login = await one.post(
            "/api/session", json={"username": "admin", "password": PASSWORD}, headers={"X-CSRF-Token": token}
        )
        assert login.status == 200
        csrf = (await login.json())["csrf"]
        session_cookie = login.cookies["ct_session"].value
        two.session.cookie_jar.update_cookies({"ct_session": session_cookie}, two.make_url("/"))
        assert (await two.get("/api/grid")).status == 200  # the session made on worker one is valid on two
        ended = asyncio.Event()
        sio = socketio.AsyncClient(reconnection=False, http_session=two.session)
        sio.on("session_ended", lambda data: ended.set())
        await sio.connect(str(two.make_url("/")), transports=["websocket"], wait_timeout=5)
        # Worker two's Redis listener subscribes in the background: wait until a probe sent
        # through worker one reaches the socket held by two.
        heard = asyncio.Event()
        sio.on("probe", lambda data: heard.set())

        async def two_hears_one() -> bool:
            await hubs[0].sio.emit("probe", {}, room=session_room(session_cookie))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(heard.wait(), 0.1)
            return heard.is_set()

        await wait_until(two_hears_one, timeout_s=10, what="worker two's socket hearing worker one through Redis")
        assert (await one.delete("/api/session", headers={"X-CSRF-Token": csrf})).status == 200
        await asyncio.wait_for(ended.wait(), 5)
        assert (await two.get("/api/grid")).status == 401
        await sio.disconnect()
    finally:
        for client in clients:
            await client.close()
