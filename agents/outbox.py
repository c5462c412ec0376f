"""Where agents put their results: one small interface over the output topics.

Agents never call ``topic.send`` directly, so tests run them against :class:`MemoryOutbox`
(Faust's ``test_context`` would otherwise try to reach Kafka on an unpatched send) and the
hot path has one place to measure.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Protocol

from ..app.records import AccountStatus, Execution, OrderError, OrderIntent, Position
from ..app.topics import Topics


class Outbox(Protocol):
    async def intent(self, intent: OrderIntent) -> None: ...
    async def execution(self, execution: Execution) -> None: ...
    async def error(self, error: OrderError) -> None: ...
    async def position(self, position: Position) -> None: ...
    async def status(self, status: AccountStatus) -> None: ...
    async def health(self, status: AccountStatus) -> None: ...
    async def signal(self, key: str, payload: bytes) -> None: ...


class TopicOutbox:
    """The production outbox: Faust topics, keyed as the topic layout says."""

    def __init__(self, topics: Topics) -> None:
        self.topics = topics

    async def intent(self, intent: OrderIntent) -> None:
        await self.topics.intents.send(key=intent.account_id, value=intent)

    async def execution(self, execution: Execution) -> None:
        await self.topics.executions.send(key=execution.account_id, value=execution)

    async def error(self, error: OrderError) -> None:
        await self.topics.errors.send(key=error.account_id, value=error)

    async def position(self, position: Position) -> None:
        await self.topics.positions.send(key=position.account_id, value=position)

    async def status(self, status: AccountStatus) -> None:
        await self.topics.status.send(key=status.account_id, value=status)

    async def health(self, status: AccountStatus) -> None:
        await self.topics.health.send(key=status.account_id, value=status)

    async def signal(self, key: str, payload: bytes) -> None:
        await self.topics.signals.send(key=key, value=payload)


class MemoryOutbox:
    """Collects everything by kind (tests, and the bench's in-process checks)."""

    def __init__(self) -> None:
        self.sent: dict[str, list[object]] = defaultdict(list)

    async def intent(self, intent: OrderIntent) -> None:
        self.sent["intent"].append(intent)

    async def execution(self, execution: Execution) -> None:
        self.sent["execution"].append(execution)

    async def error(self, error: OrderError) -> None:
        self.sent["error"].append(error)

    async def position(self, position: Position) -> None:
        self.sent["position"].append(position)

    async def status(self, status: AccountStatus) -> None:
        self.sent["status"].append(status)

    async def health(self, status: AccountStatus) -> None:
        self.sent["health"].append(status)

    async def signal(self, key: str, payload: bytes) -> None:
        self.sent["signal"].append((key, payload))
