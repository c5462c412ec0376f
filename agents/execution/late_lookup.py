"""Unknown outcomes are looked up again later, off the lane, and the answer is reported.

Why: a copy whose outcome is unknown at its deadline (every answer lost, the broker slow under
load) is reported ``OUTCOME_UNKNOWN`` at once, and never placed again: a copy seconds late is
worse than a reported failure, and a blind resend can double it. But the broker usually knows
a moment later. So the order is asked for a few more times in the background; when the broker
holds it, its ack follows the unknown report (same ``<client id>|ack`` record id as any ack),
and the journal says done. Nothing is ever placed from here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from ...brokers.deadline import copy_deadline
from ...brokers.model import CancelOrder, OrderStatus
from ...core.records import OrderIntent, stamp
from .netting import journal_signal

if TYPE_CHECKING:
    from .router import OrderRouter

log = logging.getLogger(__name__)


class LateLookups:
    """Background lookups of the router's unknown outcomes (``delays_s`` between tries)."""

    def __init__(self, router: OrderRouter, delays_s: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)) -> None:
        self.router = router
        self.delays_s = delays_s
        self._tasks: set[asyncio.Task[None]] = set()
        self.resolved = 0

    def watch(self, intent: OrderIntent) -> asyncio.Task[None] | None:
        """Look ``intent`` up in the background; the task ends when settled or given up.

        The lane holds the intent's Kafka offset until then: a crash meanwhile redelivers it,
        and the restarted executor looks it up again instead of losing the question.
        """
        if intent.action == "modify" or not self.delays_s:
            return None  # a modify leaves no trace of its own to look for
        task = asyncio.ensure_future(self._resolve(intent))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _resolve(self, intent: OrderIntent) -> None:
        from .router import _lookup_for, to_command  # the router's own lookup rules

        router = self.router
        for delay in self.delays_s:
            await asyncio.sleep(delay)
            try:
                adapter = await router.pool.adapter_for(intent.account_id)
                breaker = router.pool.breaker(adapter.config.session_id)
                lookup = _lookup_for(adapter, breaker, to_command(intent))
                if lookup is None:
                    return
                with copy_deadline(router.deadline_s):
                    found = await lookup()
            except Exception as exc:  # noqa: BLE001 - still cannot tell: try again later
                log.info("late lookup of %s: %r", intent.client_order_id, exc)
                continue
            if found is None:
                if not isinstance(to_command(intent), CancelOrder):
                    log.warning("copy %s: the broker holds no order; it stays reported unknown", intent.client_order_id)
                    return
                continue  # a cancel not done yet: maybe later
            if found.status is OrderStatus.REJECTED:
                return
            self.resolved += 1
            log.warning("copy %s reported unknown is at the broker: %s", intent.client_order_id, found.broker_order_id)
            if router.journal is not None:
                router.journal.finish(
                    intent.client_order_id, _kind(intent), found.broker_order_id, signal_id=journal_signal(intent)
                )
            stamps = stamp(intent.stamps, "sent")
            await router.report_ack(intent, found.broker_order_id, False, {**stamps, "acked": time.time()})
            return

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _kind(intent: OrderIntent) -> str:
    return {"place": "ack", "cancel": "cancelled", "flatten": "flattened"}.get(intent.action, "ack")


__all__ = ["LateLookups"]
