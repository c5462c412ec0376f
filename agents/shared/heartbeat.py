"""Heartbeat: each worker says it is alive on ``system.heartbeat`` once per interval."""

from __future__ import annotations

import itertools
import os
import socket
from typing import TYPE_CHECKING

from ...core.records import Heartbeat

if TYPE_CHECKING:
    from ...app.factory import CopyTraderApp


def install(app: "CopyTraderApp") -> None:
    runtime = app.runtime
    worker_id = f"{socket.gethostname()}:{os.getpid()}:{runtime.settings.app_id}"
    sequence = itertools.count(1)

    @app.timer(runtime.settings.heartbeat_interval_s)
    async def heartbeat() -> None:
        beat = Heartbeat(
            worker_id=worker_id, sequence=next(sequence), roles=list(runtime.settings.roles),
            assigned_partitions=app.assigned_partitions(),
        )
        await runtime.topics.heartbeat.send(key=worker_id, value=beat)
