"""The dashboard's guard edits in a running executor: ``guards:<account>`` records on ``copy.controls``.

Why a feed of its own (as the reconcile and notify stages have): the executor's account feed
and its catch-up before an unknown account (``SessionPool.catch_up``) stay as they are, and the
topic is one small compacted partition, read from the beginning, so a restarted worker ends with
the latest rules of every account (the dashboard's override the YAML's, account by account).

A record takes effect at the account's next check: it replaces the rules in the account's
:class:`AccountGuard`, which keeps what it counted (positions, working orders, P&L, peak). An
account that becomes guarded gets the figures the guards' file saved for it, if any, and its
positions from the broker when its session is up (as at connect). A loss or drawdown rule on a
worker started without prices starts this worker's price feed here. The guards' file keeps the
latest record per account, so a restart checks its first copies against it (``guard_store.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import faust

from ...brokers.base import BrokerAdapter
from ...common.bounds import MAX_TEXT_LEN
from ...core.control_records import GuardsCommand
from ...core.guard_state import AccountGuard
from ...core.guards import build
from ...core.quotes import QuoteBook
from ..shared import price_feed
from ..shared.context import StageContext
from ..shared.controls_feed import Command, ControlsFeed, worker_feed
from .guard_store import GuardStore, SavedEdit

if TYPE_CHECKING:
    from .guards import ExecutorGuards

log = logging.getLogger(__name__)


async def seed_positions(adapter: BrokerAdapter, guard: AccountGuard) -> None:
    """The account's positions from the broker, unless this worker already counted fills for
    it (the fills are then the newer facts), and the working orders it has not seen sent.
    Orders without our client id are left out: their cancel could never be matched, so they
    would count against the account for ever."""
    try:
        snapshot = await adapter.snapshot(guard.account_id)
    except Exception as exc:  # noqa: BLE001 - seeding is best effort; fills still count
        log.warning("guards: no position snapshot for %s: %r", guard.account_id, exc)
        return
    if guard.fills_seen == 0:
        for position in snapshot.positions:
            guard.seed(position.symbol, position.net_quantity, position.average_price)
    for order in snapshot.open_orders:
        if order.client_order_id:
            guard.seed_working(
                order.client_order_id, order.symbol, order.side.value, order.quantity - order.filled_quantity
            )


class GuardEdits:
    """Applies ``guards`` records to the executor's guards (every other kind is ignored)."""

    def __init__(
        self,
        guards: ExecutorGuards,
        store: GuardStore | None = None,
        adapter_for: Callable[[str], BrokerAdapter | None] = lambda _account: None,
        start_prices: Callable[[], QuoteBook | None] = lambda: None,
    ) -> None:
        self.guards = guards
        self.store = store
        self.adapter_for = adapter_for
        self.start_prices = start_prices
        self.applied: dict[str, GuardsCommand] = {}
        self._seeding: set[asyncio.Future[None]] = set()

    def apply(self, command: Command) -> None:
        if not isinstance(command, GuardsCommand):
            return
        account_id = command.account_id
        rules = build(command.guards) if command.guards is not None else None
        if rules is not None and rules.needs_marks and self.guards.quotes is None:
            quotes = self.start_prices()
            if quotes is not None:
                self.guards.use_quotes(quotes)
            else:
                log.warning(
                    "guards of %s count unrealised P&L but this worker has no market_data: "
                    "entries with an open position are refused (GUARD_NO_MARK)",
                    account_id,
                )
        added = self.guards.set_rules(account_id, rules)
        if self.store is not None:
            self.store.remember(account_id, SavedEdit(command.guards, command.by[:MAX_TEXT_LEN], command.at))
        if added is not None:
            if self.store is not None:
                self.store.restore_one(added)
            adapter = self.adapter_for(account_id)
            if adapter is not None:
                task = asyncio.ensure_future(seed_positions(adapter, added))
                self._seeding.add(task)
                task.add_done_callback(self._seeding.discard)
        self.applied[account_id] = command
        in_force = self.guards.accounts.get(account_id)
        if self.store is not None and in_force is not None and self.store.acknowledged(in_force, command.at):
            log.warning("guards of %s: GUARD_STATE_LOST lifted by %s's edit", account_id, command.by)
        log.info(
            "guards of %s set by %s: %s",
            account_id,
            command.by,
            "; ".join(in_force.rules.describe()) if in_force is not None else "none",
        )

    async def settled(self) -> None:
        """Wait for the position seeding under way (tests)."""
        while self._seeding:
            await asyncio.gather(*self._seeding, return_exceptions=True)


def install(app: faust.App, ctx: StageContext, guards: ExecutorGuards, store: GuardStore) -> ControlsFeed:
    """Every executor follows the guards records (whichever accounts its lanes own today: a
    rebalance may give it any account tomorrow)."""
    started: list[asyncio.Future[None]] = []

    def adapter_for(account_id: str) -> BrokerAdapter | None:
        account = ctx.config.accounts.get(account_id)
        return ctx.pool.connected().get(account.session_id) if account is not None else None

    def start_prices() -> QuoteBook | None:
        config = ctx.config.market_data
        if config is None:
            return None
        quotes = QuoteBook(config.max_age_s)
        feed = price_feed.PriceFeed(config, quotes, price_feed.health_reporter(ctx, config.platform))
        started.append(asyncio.ensure_future(feed.run()))
        log.info("guards: price feed started for a loss rule set from the dashboard")
        return quotes

    async def stop_prices() -> None:
        for task in started:
            task.cancel()

    ctx.shutdown_hooks.append(stop_prices)
    edits = GuardEdits(guards, store, adapter_for, start_prices)
    return worker_feed(app, ctx).subscribe(edits.apply)
