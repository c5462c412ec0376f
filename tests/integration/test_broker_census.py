"""The bench's census of the broker it runs on: topics and partitions before the run (a
broker's idle CPU grows with them, so two runs compare only with this too)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from copytrader.demo.calibration import broker_census

pytestmark = pytest.mark.kafka


def test_the_census_counts_the_brokers_topics_and_partitions(kafka_bootstrap: str) -> None:
    name = f"census{uuid.uuid4().hex[:8]}"

    async def counted(admin: AIOKafkaAdminClient) -> dict[str, int]:
        """The broker's own answer, topic by topic (what the census must add up to)."""
        topics = [t for t in await admin.list_topics() if not t.startswith("__")]
        described = await admin.describe_topics(topics)
        return {"topics": len(topics), "partitions": sum(len(d["partitions"]) for d in described)}

    async def run() -> tuple[list[tuple[dict[str, int] | None, dict[str, int]]], dict[str, int] | None]:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        seen = []
        try:
            await admin.create_topics([NewTopic(name, num_partitions=7, replication_factor=1)])
            for _ in range(50):  # other tests' topics may still be going away: until both agree
                seen.append((await broker_census(kafka_bootstrap), await counted(admin)))
                if seen[-1][0] == seen[-1][1] and name in await admin.list_topics():
                    break
                await asyncio.sleep(0.1)
            await admin.delete_topics([name])
        finally:
            await admin.close()
        return seen, await broker_census("127.0.0.1:1")

    seen, unreachable = asyncio.run(run())
    census, truth = seen[-1]
    assert census == truth and truth["topics"] >= 1 and truth["partitions"] >= 7
    assert unreachable is None  # a yardstick, never a failure of the run
