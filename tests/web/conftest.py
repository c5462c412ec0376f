"""In-process web workers (role ``web``) on aiohttp's test server.

``web``: no Kafka; for the doors (auth, REST, webhook) that do not depend on what the topics hold.
Outbound sends go to a ``MemoryOutbox`` and a recording controls topic.

``kafka_web``: the same worker with its real :class:`~copytrader.web.realtime.KafkaFeed` on
the real broker, over topics under a prefix of its own; tests that assert live pushes publish
records to those topics and let the feed (seek, backlog, apply, push) deliver them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaProducer
from webtest_helpers import PASSWORD, WEBHOOK_SECRET, KafkaWeb, RecordingTopic, Web

from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.app.factory import create_app
from copytrader.common.crypto import generate_key
from copytrader.core.config import parse_config
from copytrader.core.settings import Settings
from copytrader.core.topics import ensure_topics
from copytrader.demo.configgen import demo_config
from copytrader.web.server import WebContext

CREDENTIALS_KEY = generate_key()


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COPYTRADER_ADMIN_USER", "admin")
    monkeypatch.setenv("COPYTRADER_ADMIN_PASSWORD", PASSWORD)
    monkeypatch.setenv("COPYTRADER_WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("COPYTRADER_SECRET_KEY", CREDENTIALS_KEY)
    monkeypatch.delenv("COPYTRADER_REDIS_URL", raising=False)
    monkeypatch.delenv("COPYTRADER_DATABASE_URL", raising=False)


@contextlib.asynccontextmanager
async def _served(settings: Settings) -> AsyncIterator[tuple[TestClient, WebContext, MemoryOutbox, RecordingTopic]]:
    outbox = MemoryOutbox()
    app = create_app(settings, parse_config(demo_config(4), env={}), outbox=outbox)
    ctx: WebContext = app.runtime.web  # type: ignore[assignment]
    controls = RecordingTopic()
    ctx.commands.controls_topic = controls  # type: ignore[assignment]  # records instead of producing
    client = TestClient(TestServer(app.web.web_app))
    await client.start_server()
    try:
        yield client, ctx, outbox, controls
    finally:
        await client.close()
        logging.getLogger().handlers[:] = [h for h in logging.getLogger().handlers if not getattr(h, "_ct", False)]


@pytest_asyncio.fixture
async def web(tmp_path: Path) -> AsyncIterator[Web]:
    async with _served(Settings(data_dir=tmp_path, roles=("web",), app_id="webtest")) as (
        client,
        ctx,
        outbox,
        controls,
    ):
        yield Web(client, ctx, outbox, controls)


@pytest_asyncio.fixture
async def kafka_web(tmp_path: Path, kafka_bootstrap: str) -> AsyncIterator[KafkaWeb]:
    """A web worker whose feed reads topics under a fresh prefix; the feed starts on
    ``start_feed()``, so a test can publish a backlog first."""
    prefix = f"web{uuid.uuid4().hex[:10]}."
    await ensure_topics(kafka_bootstrap, prefix)
    settings = Settings(
        data_dir=tmp_path,
        roles=("web",),
        app_id="webtest",
        kafka_broker=f"kafka://{kafka_bootstrap}",
        topic_prefix=prefix,
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=0)
    await producer.start()
    try:
        async with _served(settings) as (client, ctx, outbox, controls):
            web = KafkaWeb(client, ctx, outbox, controls, prefix=prefix, producer=producer)
            try:
                yield web
            finally:
                if web.feed_task is not None:
                    web.feed_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await web.feed_task
    finally:
        await producer.stop()
