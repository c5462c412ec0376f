"""Topic layout: names, partition counts and keys, declared in one place.

Public topics follow the design (key = account_id except ``trade.signals``, keyed by symbol).
Internal topics: ``orders.requests`` carries OrderIntents to the executor (key = account_id,
so each account's orders stay in order while accounts run in parallel) and ``broker.health``
carries session health to the tracker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import faust
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import murmur2

from .records import AccountStatus, ExecutionBatch, Heartbeat, IntentBatch, OrderError, PositionBatch

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    key: str
    config: tuple[tuple[str, str], ...] = ()  # topic configs set at creation (e.g. compaction)


TOPIC_SPECS: tuple[TopicSpec, ...] = (
    TopicSpec("trade.signals", 3, "symbol"),
    # Broker-stamped record times: the executor splits the intent hop into produce
    # (planned → appended) and fetch (appended → received).
    TopicSpec(
        "orders.requests",
        10,
        "account_id (batches placed by murmur2 of it)",
        (("message.timestamp.type", "LogAppendTime"),),
    ),
    TopicSpec("trade.executions", 10, "account_id (batches of one partition's accounts, placed by murmur2 of it)"),
    TopicSpec("positions.updates", 10, "account_id (batches of one partition's accounts, placed by murmur2 of it)"),
    TopicSpec("account.status", 20, "account_id"),
    TopicSpec("broker.health", 20, "account_id"),
    TopicSpec("order.errors", 5, "account_id"),
    TopicSpec("system.heartbeat", 1, "worker_id"),
    # Dashboard controls (pause/resume): state, not events, keyed by account id ("*" = all
    # copying), compacted so a worker starting later replays the current state, not history.
    TopicSpec("copy.controls", 1, "account_id or *", (("cleanup.policy", "compact"),)),
    # The leaders' broker-side state for reconciliation (agents/reconcile): the latest per leader.
    TopicSpec("leader.snapshots", 1, "leader account_id", (("cleanup.policy", "compact"),)),
)
SPEC = {spec.name: spec for spec in TOPIC_SPECS}


@dataclass(frozen=True, slots=True)
class Topics:
    """The app's topic objects; ``signals`` is raw bytes so malformed input reaches our code."""

    signals: faust.TopicT
    intents: faust.TopicT
    executions: faust.TopicT
    positions: faust.TopicT
    status: faust.TopicT
    health: faust.TopicT
    errors: faust.TopicT
    heartbeat: faust.TopicT


def partition_for(key: str, partitions: int) -> int:
    """Kafka's default partitioner (murmur2), so explicit placement matches keyed placement."""
    digest: int = murmur2(key.encode())  # aiokafka's partitioner is untyped
    return (digest & 0x7FFFFFFF) % partitions


def topic_name(prefix: str, name: str) -> str:
    return f"{prefix}{name}"


def declare_topics(app: faust.App, prefix: str = "") -> Topics:
    def topic(name: str, value_type: type | None, value_serializer: str | None = None) -> faust.TopicT:
        spec = SPEC[name]
        return app.topic(
            topic_name(prefix, name),
            partitions=spec.partitions,
            key_type=str,
            value_type=value_type,
            value_serializer=value_serializer,
            internal=False,
        )

    return Topics(
        signals=topic("trade.signals", None, value_serializer="raw"),
        intents=topic("orders.requests", IntentBatch),
        executions=topic("trade.executions", ExecutionBatch),
        positions=topic("positions.updates", PositionBatch),
        status=topic("account.status", AccountStatus),
        health=topic("broker.health", AccountStatus),
        errors=topic("order.errors", OrderError),
        heartbeat=topic("system.heartbeat", Heartbeat),
    )


async def ensure_topics(
    bootstrap_servers: str, prefix: str = "", extra: Sequence[tuple[str, int, dict[str, str]]] = ()
) -> list[str]:
    """Create every topic with its partition count (idempotent); returns the names created.

    Done explicitly at start-up because a topic that is only produced to would otherwise be
    auto-created by the broker with its default of one partition. ``extra`` adds full topic
    names (a worker's table changelogs) as ``(name, partitions, config)``.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                topic_name(prefix, s.name),
                num_partitions=s.partitions,
                replication_factor=1,
                topic_configs=dict(s.config) or None,
            )
            for s in TOPIC_SPECS
            if topic_name(prefix, s.name) not in existing
        ] + [
            NewTopic(name, num_partitions=partitions, replication_factor=1, topic_configs=dict(config) or None)
            for name, partitions, config in extra
            if name not in existing
        ]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                log.debug("topics created concurrently by another worker")
            await leaders_known(admin, [t.name for t in missing])
        return [t.name for t in missing]
    finally:
        await admin.close()


async def leaders_known(admin: AIOKafkaAdminClient, names: Sequence[str], timeout_s: float = 10.0) -> bool:
    """Until the broker's metadata names a leader for every partition of ``names`` (topics just
    created), or ``timeout_s``; whether it did.

    Why: a client that asks before that only retries, but aiokafka logs each retry ("Topic …
    not found in cluster metadata", "Failed fetch offsets … NotLeaderForPartitionError") at
    warning and error level: a new user's demo on a broker started seconds before printed
    about ten such lines. A timeout is not an error; the clients' own retries still work.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        described = await admin.describe_topics(list(names))
        if len(described) == len(names) and all(
            t.get("error_code") == 0 and t.get("partitions") and all(p.get("leader", -1) >= 0 for p in t["partitions"])
            for t in described
        ):
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)


async def delete_run_topics(bootstrap_servers: str, prefix: str) -> list[str]:
    """Delete a run's topics: those under ``prefix`` and those Faust made under the run's app
    ids (``<prefix without its dot>-<worker>-...``: changelogs, the assignor's topic); nobody
    else's, not even a run whose prefix merely starts the same way. Returns the names deleted
    (a demo, a bench, a chaos run and the cost scripts clean up this way)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        apps = prefix.rstrip(".") + "-"
        mine = [t for t in await admin.list_topics() if t.startswith(prefix) or t.startswith(apps)]
        if mine:
            await admin.delete_topics(mine)
        return mine
    finally:
        await admin.close()
