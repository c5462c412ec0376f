"""Runs a LeaderWatcher for every leader account this worker is configured to watch, and reports
the leaders' session health."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import faust

from ..shared import jobs
from ..shared.context import StageContext
from ..shared.health_reports import HealthReports, session_status
from .watchers import LeaderWatcher

log = logging.getLogger(__name__)


@dataclass(slots=True)
class IngestStage:
    """The worker's leader watchers; ``ready`` is set once every leader session was tried
    (a harness waits for it before the leader trades, so no first event is missed)."""

    watchers: list[LeaderWatcher] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)


def install(app: faust.App, ctx: StageContext) -> IngestStage:
    """Role ``ingest``: connect the leaders' sessions and publish what they do."""
    stage = IngestStage()

    @jobs.task(app)
    async def watch_leaders() -> None:
        leaders = ctx.config.leaders()
        await ctx.pool.connect_all(leaders)
        for leader in leaders:
            try:
                adapter = await ctx.pool.adapter_for(leader)
            except Exception as exc:  # noqa: BLE001 - one dead leader session must not stop the others
                log.error("leader %s: no session: %r", leader, exc)
                continue
            stage.watchers.append(LeaderWatcher(adapter, leader, ctx.outbox))
        stage.ready.set()
        await asyncio.gather(*(w.run() for w in stage.watchers))

    reported = HealthReports()

    @jobs.timer(app, ctx.settings.status_interval_s)
    async def report_leader_health() -> None:
        await report_leaders(ctx, reported)

    return stage


async def report_leaders(ctx: StageContext, reported: HealthReports) -> int:
    """The leaders' sessions on the dashboard too: a leader whose session dropped copies
    nothing, and the trader must see that before placing the next trade. Returns how many
    statuses were sent (the changed ones, or all on a full round)."""
    full = reported.next_round()
    sent = 0
    for leader in ctx.config.leaders():
        if leader not in ctx.config.accounts:
            continue
        status = session_status(ctx, leader)
        if reported.changed(status) or full:
            await ctx.outbox.health(status)
            sent += 1
    return sent
