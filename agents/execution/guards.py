"""Risk guards in the executor: where a follower's orders, fills and lanes are.

Why here and not in fan-out: only the executor knows, for one account, which orders it sent,
which are still working and which filled (the fill pump), and it runs that account's orders
one at a time in its lane. So the check before each broker call sees every earlier order of
the account, and costs a dictionary walk (no I/O, no lock, no await; docs/benchmarks.md).

* A refused copy goes through the router's usual refusal path: ``order.errors`` with a
  ``GUARD_*`` code and the numbers, a ``reject`` on ``trade.executions``, no broker call.
* A loss or drawdown limit reached (by a check, a fill, or the one-second monitor that
  re-marks open positions) is reported once on ``order.errors``; with ``on_breach:
  flatten_and_pause`` the follower is paused on ``copy.controls`` (the dashboard's pause, so
  fan-out stops planning its entries and the trader resumes it there) and flattened through
  its own lane (one flatten of every symbol, client id derived from the breach, so a repeat
  cannot flatten twice). ``agents/notify`` alerts on every ``GUARD_*`` code.
* A restart keeps the day's realised P&L, the drawdown's peak and the breaches in force
  (``guard_store.py``, a file beside the attempt journal); positions come back from the
  broker's snapshot at connect.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

import faust

from ...brokers.base import BrokerAdapter
from ...brokers.model import FillEvent, OrderEvent, OrderStatus
from ...common.clock import utcnow
from ...core.config import CopyConfig
from ...core.control_records import TOPIC as CONTROLS_TOPIC
from ...core.control_records import ControlCommand
from ...core.guard_state import AccountGuard, Refusal, has_rules, quote_marks, rules_by_account
from ...core.guards import GuardRules, build
from ...core.quotes import QuoteBook
from ...core.records import Execution, OrderError, OrderIntent
from ...core.topics import partition_for, topic_name
from ..shared import jobs, price_feed
from ..shared.account_flatten import flatten_account_intent
from ..shared.context import StageContext
from ..shared.controls_feed import ControlsFeed
from ..shared.outbox import INTENT_PARTITIONS
from . import guard_edits
from .guard_edits import seed_positions
from .guard_store import GuardStore
from .router import AccountStats, OrderRouter

log = logging.getLogger(__name__)

GUARD_SIGNAL_PREFIX = "control:guard:"
MONITOR_INTERVAL_S = 1.0
Act = Callable[[str, Refusal], Awaitable[None]]


class ExecutorGuards:
    """Every guarded follower's :class:`AccountGuard`, fed by the router's hooks."""

    def __init__(
        self,
        rules: dict[str, GuardRules],
        quotes: QuoteBook | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.marks = quote_marks(quotes)
        self.quotes = quotes
        self.accounts = {account: AccountGuard(account, r, self.marks) for account, r in rules.items()}
        self.clock = clock
        self.act: Act | None = None
        # Whether this executor owns the account's lane (its orders.requests partition): with
        # two executors both see every fill, and only the owner acts on a breach.
        self.owns: Callable[[str], bool] = lambda _account: True
        self._acting: set[asyncio.Future[None]] = set()
        # The dashboard's edits (``guard_edits.py``), set by :func:`install`.
        self.edits: ControlsFeed | None = None

    def set_rules(self, account_id: str, rules: GuardRules | None) -> AccountGuard | None:
        """A dashboard edit (``guard_edits.py``): the account's next check uses ``rules``.

        The account keeps what its guard already counted (positions, working orders, P&L,
        peak); a newly guarded one gets a fresh guard, returned so the caller can restore its
        saved figures and seed its positions. No rules (``None`` or all unset): unguarded."""
        guard = self.accounts.get(account_id)
        if rules is None or not has_rules(rules):
            self.accounts.pop(account_id, None)
            return None
        if guard is not None:
            guard.set_rules(rules)
            return None
        guard = self.accounts[account_id] = AccountGuard(account_id, rules, self.marks)
        return guard

    def use_quotes(self, quotes: QuoteBook) -> None:
        """Prices started after the worker (a loss rule added from the dashboard)."""
        self.quotes, self.marks = quotes, quote_marks(quotes)
        for guard in self.accounts.values():
            guard.marks = self.marks

    # -- the router's hooks ----------------------------------------------------------------
    def check(self, intent: OrderIntent) -> Refusal | None:
        """Before the broker call, in the account's lane: None lets the order go."""
        guard = self.accounts.get(intent.account_id)
        if guard is None:
            return None
        refusal = guard.check(
            intent.action, intent.symbol, intent.side, intent.quantity, intent.target_client_order_id, self.clock()
        )
        if refusal is None:
            guard.sent(
                intent.client_order_id,
                intent.action,
                intent.symbol,
                intent.side,
                intent.quantity,
                intent.target_client_order_id,
            )
        elif refusal.first:
            self._breached(intent.account_id, refusal)
        return refusal

    def on_outcome(self, intent: OrderIntent, outcome: Execution | OrderError) -> None:
        guard = self.accounts.get(intent.account_id)
        if guard is None:
            return
        if isinstance(outcome, OrderError):
            # Refused or rejected: not working. An unknown outcome may be working: keep it.
            if intent.action == "place" and outcome.code != "OUTCOME_UNKNOWN":
                guard.finished(intent.client_order_id)
        elif outcome.kind == "flattened":
            guard.flattened(intent.symbol)
        elif outcome.kind == "cancelled" and intent.target_client_order_id:
            guard.finished(intent.target_client_order_id)

    def on_event(self, event: object) -> None:
        """The fill pump's events: fills move positions and P&L; cancels end working orders."""
        if isinstance(event, FillEvent):
            guard = self.accounts.get(event.account_id)
            if guard is None:
                return
            guard.fill(
                event.client_order_id,
                event.symbol,
                event.side.value,
                event.quantity,
                event.price,
                event.leaves_quantity,
            )
            breach = guard.evaluate(self.clock())
            if breach is not None:
                self._breached(event.account_id, breach)
        elif isinstance(event, OrderEvent) and event.status in (
            OrderStatus.CANCELLED,
            OrderStatus.EXPIRED,
            OrderStatus.REJECTED,
        ):
            guard = self.accounts.get(event.account_id)
            if guard is not None and event.client_order_id:
                guard.finished(event.client_order_id)

    # -- the monitor and the dashboard ------------------------------------------------------
    def evaluate_all(self) -> int:
        """Re-mark every guarded account (prices move without fills); act on new breaches."""
        now = self.clock()
        count = 0
        for account_id, guard in self.accounts.items():
            breach = guard.evaluate(now)
            if breach is not None:
                self._breached(account_id, breach)
                count += 1
        return count

    def standing(self, account_id: str) -> str | None:
        """One line for ``account.status``: the breach in force, if any."""
        guard = self.accounts.get(account_id)
        if guard is None or not guard.breached:
            return None
        return "; ".join(f"{b.code}: {b.message}" for b in guard.breached.values())

    def _breached(self, account_id: str, breach: Refusal) -> None:
        log.warning("guard breached on %s: %s %s", account_id, breach.code, breach.message)
        if self.act is not None and self.owns(account_id):
            task = asyncio.ensure_future(self.act(account_id, breach))
            self._acting.add(task)
            task.add_done_callback(self._acting.discard)

    async def settled(self) -> None:
        """Wait for the breach actions under way (tests, shutdown)."""
        while self._acting:
            await asyncio.gather(*self._acting, return_exceptions=True)


