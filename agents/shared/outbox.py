"""Where agents put their results: one small interface over the output topics.

Agents never call ``topic.send`` directly, so tests run them against :class:`MemoryOutbox`
(Faust's ``test_context`` would otherwise try to reach Kafka on an unpatched send) and the
hot path has one place to measure.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Protocol, TypeVar

from ...core.records import (
    MAX_ERRORS_PER_RECORD,
    MAX_PER_RECORD,
    AccountStatus,
    ErrorBatch,
    Execution,
    ExecutionBatch,
    IntentBatch,
    OrderError,
    OrderIntent,
    Position,
    PositionBatch,
)
from ...core.topics import SPEC, Topics, partition_for

INTENT_PARTITIONS = SPEC["orders.requests"].partitions
EXECUTION_PARTITIONS = SPEC["trade.executions"].partitions
POSITION_PARTITIONS = SPEC["positions.updates"].partitions
ERROR_PARTITIONS = SPEC["order.errors"].partitions


class _Keyed(Protocol):
    account_id: str


T = TypeVar("T", bound=_Keyed)


def batch_intents(signal_id: str, intents: list[OrderIntent]) -> dict[int, IntentBatch]:
    """Group one signal's intents by the ``orders.requests`` partition of their account."""
    groups: dict[int, list[OrderIntent]] = {}
    for intent in intents:
        groups.setdefault(partition_for(intent.account_id, INTENT_PARTITIONS), []).append(intent)
    return {p: IntentBatch(batch_id=f"{signal_id}|p{p}", intents=group) for p, group in groups.items()}


def _by_partition(items: list[T], partitions: int, per_record: int = MAX_PER_RECORD) -> list[tuple[int, list[T]]]:
    """Items grouped by the partition of their account, in their order, at most
    ``per_record`` to a group."""
    groups: dict[int, list[T]] = {}
    for item in items:
        groups.setdefault(partition_for(item.account_id, partitions), []).append(item)
    return [
        (partition, group[start : start + per_record])
        for partition, group in groups.items()
        for start in range(0, len(group), per_record)
    ]


def batch_executions(executions: list[Execution]) -> list[tuple[int, ExecutionBatch]]:
    """One :class:`ExecutionBatch` per ``trade.executions`` partition (and per 500)."""
    return [(p, ExecutionBatch(executions=g)) for p, g in _by_partition(executions, EXECUTION_PARTITIONS)]


def batch_positions(positions: list[Position]) -> list[tuple[int, PositionBatch]]:
    """One :class:`PositionBatch` per ``positions.updates`` partition (and per 500)."""
    return [(p, PositionBatch(positions=g)) for p, g in _by_partition(positions, POSITION_PARTITIONS)]


def batch_errors(errors: list[OrderError]) -> list[tuple[int, ErrorBatch]]:
    """One :class:`ErrorBatch` per ``order.errors`` partition (and per 100)."""
    return [(p, ErrorBatch(errors=g)) for p, g in _by_partition(errors, ERROR_PARTITIONS, MAX_ERRORS_PER_RECORD)]


class Outbox(Protocol):
    async def intents(self, signal_id: str, intents: list[OrderIntent]) -> None: ...
    async def execution(self, execution: Execution) -> None: ...
    async def executions(self, executions: list[Execution]) -> None: ...
    async def error(self, error: OrderError) -> None: ...
    async def errors(self, errors: list[OrderError]) -> None: ...
    async def position(self, position: Position) -> None: ...
    async def positions(self, positions: list[Position]) -> None: ...
    async def status(self, status: AccountStatus) -> None: ...
    async def health(self, status: AccountStatus) -> None: ...
    async def signal(self, key: str, payload: bytes) -> None: ...


class TopicOutbox:
    """The production outbox: Faust topics, keyed as the topic layout says."""

    def __init__(self, topics: Topics) -> None:
        self.topics = topics

    async def intents(self, signal_id: str, intents: list[OrderIntent]) -> None:
        for partition, batch in batch_intents(signal_id, intents).items():
            await self.topics.intents.send(key=batch.batch_id, value=batch, partition=partition)

    async def execution(self, execution: Execution) -> None:
        await self.executions([execution])

    async def executions(self, executions: list[Execution]) -> None:
        """One record per partition (see :class:`ExecutionBatch`), keyed by its first account."""
        for partition, batch in batch_executions(executions):
            await self.topics.executions.send(key=batch.executions[0].account_id, value=batch, partition=partition)

    async def error(self, error: OrderError) -> None:
        await self.topics.errors.send(key=error.account_id, value=error)

    async def errors(self, errors: list[OrderError]) -> None:
        """One record per partition (see :class:`ErrorBatch`), keyed by its first account; a
        lone error goes bare, as it always did."""
        if len(errors) == 1:
            await self.error(errors[0])
            return
        for partition, batch in batch_errors(errors):
            await self.topics.errors.send(key=batch.errors[0].account_id, value=batch, partition=partition)

    async def position(self, position: Position) -> None:
        await self.positions([position])

    async def positions(self, positions: list[Position]) -> None:
        """One record per partition (see :class:`PositionBatch`), keyed by its first account."""
        for partition, batch in batch_positions(positions):
            await self.topics.positions.send(key=batch.positions[0].account_id, value=batch, partition=partition)

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

    async def intents(self, signal_id: str, intents: list[OrderIntent]) -> None:
        self.sent["intent"].extend(intents)

    async def execution(self, execution: Execution) -> None:
        self.sent["execution"].append(execution)

    async def executions(self, executions: list[Execution]) -> None:
        for execution in executions:
            await self.execution(execution)  # one at a time, so a test's override sees each

    async def error(self, error: OrderError) -> None:
        self.sent["error"].append(error)

    async def errors(self, errors: list[OrderError]) -> None:
        for error in errors:
            await self.error(error)  # one at a time, so a test's override sees each

    async def position(self, position: Position) -> None:
        self.sent["position"].append(position)

    async def positions(self, positions: list[Position]) -> None:
        for position in positions:
            await self.position(position)

    async def status(self, status: AccountStatus) -> None:
        self.sent["status"].append(status)

    async def health(self, status: AccountStatus) -> None:
        self.sent["health"].append(status)

    async def signal(self, key: str, payload: bytes) -> None:
        self.sent["signal"].append((key, payload))
