"""Reconciliation as its own stage: the leader side in ingest workers, the follower side in
executor workers (``docs/architecture.md``, "Reconciliation").

Wired by ``app/factory.py`` after the ingest and execution stages, whose objects it is handed
(a stage never imports another stage): the session pool's connect hook and the router's
outcome hook are chained, never replaced.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import faust

from ...brokers.base import BrokerAdapter
from ...core.control_records import ALL_ACCOUNTS, ReconcileCommand
from ...core.reconcile import BrokerState, leader_report
from ...core.records import Execution, OrderError, OrderIntent
from ...core.topics import SPEC, partition_for, topic_name
from ..shared import jobs
from ..shared.context import StageContext
from ..shared.controls_feed import Command, ControlsFeed, worker_feed
from ..shared.health_reports import session_status
from .feed import TOPIC, LeaderSnapshotFeed
from .follower import FollowerReconciler
from .leader import LeaderSnapshots

log = logging.getLogger(__name__)
Outcome = Callable[[OrderIntent, Execution | OrderError], None]
INTENT_PARTITIONS = SPEC["orders.requests"].partitions


class HasOutcomes(Protocol):
    on_outcome: Outcome | None


@dataclass(slots=True)
class ReconcileStage:
    controls: ControlsFeed | None = None
    leaders: LeaderSnapshots | None = None
    followers: FollowerReconciler | None = None


def owned_by(ctx: StageContext) -> Callable[[str], bool]:
    """An account is reconciled by the executor that owns its ``orders.requests`` partition
    (two executors must not both correct it). Without partition information (the Faust
    consumer) every account counts as owned."""
    intents = topic_name(ctx.settings.topic_prefix, "orders.requests")

    def owns(account_id: str) -> bool:
        if not ctx.assignments:
            return True
        mine = {tp.partition for assignment in ctx.assignments for tp in assignment() if tp.topic == intents}
        return partition_for(account_id, INTENT_PARTITIONS) in mine

    return owns


def chain_connected(ctx: StageContext, also: Callable[[str, BrokerAdapter], None]) -> None:
    before = ctx.pool.on_connected

    def connected(session_id: str, adapter: BrokerAdapter) -> None:
        if before is not None:
            before(session_id, adapter)
        also(session_id, adapter)

    ctx.pool.on_connected = connected


def chain_outcomes(router: HasOutcomes, also: Outcome) -> None:
    before = router.on_outcome

    def outcome(intent: OrderIntent, result: Execution | OrderError) -> None:
        if before is not None:
            before(intent, result)
        also(intent, result)

    router.on_outcome = outcome


def install(app: faust.App, ctx: StageContext, *, leaders: bool, router: HasOutcomes | None = None) -> ReconcileStage:
    """``leaders``: this worker ingests (publish leader snapshots); ``router``: this worker
    executes (reconcile its followers, hearing of every copy outcome through the router)."""
    settings = ctx.config.reconcile
    if not settings.enabled:
        log.info("reconciliation disabled (reconcile.enabled: false)")
        return ReconcileStage()
    publisher: LeaderSnapshots | None = None
    reconciler: FollowerReconciler | None = None
    if leaders:
        snapshots_topic = app.topic(
            topic_name(ctx.settings.topic_prefix, TOPIC),
            key_type=None,
            value_type=None,
            key_serializer="raw",
            value_serializer="raw",
            internal=False,
        )

        async def publish(leader: str, value: bytes) -> None:
            await snapshots_topic.send(key=leader.encode(), value=value)

        publisher = LeaderSnapshots(ctx.config.leaders(), ctx.pool.adapter_for, publish, settings)

        async def leader_truth(state: BrokerState) -> None:
            if state.account_id in ctx.config.accounts:
                status = session_status(ctx, state.account_id)
                status.reconciliation = leader_report(state)
                await ctx.outbox.status(status)

        publisher.on_state = leader_truth
    if router is not None:
        reconciler = FollowerReconciler(ctx, settings, owned_by(ctx))
        chain_connected(ctx, reconciler.on_session)
        chain_outcomes(router, reconciler.on_outcome)

    def apply(command: Command) -> None:
        live = feed.caught_up.is_set() or _recent(command)
        if reconciler is not None:
            reconciler.live = live
            reconciler.on_command(command)
        if publisher is not None and live:
            _leader_request(publisher, ctx, command)

    feed = worker_feed(app, ctx).subscribe(apply)
    stage = ReconcileStage(feed, publisher, reconciler)

    if publisher is not None:
        leader_side = publisher

        @jobs.task(app)
        async def publish_leader_snapshots() -> None:
            await leader_side.run()

    if reconciler is not None:
        follower_side = reconciler
        snapshots = LeaderSnapshotFeed(
            ctx.settings.bootstrap_servers, ctx.settings.topic_prefix, follower_side.on_leader_snapshot
        )

        @jobs.task(app)
        async def follow_leader_snapshots() -> None:
            await snapshots.run()

        @jobs.timer(app, settings.interval_s)
        async def reconcile_overdue_followers() -> None:
            await follower_side.overdue()

        ctx.shutdown_hooks.insert(0, follower_side.close)
    return stage


#: A request this recent is answered even when it is part of the replay at start (it was sent
#: while this worker was starting); older ones are history.
RECENT_REQUEST_S = 30.0


def _recent(command: Command) -> bool:
    return isinstance(command, ReconcileCommand) and time.time() - command.at < RECENT_REQUEST_S


def _leader_request(publisher: LeaderSnapshots, ctx: StageContext, command: Command) -> None:
    """A reconcile request: fresh snapshots of the leaders concerned (all, or the leaders of
    the one follower asked for), so the reconcilers compare against the leader's state now."""
    if not isinstance(command, ReconcileCommand):
        return
    if command.account_id == ALL_ACCOUNTS:
        wanted = publisher.leaders
    else:
        wanted = sorted(
            {
                leader
                for leader, members in ctx.config.followers_by_leader.items()
                for _group, follower in members
                if follower.account_id == command.account_id or leader == command.account_id
            }
            & set(publisher.leaders)
        )
    if wanted:
        publisher.request(wanted)
