"""Helpers for the web tests (imported by name: the test folders are not packages)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient

from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.core.topics import topic_name
from copytrader.web.server import WebContext

PASSWORD = "correct horse battery staple"
WEBHOOK_SECRET = "whsec-test-0123456789"


class FastUsers:
    """The admin with ``PASSWORD``, without scrypt's cost (seconds per login on a busy machine);
    for tests of what follows a login, not of password hashing."""

    async def verify(self, username: str, password: str) -> Any:
        from copytrader.web.auth import User

        return User(username) if (username, password) == ("admin", PASSWORD) else None


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
        response = await self.client.post(
            "/api/session", json={"username": username, "password": password}, headers={"X-CSRF-Token": token}
        )
        if response.status == 200:
            self.csrf = (await response.json())["csrf"]
        return response

    def write_headers(self) -> dict[str, str]:
        return {"X-CSRF-Token": self.csrf}


@dataclass
class KafkaWeb(Web):
    """A :class:`Web` whose live state comes from the real Kafka feed over ``prefix``'s topics."""

    prefix: str = ""
    producer: Any = None
    feed_task: asyncio.Task[None] | None = None

    async def publish(
        self, topic: str, record: Any, partition: int | None = None, key: bytes | None = None
    ) -> tuple[int, int]:
        """One record (or raw bytes) on ``topic`` (prefixed), acknowledged by the broker: its
        (partition, offset)."""
        value = record if isinstance(record, bytes) else record.dumps()
        meta = await self.producer.send_and_wait(topic_name(self.prefix, topic), value, key=key, partition=partition)
        return meta.partition, meta.offset

    async def start_feed(self, timeout_s: float = 30) -> None:
        """Start the worker's feed (as the ``dashboard_feed`` task does) and await its seek."""
        self.feed_task = asyncio.ensure_future(self.ctx.feed.run())
        await asyncio.wait_for(self.ctx.feed.ready.wait(), timeout_s)
