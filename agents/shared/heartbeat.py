"""Heartbeat: each worker says it is alive on ``system.heartbeat`` once per interval."""

from __future__ import annotations

import itertools
import os
import socket
from collections.abc import Callable

import faust

from ...core.records import Heartbeat
from . import jobs
from .context import StageContext


def install(app: faust.App, ctx: StageContext, assigned_partitions: Callable[[], int]) -> None:
    """Every worker: one heartbeat per interval, with its roles and how many partitions it holds."""
    runtime = ctx
    worker_id = f"{socket.gethostname()}:{os.getpid()}:{runtime.settings.app_id}"
    sequence = itertools.count(1)

    @jobs.timer(app, runtime.settings.heartbeat_interval_s)
    async def heartbeat() -> None:
        beat = Heartbeat(
            worker_id=worker_id,
            sequence=next(sequence),
            roles=list(runtime.settings.roles),
            assigned_partitions=assigned_partitions(),
        )
        await runtime.topics.heartbeat.send(key=worker_id, value=beat)
