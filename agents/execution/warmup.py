"""The executor's part of the warm-up (``agents/shared/warmup.py``), run before the worker says
it is ready: its intent consumer holds a fetch position on every partition it was assigned, and
each account it will serve has its lane, metric series and journal reads ready.

Why: right after assignment aiokafka still has to look up each partition's committed offset
(and reset it when the group has none) before its first fetch; a signal arriving then waits
for those round trips on top of its own fetch. And the first signal's copies took about twice
as long through their lanes as later ones (docs/benchmarks.md, "First signal"): each account's
first intent started its lane (a queue and a task), created the order counter and broker-call
histogram children of its platform, and compiled the journal's read for its group size; the
first outcome started the publisher's task.

Nothing here reaches a broker, writes a journal row or sends a record: lanes start empty and
wait for intents, metric children start at zero, the journal's reads ask for ids no intent has,
and the publisher runs one step that publishes nothing.
"""

from __future__ import annotations

from ...core import metrics
from ...core.records import INTENT_ACTIONS
from ...core.topics import SPEC, partition_for
from ..shared.warmup import Warmup, wait_for
from .agent import ExecutionStage
from .intent_consumer import DirectIntentConsumer

#: The outcomes every copy counts into (``agent.observe_outcome``), created per platform.
WARM_OUTCOMES = ("placed", "duplicate", "rejected")
INTENT_PARTITIONS = SPEC["orders.requests"].partitions


async def warm_positions(consumer: DirectIntentConsumer) -> int:
    """Wait for the consumer's first assignment, then resolve the fetch position of each of
    its partitions; returns how many (bounded by the warm-up's timeout)."""
    await wait_for("orders.requests assigned", lambda: bool(consumer.assignment()))
    assigned = sorted(consumer.assignment())
    for tp in assigned:
        await consumer.consumer.position(tp)
    return len(assigned)


def served_accounts(stage: ExecutionStage) -> list[str]:
    """The followers whose intents this executor will take: those on its assigned
    ``orders.requests`` partitions (the direct consumer's), else every follower (the Faust
    consumer's assignment is Faust's own)."""
    followers = stage.ctx.config.follower_accounts()
    consumer = stage.intent_consumer
    if consumer is None:
        return followers
    assigned = {tp.partition for tp in consumer.assignment()}
    return [account for account in followers if partition_for(account, INTENT_PARTITIONS) in assigned]


async def warm_lanes(stage: ExecutionStage, accounts: list[str] | None = None) -> int:
    """Start the lane of every account served, create its platform's metric children and
    compile the journal's reads for groups up to that many intents; returns the lanes opened.

    A lane is what an account's first intent would start anyway; it waits on its empty queue.
    """
    served = served_accounts(stage) if accounts is None else accounts
    for account_id in served:
        stage.lanes.open(account_id)
    known = stage.ctx.config.accounts
    for platform in sorted({known[a].platform for a in served if a in known}):
        for outcome in WARM_OUTCOMES:
            metrics.ORDERS_TOTAL.labels(platform, outcome)
        for action in INTENT_ACTIONS:
            metrics.BROKER_CALL_SECONDS.labels(platform, action)
    journal = stage.router.journal
    if journal is not None and served:
        journal.warm(len(served))
    # The outcome publisher's task starts on its first queued step: a step that sends nothing.
    stage.router.outbox.after(_nothing)
    await stage.router.outbox.drained()  # also lets the lanes' tasks start and wait on their queues
    return len(served)


async def _nothing() -> None:
    """The publisher's warm-up step: runs in its task, publishes no record."""


def install(warmup: Warmup, stage: ExecutionStage) -> None:
    """Add the executor's steps. The Faust-agent consumer (``COPYTRADER_EXECUTOR_CONSUMER=faust``)
    is Faust's own and is ready when Faust assigned it partitions; its lanes are warmed for
    every follower."""
    consumer = stage.intent_consumer
    if consumer is not None:
        warmup.add("execute: orders.requests positions", lambda: warm_positions(consumer))
    warmup.add("execute: lanes, metric series, journal reads", lambda: warm_lanes(stage))
    warmup.add_gate("execute: follower sessions opened or refused", stage.sessions_tried.is_set)


__all__ = ["INTENT_PARTITIONS", "WARM_OUTCOMES", "install", "served_accounts", "warm_lanes", "warm_positions"]
