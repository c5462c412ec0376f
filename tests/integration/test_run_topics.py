"""A run deletes its own topics when it ends, Faust's under its app ids included, and no one
else's (a demo, a bench, a chaos run and the cost scripts share ``delete_run_topics``)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from copytrader.core.topics import delete_run_topics

pytestmark = pytest.mark.kafka


def test_a_run_deletes_its_topics_and_its_apps_topics_only(kafka_bootstrap: str) -> None:
    run = f"run{uuid.uuid4().hex[:8]}"
    mine = [f"{run}.trade.signals", f"{run}-back-positions-changelog"]
    others = [f"{run}0.trade.signals", f"{run}x-back-positions-changelog"]  # prefixes that start the same

    async def go() -> tuple[list[str], set[str]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(t, num_partitions=1, replication_factor=1) for t in mine + others])
            for _ in range(100):  # a fresh broker's metadata takes new topics in a moment (CI saw none)
                if set(mine + others) <= set(await admin.list_topics()):
                    break
                await asyncio.sleep(0.1)
            deleted = await delete_run_topics(kafka_bootstrap, f"{run}.")
            left = set(await admin.list_topics())
            await admin.delete_topics(others)
        finally:
            await admin.close()
        return deleted, left

    deleted, left = asyncio.run(go())
    assert sorted(deleted) == sorted(mine)
    assert set(others) <= left
