"""Runs a LeaderWatcher for every leader account this worker is configured to watch."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from .watchers import LeaderWatcher

if TYPE_CHECKING:
    from ...app.factory import CopyTraderApp

log = logging.getLogger(__name__)


def install(app: "CopyTraderApp") -> None:
    runtime = app.runtime

    @app.task
    async def watch_leaders() -> None:
        leaders = runtime.config.leaders()
        await runtime.pool.connect_all(leaders)
        watchers = []
        for leader in leaders:
            try:
                adapter = await runtime.pool.adapter_for(leader)
            except Exception as exc:  # noqa: BLE001 - one dead leader session must not stop the others
                log.error("leader %s: no session: %r", leader, exc)
                continue
            watchers.append(LeaderWatcher(adapter, leader, runtime.outbox))
        runtime.extras["watchers"] = watchers
        runtime.extras["leaders_ready"].set()
        await asyncio.gather(*(w.run() for w in watchers))

    runtime.extras["leaders_ready"] = asyncio.Event()