def breach_intent(config: CopyConfig, account_id: str, breach: Refusal, day: str) -> OrderIntent:
    """One flatten of every symbol of the account; its client id is derived from the breach
    (account, rule, trading day), so a breach seen again cannot flatten twice."""
    signal_id = f"{GUARD_SIGNAL_PREFIX}{breach.code.lower()}:{day}"
    return flatten_account_intent(config, signal_id, account_id, f"guard:{breach.code}", utcnow().timestamp())


def breach_error(account_id: str, breach: Refusal, day: str) -> OrderError:
    action = f"flattening and pausing {account_id}" if breach.flatten else "entries refused"
    return OrderError(
        error_id=f"guard|{account_id}|{breach.code}|{day}",
        stage="execute",
        reason=f"{breach.message}: {action}",
        account_id=account_id,
        code=breach.code,
    )


Submit = Callable[[OrderIntent], None]
SendControl = Callable[[bytes, bytes], Awaitable[None]]
Report = Callable[[OrderError], Awaitable[None]]


def breach_action(
    config: CopyConfig,
    report: Report,
    guards: ExecutorGuards,
    router: OrderRouter,
    submit: Submit,
    send_control: SendControl,
) -> Act:
    """Report the breach (``order.errors``, and the account's status through its last error);
    with ``flatten_and_pause``: pause the follower, then flatten it."""

    async def act(account_id: str, breach: Refusal) -> None:
        guard = guards.accounts.get(account_id)  # a dashboard edit may have removed it since
        day = str((guard.day if guard is not None else None) or guards.clock().date())
        error = breach_error(account_id, breach, day)
        router.stats.setdefault(account_id, AccountStats()).last_error = f"{breach.code}: {error.reason}"
        flatten = breach.flatten and account_id in config.accounts
        if flatten:  # first: it needs no broker of ours to be up, and entries are refused meanwhile
            submit(breach_intent(config, account_id, breach, day))
        await report(error)
        if not flatten:
            return
        pause = ControlCommand(
            f"guard-{account_id}-{breach.code.lower()}-{day}", account_id, True, f"guard:{breach.code}"
        )
        try:
            await send_control(account_id.encode(), pause.encode())
        except Exception:  # noqa: BLE001 - the guard still refuses its entries; say why the pause is missing
            log.exception("guard breach on %s: the pause could not be published", account_id)

    return act


