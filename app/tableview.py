"""Read a Faust table's current rows from its changelog topic, with no worker running.

A table's changelog (``<app id>-<table>-changelog``) holds every update keyed like the table;
the last value per key is the table's current row. Faust itself has no command that dumps a
table from outside the worker, so ``copytrader table positions`` does this.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from ..agents.shared.aiokafka_internals import refresh_metadata


async def read_table(bootstrap: str, app_id: str, table: str, timeout: float = 10.0) -> dict[str, Any]:
    topic = f"{app_id}-{table}-changelog"
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await refresh_metadata(consumer)
            partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            raise LookupError(f"no changelog topic {topic!r}: is the app id right and has a worker run?")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        rows: dict[str, Any] = {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout

        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in tps])

        while await behind() and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for messages in batch.values():
                for message in messages:
                    key = orjson.loads(message.key) if message.key else None
                    if message.value is None:
                        rows.pop(str(key), None)  # a tombstone: the row was deleted
                    else:
                        value = orjson.loads(message.value)
                        rows[str(key)] = (
                            {k: v for k, v in value.items() if k != "__faust"} if isinstance(value, dict) else value
                        )
        return rows
    finally:
        await consumer.stop()
