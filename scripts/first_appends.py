"""A new partition's first index entry: how long a produce to fresh partitions takes, round by round.

Why (#16 item 3, docs/benchmarks.md "A new partition's first index entry"): Kafka writes an
offset- and time-index entry once 4 KiB have been appended to a segment, into index files it
created at ``segment.index.bytes`` (10 MiB by default; the local broker's
``log.index.size.max.bytes`` is 64 KiB). On this machine's ext4 disk the first such entry
into a 10 MiB index took about 5 ms per partition, inside the produce request: the demo's
third to sixth signals (its topics are new) waited 15-20 ms longer than the rest.

What it does: creates a topic of ``--partitions`` with LogAppendTime, sends ``--rounds``
rounds of two records per partition (acks=all, as Faust's producer), and prints one JSON line:
each round's milliseconds, the slowest round and, per round, how far apart the broker's append
times of one round were. ``--index-bytes`` sets the topic's ``segment.index.bytes`` (omit it to
take the broker's default), so the two sizes can be compared on one broker. The topic is deleted.

Usage: ``python scripts/first_appends.py [--bootstrap HOST:PORT] [--index-bytes N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from typing import Any

RECORD = b"x" * 300  # about an intent batch's share per partition at 20 followers


async def measure(
    bootstrap: str, partitions: int, rounds: int, interval_s: float, index_bytes: int | None
) -> dict[str, Any]:
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    name = f"first-appends-{uuid.uuid4().hex[:8]}"
    configs = {"message.timestamp.type": "LogAppendTime"}
    if index_bytes is not None:
        configs["segment.index.bytes"] = str(index_bytes)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    try:
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs)])
        await producer.start()
        await producer.client.force_metadata_update()
        await asyncio.sleep(1.0)  # the partitions' leaders settled
        took_ms: list[float] = []
        spread_ms: list[float] = []
        for _ in range(rounds):
            started = time.perf_counter()
            sent = [await producer.send(name, RECORD, partition=i % partitions) for i in range(2 * partitions)]
            appended = [meta.timestamp for meta in await asyncio.gather(*sent)]
            took_ms.append(round((time.perf_counter() - started) * 1000, 2))
            spread_ms.append(float(max(appended) - min(appended)))
            await asyncio.sleep(interval_s)
    finally:
        await producer.stop()
        try:
            await admin.delete_topics([name])
        finally:
            await admin.close()
    ordered = sorted(took_ms)
    return {
        "partitions": partitions,
        "segment_index_bytes": index_bytes or "broker default",
        "round_ms": took_ms,
        "median_round_ms": ordered[len(ordered) // 2],
        "slowest_round_ms": ordered[-1],
        "slowest_round": took_ms.index(ordered[-1]),
        "append_spread_ms": spread_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("COPYTRADER_KAFKA_BROKER", "kafka://127.0.0.1:9092").removeprefix("kafka://")
    parser.add_argument("--bootstrap", default=default)
    parser.add_argument("--partitions", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between rounds")
    parser.add_argument("--index-bytes", type=int, default=None, help="the topic's segment.index.bytes")
    args = parser.parse_args()
    result = asyncio.run(measure(args.bootstrap, args.partitions, args.rounds, args.interval, args.index_bytes))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