def install(app: faust.App, ctx: StageContext, router: OrderRouter, submit: Submit) -> ExecutorGuards:
    """Guards for the followers that have them: the checks, the monitor, positions seeded from
    the broker at connect, this worker's own prices when a rule needs them (executors are not
    among the price feed's roles otherwise), and the dashboard's edits (``guard_edits.py``).
    Installed even when no follower has guards yet: the dashboard may give some later."""
    rules = rules_by_account(ctx.config)
    store = GuardStore(ctx.settings.data_dir / "executor" / f"{ctx.settings.app_id}.guards.json")
    for account_id, edit in store.load_edits().items():  # the dashboard's, as last applied here
        edited = build(edit.guards) if edit.guards is not None else None
        if edited is not None and has_rules(edited):
            rules[account_id] = edited
        else:
            rules.pop(account_id, None)
    if ctx.quotes is None and ctx.config.market_data is not None and any(r.needs_marks for r in rules.values()):
        ctx.quotes = QuoteBook(ctx.config.market_data.max_age_s)
        price_feed.install(app, ctx)
    guards = ExecutorGuards(rules, ctx.quotes)
    guards.owns = lane_owner(ctx)
    controls = app.topic(
        topic_name(ctx.settings.topic_prefix, CONTROLS_TOPIC),
        key_type=None,
        value_type=None,
        key_serializer="raw",
        value_serializer="raw",
        internal=False,
    )

    async def send_control(key: bytes, value: bytes) -> None:
        await controls.send(key=key, value=value)

    guards.act = breach_action(ctx.config, router.outbox.error, guards, router, submit, send_control)
    router.guards = guards

    log.info("guards: %d of %d accounts restored from %s", store.load(guards.accounts), len(rules), store.path)

    @jobs.timer(app, MONITOR_INTERVAL_S)
    async def monitor_guards() -> None:
        guards.evaluate_all()
        store.save(guards.accounts)

    async def save_guards() -> None:
        store.save(guards.accounts)

    ctx.shutdown_hooks.append(save_guards)

    seed_at_connect(ctx, guards)
    guards.edits = guard_edits.install(app, ctx, guards, store)
    return guards


def lane_owner(ctx: StageContext) -> Callable[[str], bool]:
    """Whether this worker's intent consumer holds the account's ``orders.requests`` partition
    (no consumer that reports its assignment: the Faust agent or a test, which own them all)."""

    def owns(account_id: str) -> bool:
        if not ctx.assignments:
            return True
        partition = partition_for(account_id, INTENT_PARTITIONS)
        return any(tp.partition == partition for assigned in ctx.assignments for tp in assigned())

    return owns


def seed_at_connect(ctx: StageContext, guards: ExecutorGuards) -> None:
    """When a session connects, take each guarded account's positions from the broker, unless
    this worker already counted fills for it (the fills are then the newer facts)."""
    previous = ctx.pool.on_connected
    seeding: set[asyncio.Future[None]] = set()

    async def seed(adapter: BrokerAdapter, account_id: str) -> None:
        guard = guards.accounts.get(account_id)
        if guard is not None:
            await seed_positions(adapter, guard)

    def connected(session_id: str, adapter: BrokerAdapter) -> None:
        if previous is not None:
            previous(session_id, adapter)
        for account_id in guards.accounts:
            account = ctx.config.accounts.get(account_id)
            if account is not None and account.session_id == session_id:
                task = asyncio.ensure_future(seed(adapter, account_id))
                seeding.add(task)
                task.add_done_callback(seeding.discard)

    ctx.pool.on_connected = connected
