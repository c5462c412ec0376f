"""Fan-out: ``trade.signals`` → one OrderIntent per follower on ``orders.requests``.

Two interchangeable consumers feed :func:`handle_signal` (``COPYTRADER_FANOUT_CONSUMER``):
``direct``, a plain aiokafka consumer in the worker's loop that commits a signal's offset only
once Kafka acknowledged what it produced (``signal_consumer.py``, the default), or ``faust``,
the Faust agent. Either way the topic is consumed as raw bytes so a malformed signal reaches
our code and lands on ``order.errors`` with its reason, instead of dying in a deserializer.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

import faust

from ...core import metrics
from ...core.records import OrderError
from ...core.signals import decode_signal
from ..shared import jobs
from ..shared.aiokafka_internals import producer_holds_records
from ..shared.context import StageContext
from ..shared.controls_feed import ControlsFeed
from . import controls
from .planner import Controls, FanoutPlanner
from .signal_consumer import DirectSignalConsumer

log = logging.getLogger(__name__)
MAX_PAYLOAD_ECHO = 2000


@dataclass(slots=True)
class FanoutStage:
    """What the fan-out stage of one worker owns: its planner and the controls feed that
    keeps the planner's switches, rules and followers current."""

    ctx: StageContext
    planner: FanoutPlanner
    controls_feed: ControlsFeed | None = None
    signal_consumer: DirectSignalConsumer | None = None  # the direct consumer, for the warm-up


async def handle_signal(stage: FanoutStage, payload: bytes) -> int:
    """Plan and publish one signal; returns the number of intents sent."""
    outbox = stage.ctx.outbox
    try:
        signal = decode_signal(payload)
    except ValueError as exc:
        metrics.count_signal("unknown", "malformed")
        digest = hashlib.blake2b(payload or b"", digest_size=8).hexdigest()
        await outbox.error(
            OrderError(
                error_id=f"malformed|{digest}",
                stage="ingest",
                reason=f"malformed signal: {exc}",
                code="MALFORMED",
                payload=(payload or b"")[:MAX_PAYLOAD_ECHO].decode("utf-8", "replace"),
            )
        )
        return 0
    if "detected" not in signal.stamps:  # sent by an outside producer (CLI, a script): seen now
        now = time.time()
        signal.stamps = {**signal.stamps, "detected": now, "published": signal.stamps.get("published", now)}
    try:
        intents, errors = stage.planner.plan(signal)
    except Exception as exc:  # noqa: BLE001 - one signal must never stop the copying of the next
        log.exception("fan-out of signal %s failed", signal.signal_id)
        metrics.count_signal(signal.kind, "not_copied")
        await outbox.error(
            OrderError(
                error_id=f"{signal.signal_id}|fanout",
                stage="fanout",
                signal_id=signal.signal_id,
                reason=f"fan-out failed: {type(exc).__name__}: {exc}"[:500],
                code="INTERNAL",
            )
        )
        return 0
    if intents:
        await outbox.intents(signal.signal_id, intents)
    for error in errors:
        await outbox.error(error)
    metrics.count_signal(signal.kind, "copied" if intents else "not_copied")
    if "detected" in signal.stamps and intents:
        metrics.observe_stage(
            "fanout", intents[0].stamps["fanned_out"] - signal.stamps.get("published", signal.stamps["detected"])
        )
    return len(intents)


def install_direct_consumer(app: faust.App, stage: FanoutStage) -> None:
    """Consume ``trade.signals`` with :class:`DirectSignalConsumer` in this worker's loop."""
    ctx = stage.ctx
    settings = ctx.settings
    consumer = DirectSignalConsumer(
        ctx.topics.signals.get_topic_name(),
        settings.bootstrap_servers,
        group_id=f"{settings.app_id}.fanout",
        handle=lambda payload: handle_signal(stage, payload),
        # The configured groups first (a fan-out given an app id of its own), then the Faust
        # agent's group (the app id), when switching over: no replay of trade.signals.
        adopt_offsets_from=(*settings.adopt_offsets_from, settings.app_id),
        fetch_max_wait_ms=settings.signal_fetch_wait_ms,
        session_timeout_ms=int(app.conf.broker_session_timeout * 1000),
        heartbeat_interval_ms=int(app.conf.broker_heartbeat_interval * 1000),
        records_waiting=lambda: producer_holds_records(app.producer),
    )
    ctx.assignments.append(consumer.assignment)
    ctx.lags.append(consumer.lags)
    ctx.busy.append(consumer.busy)
    stage.signal_consumer = consumer

    @jobs.task(app)
    async def start_signal_consumer() -> None:
        await consumer.start()

    # First among the hooks, while the producer still runs: the records already sent are
    # acknowledged, then their signals' offsets committed.
    ctx.shutdown_hooks.insert(0, consumer.stop)


def install(app: faust.App, ctx: StageContext) -> FanoutStage:
    """Role ``fanout``: the planner, its consumer of ``trade.signals`` and the controls it follows."""
    stage = FanoutStage(ctx, FanoutPlanner(ctx.config, Controls(), ctx.quotes))
    stage.controls_feed = controls.install(app, ctx, stage.planner)  # pause/resume, rules, accounts
    if ctx.settings.fanout_consumer != "faust":
        install_direct_consumer(app, stage)
        return stage

    @app.agent(ctx.topics.signals, name="fanout")
    async def fanout(stream: faust.StreamT[bytes]) -> None:
        """Signals → one intent batch per orders.requests partition (or a refusal on order.errors)."""
        async for payload in stream:
            await handle_signal(stage, payload)

    return stage
