"""Installs the protective-stop watcher (``protective.py``) in an executor: its deadlines from
the copy groups, its look at the broker through the session pool, its orders through the
follower's lane and its reports on ``order.errors``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ...brokers.base import BrokerAdapter
from ...brokers.model import ConnectionState, OrderType
from ...core.config import CopyConfig
from ...core.records import Execution, OrderError, OrderIntent
from ..shared.context import StageContext
from ..shared.sessions import SessionPool
from .guards import lane_owner
from .protective import ProtectiveStops, Submit, Verify
from .protective_orders import Truth, Unverifiable
from .router import AccountStats, OrderRouter

log = logging.getLogger(__name__)

STOP_ORDER_TYPES = frozenset({OrderType.STOP, OrderType.STOP_LIMIT})


def deadlines(config: CopyConfig) -> Callable[[str, str], float | None]:
    """(leader, follower) → the tightest ``protective_stop_s`` of the groups copying that leader
    to that follower (None: every such group turned the watch off). Built per leader on first
    use and again when a follower added at run time is not in it yet: no scan per copy."""
    by_leader: dict[str, dict[str, float | None]] = {}

    def build(leader: str) -> dict[str, float | None]:
        found: dict[str, float | None] = {}
        for group, follower in config.followers_by_leader.get(leader, ()):
            seconds = group.protective_stop_s
            known = found.get(follower.account_id, seconds)
            both = [s for s in (known, seconds) if s is not None]
            found[follower.account_id] = min(both) if both else None
        by_leader[leader] = found
        return found

    def deadline_for(leader: str, follower: str) -> float | None:
        found = by_leader.get(leader)
        if found is None or follower not in found:
            found = build(leader)
        return found.get(follower)

    return deadline_for


def broker_truth(pool: SessionPool, timeout_s: float) -> Verify:
    """How the watcher reads one follower's symbol at the broker: a snapshot through the
    session's circuit breaker, only on a session that is connected now (never a connect)."""

    async def verify(account_id: str, symbol: str) -> Truth:
        try:
            session_id = pool.session_id(account_id)
        except KeyError as exc:
            raise Unverifiable(str(exc)) from None
        adapter = pool.connected().get(session_id)
        if adapter is None or adapter.state is not ConnectionState.CONNECTED:
            raise Unverifiable(f"session {session_id} is not connected")
        try:
            snapshot = await asyncio.wait_for(pool.breaker(session_id).call(adapter.snapshot, account_id), timeout_s)
        except Exception as exc:  # noqa: BLE001 - any failure to read is "cannot tell", never "flat"
            raise Unverifiable(f"snapshot of {account_id} failed: {exc!r}") from None
        position = sum(p.net_quantity for p in snapshot.positions if p.symbol == symbol)
        stops = tuple(
            (order.client_order_id, order.side.sign)
            for order in snapshot.open_orders
            if order.symbol == symbol and order.order_type in STOP_ORDER_TYPES and not order.status.is_final
        )
        return Truth(position, stops)

    return verify


def install(ctx: StageContext, router: OrderRouter, submit: Submit) -> ProtectiveStops:
    """The watcher on the router's hooks (outcomes chained after the existing observer,
    broker events) and on session (re)connects; acting only for lanes this worker owns."""

    async def report(error: OrderError) -> None:
        """On ``order.errors``, and as the account's last error on the dashboard."""
        router.stats.setdefault(error.account_id, AccountStats()).last_error = f"{error.code}: {error.reason}"
        await router.outbox.error(error)

    watcher = ProtectiveStops(
        deadlines(ctx.config),
        broker_truth(ctx.pool, timeout_s=ctx.settings.copy_deadline_s),
        submit,
        report,
        clock=time.monotonic,
        call_later=lambda delay, callback: asyncio.get_running_loop().call_later(delay, callback),
    )
    watcher.owns = lane_owner(ctx)
    observed = router.on_outcome

    def on_outcome(intent: OrderIntent, outcome: Execution | OrderError) -> None:
        if observed is not None:
            observed(intent, outcome)
        try:
            watcher.on_outcome(intent, outcome)
        except Exception:  # noqa: BLE001 - a watcher bug must never stop a lane
            log.exception("protective stops: outcome of %s not taken in", intent.client_order_id)

    def on_event(event: object) -> None:
        try:
            watcher.on_event(event)
        except Exception:  # noqa: BLE001 - a watcher bug must never stop the fill pump
            log.exception("protective stops: event not taken in: %r", event)

    router.on_outcome = on_outcome
    router.on_event = on_event
    previous = ctx.pool.on_connected

    def connected(session_id: str, adapter: BrokerAdapter) -> None:
        if previous is not None:
            previous(session_id, adapter)
        accounts = {a for a, account in ctx.config.accounts.items() if account.session_id == session_id}
        watcher.on_session_connected(accounts)

    ctx.pool.on_connected = connected
    ctx.shutdown_hooks.append(watcher.close)  # before the executor closes its lanes and sessions
    return watcher
