"""An in-process web worker (role ``web``) on aiohttp's test server: no Kafka needed.

The Kafka feed is not started; tests feed ``LiveState`` through the same ``_apply`` the feed
uses. Outbound sends go to a ``MemoryOutbox`` and a recording controls topic.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.core.config import parse_config
from copytrader.demo.configgen import demo_config
from copytrader.app.factory import create_app
from copytrader.core.settings import Settings
from copytrader.web.server import WebContext
from copytrader.common.crypto import generate_key
from webtest_helpers import PASSWORD, WEBHOOK_SECRET, RecordingTopic, Web


CREDENTIALS_KEY = generate_key()


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COPYTRADER_ADMIN_USER", "admin")
    monkeypatch.setenv("COPYTRADER_ADMIN_PASSWORD", PASSWORD)
    monkeypatch.setenv("COPYTRADER_WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("COPYTRADER_SECRET_KEY", CREDENTIALS_KEY)
    monkeypatch.delenv("COPYTRADER_REDIS_URL", raising=False)
    monkeypatch.delenv("COPYTRADER_DATABASE_URL", raising=False)


@pytest_asyncio.fixture
async def web(tmp_path: Path) -> AsyncIterator[Web]:
    settings = Settings(data_dir=tmp_path, roles=("web",), app_id="webtest")
    outbox = MemoryOutbox()
    app = create_app(settings, parse_config(demo_config(4), env={}), outbox=outbox)
    ctx: WebContext = app.runtime.web  # type: ignore[assignment]
    controls = RecordingTopic()
    ctx.commands.controls_topic = controls  # type: ignore[assignment]  # records instead of producing
    client = TestClient(TestServer(app.web.web_app))
    await client.start_server()
    try:
        yield Web(client, ctx, outbox, controls)
    finally:
        await client.close()
        logging.getLogger().handlers[:] = [h for h in logging.getLogger().handlers if not getattr(h, "_ct", False)]
