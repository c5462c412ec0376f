"""The demo's broker warm-up: round trips on its own scratch topic only, and a broker that cannot
be reached leaves the run cold, never stopped (issue #16 item 3)."""

from __future__ import annotations

import asyncio
import socket
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from copytrader.demo.broker_warmup import WarmupResult, warm_broker, warm_broker_quietly, warmup_topic

pytestmark = pytest.mark.kafka


def test_warmup_makes_round_trips_on_its_scratch_topic_only(kafka_bootstrap: str) -> None:
    prefix = f"warm{uuid.uuid4().hex[:8]}."

    async def run() -> tuple[int, set[str], int]:
        result = await warm_broker(kafka_bootstrap, prefix, round_trips=60)
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            mine = {t for t in await admin.list_topics() if t.startswith(prefix)}
            described = await admin.describe_topics([warmup_topic(prefix)])
            partitions = len(described[0]["partitions"])
            await admin.delete_topics(sorted(mine))
        finally:
            await admin.close()
        assert result.first_ack_p50_ms is not None and result.last_ack_p50_ms is not None
        assert "60 round trips" in result.describe()
        return result.round_trips, mine, partitions

    round_trips, topics, partitions = asyncio.run(run())
    assert round_trips == 60
    assert topics == {warmup_topic(prefix)}  # no business topic of the run was created or written
    assert partitions == 10


def test_warmup_stops_at_its_time_limit(kafka_bootstrap: str) -> None:
    prefix = f"warm{uuid.uuid4().hex[:8]}."

    async def run() -> WarmupResult:
        try:
            return await warm_broker(kafka_bootstrap, prefix, round_trips=10**9, time_limit_s=0.5)
        finally:
            admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
            await admin.start()
            try:
                await admin.delete_topics([warmup_topic(prefix)])
            finally:
                await admin.close()

    result = asyncio.run(run())
    assert 0 < result.round_trips < 10**9
    assert result.seconds < 10.0


def test_unreachable_broker_is_reported_not_raised() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    said = asyncio.run(warm_broker_quietly(f"127.0.0.1:{port}", "nobody."))
    assert "broker warm-up failed" in said and "cold broker" in said
