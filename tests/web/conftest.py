"""An in-process web worker (role ``web``) on aiohttp's test server: no Kafka needed.

The Kafka feed is not started; tests feed ``LiveState`` through the same ``_apply`` the feed
uses. Outbound sends go to a ``MemoryOutbox`` and a recording controls topic.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from copytrader.agents.outbox import MemoryOutbox
from copytrader.app.config import parse_config
from copytrader.app.demo.configgen import demo_config
from copytrader.app.factory import create_app
from copytrader.app.settings import Settings
from copytrader.web.server import WebContext

PASSWORD = "correct horse battery staple"
WEBHOOK_SECRET = "whsec-test-0123456789"


class RecordingTopic:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes]] = []

    async def send(self, key: bytes, value: bytes) -> None:
        self.sent.append((key, value))


@dataclass
class Web:
    client: TestClient
    ctx: WebContext
    outbox: MemoryOutbox
    controls: RecordingTopic
    csrf: str = ""

    async def login(self, username: str = "admin", password: str = PASSWORD) -> Any:
        page = await self.client.get("/login")
        assert page.status == 200
        token = page.cookies["ct_login"].value
        response = await self.client.post("/api/session", json={"username": username, "password": password},
                                          headers={"X-CSRF-Token": token})
        if response.status == 200:
            self.csrf = (await response.json())["csrf"]
        return response

    def write_headers(self) -> dict[str, str]:
        return {"X-CSRF-Token": self.csrf}


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COPYTRADER_ADMIN_USER", "admin")
    monkeypatch.setenv("COPYTRADER_ADMIN_PASSWORD", PASSWORD)
    monkeypatch.setenv("COPYTRADER_WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.delenv("COPYTRADER_REDIS_URL", raising=False)
    monkeypatch.delenv("COPYTRADER_DATABASE_URL", raising=False)


@pytest_asyncio.fixture
async def web(tmp_path: Path) -> AsyncIterator[Web]:
    settings = Settings(data_dir=tmp_path, roles=("web",), app_id="webtest")
    outbox = MemoryOutbox()
    app = create_app(settings, parse_config(demo_config(4), env={}), outbox=outbox)
    ctx: WebContext = app.runtime.extras["web"]
    controls = RecordingTopic()
    ctx.commands.controls_topic = controls  # type: ignore[assignment]  # records instead of producing
    client = TestClient(TestServer(app.web.web_app))
    await client.start_server()
    try:
        yield Web(client, ctx, outbox, controls)
    finally:
        await client.close()
        logging.getLogger().handlers[:] = [h for h in logging.getLogger().handlers if not getattr(h, "_ct", False)]
