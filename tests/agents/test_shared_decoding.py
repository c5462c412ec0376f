"""A watching worker decodes each ``trade.executions`` record once for its three readers (the
tracker, the database sink's consumer, the dashboard feed; ``agents/shared/decoded_records.py``),
and each of them still counts, stores and shows every execution of the record."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.agents.tracking import tracker
from copytrader.app.factory import CopyTraderApp
from copytrader.core import records
from copytrader.core.records import Execution, ExecutionBatch

CONFIG = {
    "sessions": [{"id": "p", "platform": "paper", "options": {"tick_ms": 0, "venue": "shared-decoding"}}],
    "accounts": [{"id": "L", "session": "p"}, {"id": "f1", "session": "p"}, {"id": "f2", "session": "p"}],
    "copy_groups": [{"id": "g", "leader": "L", "followers": [{"account": "f1"}, {"account": "f2"}]}],
}


@pytest.fixture(autouse=True)
def _web_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COPYTRADER_ADMIN_USER", "admin")
    monkeypatch.setenv("COPYTRADER_ADMIN_PASSWORD", "a-long-enough-password-1")
    monkeypatch.delenv("COPYTRADER_DATABASE_URL", raising=False)
    monkeypatch.delenv("COPYTRADER_REDIS_URL", raising=False)


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """Every ``executions_of`` call, whoever makes it (the tracker's, the sink's, the feed's)."""
    calls: list[bytes] = []
    original = records.executions_of

    def counted(raw: bytes) -> list[Execution]:
        calls.append(raw)
        return original(raw)

    # Each reader looks ``executions_of`` up where it was imported from when it is built.
    monkeypatch.setattr(tracker, "executions_of", counted)
    monkeypatch.setattr("copytrader.agents.tracking.storage_sink.executions_of", counted)
    monkeypatch.setattr("copytrader.web.realtime.executions_of", counted)
    yield calls


def fill(account: str, n: int) -> Execution:
    return Execution(
        execution_id=f"{account}|o{n}|fill|{n}",
        account_id=account,
        platform="paper",
        kind="fill",
        symbol="ESZ6",
        side="buy",
        quantity=n,
        price=Decimal("5000.25"),
        client_order_id=f"c{account}{n}",
        stamps={"detected": 1.0, "filled": 1.5},
    )


async def test_three_readers_one_decode(
    make_app: Callable[..., CopyTraderApp], outbox: MemoryOutbox, decodes: list[bytes]
) -> None:
    app = make_app(CONFIG, ("track", "store", "web"))
    runtime = app.runtime
    topic = runtime.topics.executions.get_topic_name()
    assert runtime.decoded.readers[topic] == 3
    raw = ExecutionBatch(executions=[fill("f1", 2), fill("f2", 3)]).dumps()

    async with app.agents["tracker"].test_context() as agent:
        event = await agent.put(raw, key=b"f1")
    assert sorted((p.account_id, p.net_quantity) for p in outbox.sent["position"]) == [("f1", 2), ("f2", 3)]
    assert decodes == [raw]

    # the database sink's consumer and the dashboard feed read the same record (same place)
    place = TopicPartition(event.message.topic, event.message.partition)
    offset = event.message.offset
    stored: list[Any] = []

    async def store(groups: Any) -> None:
        stored.extend(value for _mapper, values in groups for value in values)

    assert runtime.storage is not None and runtime.storage.consumer is not None
    consumer = runtime.storage.consumer
    consumer.store = store
    await consumer.write(
        {place: [ConsumerRecord(place.topic, place.partition, offset, 0, 0, b"f1", raw, None, 0, 0, [])]}
    )
    assert [[e.execution_id for e in record] for record in stored] == [["f1|o2|fill|2", "f2|o3|fill|3"]]

    web = runtime.web
    assert web is not None
    changes = web.feed._apply("trade.executions", place.partition, offset, raw)
    assert [row["execution_id"] for stream, row in changes if stream == "orders"] == ["f1|o2|fill|2", "f2|o3|fill|3"]

    assert decodes == [raw]  # one decode for the three readers
    assert runtime.decoded.kept == 0  # and nothing kept once the last one took it
