"""Role ``track`` also notifies: ``order.errors`` and ``account.status`` → outgoing webhooks.

Installed only when the config names targets. The agents read with the ``track`` workers'
consumer group, so with several trackers each record is announced once. Pause-all (the kill
switch) is read from ``copy.controls`` after its replay, so a restart does not announce it again.
Nothing here is on the copy path: the records are read after they were published, and the
agents only queue (``TargetSender.offer``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import aiohttp
import faust

from ...core.control_records import ALL_ACCOUNTS, ControlCommand
from ...core.records import AccountStatus, errors_of
from ..shared import jobs
from ..shared.context import StageContext
from ..shared.controls_feed import Command, worker_feed
from .notices import ConnectionWatch, Notice, from_error, kill_switch
from .sender import TargetSender

log = logging.getLogger(__name__)


@dataclass(slots=True)
class NotifyStage:
    senders: list[TargetSender]
    watch: ConnectionWatch = field(default_factory=ConnectionWatch)
    http: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self.http is None or self.http.closed:
            self.http = aiohttp.ClientSession()
        return self.http

    def announce(self, notice: Notice | None) -> None:
        if notice is None:
            return
        for sender in self.senders:
            sender.offer(notice)

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()


def install(app: faust.App, ctx: StageContext) -> NotifyStage | None:
    targets = ctx.config.notifications
    if not targets:
        return None
    stage = NotifyStage(senders=[])
    stage.senders.extend(TargetSender(t, stage.session) for t in targets)
    ctx.shutdown_hooks.append(stage.close)

    # Raw bytes: ``order.errors`` carries batches (``ErrorBatch``) and bare errors alike, and an
    # unreadable record is skipped here instead of ending the agent in Faust's decoder.
    errors = app.topic(ctx.topics.errors.get_topic_name(), key_type=str, value_serializer="raw", internal=False)

    @app.agent(errors, name="notify-errors")
    async def notify_errors(stream: faust.StreamT[bytes]) -> None:
        async for raw in stream:
            try:
                carried = errors_of(raw)
            except ValueError as exc:
                log.warning("notify: unreadable order.errors record skipped (%s)", exc)
                continue
            for error in carried:
                stage.announce(from_error(error))

    @app.agent(ctx.topics.status, name="notify-status")
    async def notify_status(stream: faust.StreamT[AccountStatus]) -> None:
        async for status in stream:
            stage.announce(stage.watch.see(status))

    paused_all: list[bool] = []

    def on_control(command: Command) -> None:
        if not isinstance(command, ControlCommand) or command.account_id != ALL_ACCOUNTS:
            return
        changed = not paused_all or paused_all[-1] != command.paused
        paused_all[:] = [command.paused]
        if changed and feed.caught_up.is_set():
            stage.announce(kill_switch(command.paused, command.by))

    feed = worker_feed(app, ctx).subscribe(on_control)

    @jobs.task(app)
    async def deliver_notifications() -> None:
        await asyncio.gather(*(sender.run() for sender in stage.senders))

    log.info("notifications to %s", ", ".join(f"{t.target_id} ({t.kind})" for t in targets))
    return stage
