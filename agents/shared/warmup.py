"""Warm-up before readiness: a worker says it is ready only once its first signal would be
copied as fast as later ones (issue #16 item 3).

Measured on the copy path (docs/benchmarks.md, "Cold start"): an aiokafka producer's first
send to a topic it has no metadata for waits for a metadata round trip (3–25 ms on the shared
machine, 0.5 ms for later sends), and the first encode or decode of each record type builds
Faust's field setup (a signal's first decode 1–5 ms against 0.1 ms). Each role adds the steps
it needs (``agents/<role>/warmup.py``); :class:`Warmup` runs them once at start, each attempt
within a time bound, and ``/readyz`` stays false until they all finished.

Nothing here writes a record: metadata, connections to the partition leaders, consumer
positions and in-memory encode/decode only, so no consumer ever sees a warm-up record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiokafka.structs import TopicPartition

from ...core.records import (
    AccountStatus,
    Execution,
    ExecutionBatch,
    Heartbeat,
    IntentBatch,
    OrderError,
    OrderIntent,
    Position,
    PositionBatch,
    TradeSignal,
    executions_of,
    positions_of,
)
from ...core.signals import decode_signal
from ...core.topics import Topics

log = logging.getLogger(__name__)

Step = Callable[[], Awaitable[object]]

#: One attempt's bound: a warm-up that cannot finish (Kafka away) reports why instead of hanging.
WARMUP_TIMEOUT_S = 30.0
#: Pause before the next attempt after a failed one.
RETRY_AFTER_S = 5.0


@dataclass(slots=True)
class Warmup:
    """The worker's warm-up steps and their state, read by ``/readyz``.

    ``state``: ``pending`` (not started), ``running``, ``done`` or ``failed`` (with ``error``,
    the reason). A failed attempt is retried after ``retry_after_s`` until one succeeds, so a
    worker started during a Kafka outage becomes ready once Kafka is back; the failure is
    logged once per episode, not per attempt.
    """

    timeout_s: float = WARMUP_TIMEOUT_S
    retry_after_s: float = RETRY_AFTER_S
    steps: list[tuple[str, Step]] = field(default_factory=list)
    state: str = "pending"
    error: str | None = None
    took_s: float | None = None
    attempts: int = 0
    #: The steps the last attempt finished, in order (``/readyz`` shows them).
    finished: list[str] = field(default_factory=list)
    #: Conditions that must hold too, for what starts outside the steps: the app's own start-up
    #: (its heap frozen, which is a full collection), the dashboard feed positioned, the
    #: database migrated. Without them a worker said ready up to half a second before its
    #: start-up was over, and that work landed on the first signals (#16 item 3).
    gates: list[tuple[str, Callable[[], bool]]] = field(default_factory=list)

    @property
    def done(self) -> bool:
        """Every step finished (the gates aside)."""
        return self.state == "done"

    @property
    def ready(self) -> bool:
        """Every step finished and every gate holds: what ``/readyz`` waits for."""
        return self.done and not self.waiting_for()

    def add(self, name: str, step: Step) -> None:
        """A step, run after those added before it (a role's steps in the order it needs them)."""
        self.steps.append((name, step))

    def add_gate(self, name: str, holds: Callable[[], bool]) -> None:
        """A condition ``/readyz`` waits for besides the steps (checked on every probe)."""
        self.gates.append((name, holds))

    def waiting_for(self) -> list[str]:
        """The gates that do not hold yet, by name."""
        return [name for name, holds in self.gates if not holds()]

    def status(self) -> dict[str, Any]:
        """What ``/readyz`` shows of the warm-up."""
        return {
            "state": self.state,
            "error": self.error,
            "took_s": self.took_s,
            "attempts": self.attempts,
            "steps": list(self.finished),
            "waiting_for": self.waiting_for(),
        }

    async def run_once(self) -> bool:
        """One attempt at every step within ``timeout_s``; True when all of them finished."""
        self.attempts += 1
        self.state = "running"
        started = time.monotonic()
        current = "start"
        self.finished = []
        try:
            async with asyncio.timeout(self.timeout_s):
                for name, step in self.steps:
                    current = name  # named in the reason if this step fails
                    await step()
                    self.finished.append(name)
        except TimeoutError:
            return self._failed(f"warm-up step {current!r} did not finish within {self.timeout_s:g} s")
        except Exception as exc:  # noqa: BLE001 - any failure is reported on /readyz, never raised into the worker
            return self._failed(f"warm-up step {current!r} failed: {type(exc).__name__}: {exc}"[:300])
        self.took_s = round(time.monotonic() - started, 3)
        if self.error is not None:
            log.warning("warm-up finished after an earlier failure (%s); ready", self.error)
        self.state, self.error = "done", None
        log.info("warm-up done in %.3f s (%s)", self.took_s, ", ".join(name for name, _ in self.steps))
        return True

    def _failed(self, reason: str) -> bool:
        if self.error is None:  # once per episode: the next attempts fail the same way, quietly
            log.error("%s; not ready, retrying every %g s", reason, self.retry_after_s)
        self.state, self.error = "failed", reason
        return False

    async def run(self) -> None:
        """Attempt until one succeeds (the worker's task; cancelled when the worker stops)."""
        while not await self.run_once():
            await asyncio.sleep(self.retry_after_s)


# -- steps every worker can use ------------------------------------------------------------
#: The topics each role produces to (``Topics`` fields): the ones whose first send must not
#: wait for metadata. Every worker also sends its heartbeat.
PRODUCED_BY_ROLE: dict[str, tuple[str, ...]] = {
    "ingest": ("signals", "health"),
    "fanout": ("intents", "errors"),
    "execute": ("executions", "errors", "health", "status"),
    "track": ("positions", "status"),
}


def produced_topics(topics: Topics, roles: Iterable[str]) -> list[str]:
    """Names of the topics a worker with ``roles`` produces to, heartbeat included, in order."""
    fields = ["heartbeat", *(name for role in roles for name in PRODUCED_BY_ROLE.get(role, ()))]
    return list(dict.fromkeys(getattr(topics, name).get_topic_name() for name in fields))


async def warm_producer(producer: Any, topics: Iterable[str]) -> None:
    """Metadata of every topic the worker produces to, and a connection to each partition's
    leader, on the aiokafka producer itself (its own client), without writing a record.

    The producer's first send to a topic missing from its metadata waits for a metadata
    request; ``partitions_for`` makes that request now. ``client.ready`` opens the connection
    a send to that leader would open (one broker here, several in a cluster).
    """
    client = producer.client
    leaders: set[int] = set()
    for topic in topics:
        for partition in sorted(await producer.partitions_for(topic)):
            leader = client.cluster.leader_for_partition(TopicPartition(topic, partition))
            if leader is not None and leader >= 0:
                leaders.add(leader)
    for node in sorted(leaders):
        if not await client.ready(node):
            raise ConnectionError(f"no connection to Kafka broker {node}")


def faust_producer(app: Any) -> Any:
    """The aiokafka producer inside Faust's producer service (started before the agents).

    Faust keeps it in ``_producer`` and offers no public accessor; the unit test of this
    module reads it from a real Faust app, so a Faust upgrade that renames it fails there.
    """
    producer = getattr(app.producer, "_producer", None)
    if producer is None:
        raise RuntimeError("Faust's producer has not started")
    return producer


async def wait_for(what: str, condition: Callable[[], bool], poll_s: float = 0.05) -> None:
    """Poll ``condition`` until it holds (bounded by the attempt's timeout)."""
    while not condition():
        await asyncio.sleep(poll_s)
    log.debug("warm-up: %s", what)


def sample_records() -> list[Any]:
    """One record of each type on the copy path, as the stages build them."""
    stamps = {"detected": 1.0, "published": 1.0, "fanned_out": 1.0}
    intent = OrderIntent(
        client_order_id="warmup-cid",
        signal_id="warmup",
        account_id="warmup-follower",
        platform="paper",
        leader_account="warmup-leader",
        action="place",
        symbol="ESZ6",
        side="buy",
        quantity=1,
        order_type="limit",
        limit_price=Decimal("1.25"),
        stamps=stamps,
    )
    execution = Execution(
        execution_id="warmup|f",
        account_id="warmup-follower",
        platform="paper",
        kind="ack",
        broker_order_id="warmup-order",
        signal_id="warmup",
        request_outcome=True,
        stamps=stamps,
    )
    position = Position(account_id="warmup-follower", symbol="ESZ6", net_quantity=1, average_price=Decimal("1.25"))
    return [
        TradeSignal(
            signal_id="warmup",
            leader_account="warmup-leader",
            platform="paper",
            symbol="ESZ6",
            side="buy",
            quantity=1,
            stamps=stamps,
        ),
        IntentBatch(batch_id="warmup|p0", intents=[intent]),
        execution,
        ExecutionBatch(executions=[execution]),
        OrderError(error_id="warmup|e", stage="fanout", reason="warm-up", account_id="warmup-follower"),
        position,
        PositionBatch(positions=[position]),
        AccountStatus(account_id="warmup-follower", platform="paper", connection="connected"),
        Heartbeat(worker_id="warmup", sequence=1, roles=["warmup"], assigned_partitions=0),
    ]


async def warm_codecs() -> None:
    """Encode and decode one record of each type (in memory): Faust builds each model's field
    setup on first use, on the copy path otherwise. A signal goes through our strict decoder,
    the batches of ``trade.executions`` and ``positions.updates`` through their consumers'."""
    for record in sample_records():
        payload = record.dumps()
        if isinstance(record, TradeSignal):
            decode_signal(payload)
        elif isinstance(record, ExecutionBatch):  # the batched topics' consumers read these
            executions_of(payload)
        elif isinstance(record, PositionBatch):
            positions_of(payload)
        else:
            type(record).loads(payload)


__all__ = [
    "PRODUCED_BY_ROLE",
    "Warmup",
    "faust_producer",
    "produced_topics",
    "sample_records",
    "wait_for",
    "warm_codecs",
    "warm_producer",
]
