"""The follower side of reconciliation, in the executor worker that owns the follower sessions.

Triggers: a fresh leader snapshot (``leader.snapshots``: the schedule, a leader's reconnect and
every on-demand request arrive this way), the (re)connect of a follower's session, and a
request on ``copy.controls`` whose leader snapshot did not come in time. Each reconcile reads
the follower's snapshot, compares it with its copy groups' target (``core/reconcile.py``) and
reports on ``account.status`` (always) and ``order.errors`` (once per new finding).

Correcting is opt-in per copy group (``auto_correct``) and guarded, because a wrong
correction is a real order:

* never from a missing, failed or older-than-``max_leader_age_s`` leader snapshot, nor from a
  failed follower snapshot (``RECONCILE_UNAVAILABLE``, nothing changes);
* never while the follower is paused (or all copying is: the kill switch pauses all);
* never from a leader snapshot taken before this account's last copy outcome (the copy may
  reflect a leader change the snapshot does not show), and not reported from one either: at
  1,000 followers a round of looks outlasts the leader's next trade, and a follower ahead of
  an old snapshot is not drifted;
* only a drift seen twice, ``settle_s`` apart, identical, with no copy outcome in between (a
  copy on its way through Kafka would otherwise be doubled by the correction);
* only one set of corrections in flight per account, and never one key twice.

Corrections are ``orders.requests`` intents (market orders for positions, cancels for
orphans) through the same outbox as every copy: they reach this account's lane behind the
copies already queued, and the executor runs each key once (journal, lookup).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from ...brokers.base import BrokerAdapter
from ...brokers.model import ConnectionEvent, ConnectionState
from ...core import reconcile as rc
from ...core.control_records import ALL_ACCOUNTS, ControlCommand, ReconcileCommand
from ...core.records import Execution, OrderError, OrderIntent
from ...core.schemas.reconcile import ReconcileIn
from ..shared.context import StageContext
from ..shared.controls_feed import Command
from ..shared.health_reports import session_status
from .leader import take_snapshot

log = logging.getLogger(__name__)
MAX_CONCURRENT_SNAPSHOTS = 16
REMEMBERED_KEYS = 10_000
#: A correction without an outcome this long was answered elsewhere (its partition moved to
#: another executor) or never will be: its key is never sent again, a newer snapshot may correct.
PENDING_GIVE_UP_S = 120.0


@dataclass(slots=True)
class AccountRecord:
    """What the reconciler remembers of one follower between looks."""

    state: str | None = None
    since: float | None = None
    checked_at: float = 0.0
    reason: str | None = None
    first_seen: tuple[object, ...] | None = None  # fingerprint of a drift awaiting confirmation
    first_seen_at: float = 0.0
    confirming: asyncio.Future[Any] | None = None
    pending: set[str] = field(default_factory=set)  # correction keys without an outcome yet
    pending_since: float = 0.0
    corrections: list[str] = field(default_factory=list)  # the last correction keys sent
    last: dict[str, Any] | None = None  # the last report


class FollowerReconciler:
    def __init__(
        self,
        ctx: StageContext,
        settings: ReconcileIn,
        owns: Callable[[str], bool] = lambda _account: True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ctx = ctx
        self.settings = settings
        self.owns = owns
        self.clock = clock
        self.leaders: dict[str, rc.BrokerState] = {}
        self.records: dict[str, AccountRecord] = {}
        self.paused: set[str] = set()
        self.paused_all = False
        self.last_outcome_at: dict[str, float] = {}
        self.live = False  # set once the controls replay is over: older requests are not acted on
        self._tried: OrderedDict[str, None] = OrderedDict()
        self._published: OrderedDict[str, None] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        self._limit = asyncio.Semaphore(MAX_CONCURRENT_SNAPSHOTS)
        self._tasks: set[asyncio.Future[Any]] = set()
        self._watches: dict[str, asyncio.Future[None]] = {}
        # Awaited before each follower's snapshot: the executor's copies in flight go first
        # (``DirectIntentConsumer.copies_first``); None: no wait (tests, the Faust consumer).
        self.copies_first: Callable[[], Awaitable[None]] | None = None
        self._waiting: set[str] = set()  # accounts with a look waiting for its turn

    # -- which followers ---------------------------------------------------------------
    def followers(self, leader: str | None = None) -> list[str]:
        """Followers this worker reconciles: configured, enabled and owned here."""
        config = self.ctx.config
        found = {
            follower.account_id
            for group_leader, members in config.followers_by_leader.items()
            if leader is None or group_leader == leader
            for _group, follower in members
            if follower.enabled  # a disabled follower is not copied to, so it has no target
        }
        return sorted(a for a in found if a in config.accounts and self.owns(a))

    # -- triggers ----------------------------------------------------------------------
    async def on_leader_snapshot(self, state: rc.BrokerState) -> None:
        self.leaders[state.account_id] = state
        if self.clock() - state.taken_at > self.settings.max_leader_age_s:
            return  # a replayed old record: kept (it says which leaders exist), not acted on
        trigger = f"leader snapshot ({state.trigger or 'unknown'}{', failed' if state.error else ''})"
        self._spawn(self.reconcile_many(self.followers(state.account_id), trigger))

    def on_command(self, command: Command) -> None:
        if isinstance(command, ControlCommand):
            if command.account_id == ALL_ACCOUNTS:
                self.paused_all = command.paused
            elif command.paused:
                self.paused.add(command.account_id)
            else:
                self.paused.discard(command.account_id)
        elif isinstance(command, ReconcileCommand) and self.live:
            mine = self.followers()
            accounts = mine if command.account_id == ALL_ACCOUNTS else [a for a in mine if a == command.account_id]
            if accounts:
                self._spawn(self._after_request(accounts, command.at or self.clock()))

    async def _after_request(self, accounts: list[str], asked_at: float) -> None:
        """The ingest worker answers a request with fresh leader snapshots, which reconcile
        every follower of those leaders. Whoever was not reconciled since is done here, with
        what there is (a stale leader snapshot is then reported, not corrected from)."""
        await asyncio.sleep(self.settings.snapshot_timeout_s + 1.0)
        late = [a for a in accounts if self.records.get(a, AccountRecord()).checked_at < asked_at]
        await self.reconcile_many(late, "request")

    async def overdue(self) -> list[dict[str, Any]]:
        """The watchdog (every interval): followers not looked at for longer than the leader
        freshness bound are reconciled now. With the leaders' snapshots flowing this finds
        nobody; without them (no ingest worker, a leader session down) each such follower is
        reported unavailable with the reason instead of going quiet."""
        now = self.clock()
        bound = self.settings.max_leader_age_s
        late = [a for a in self.followers() if now - self.records.get(a, AccountRecord()).checked_at > bound]
        return await self.reconcile_many(late, "overdue")

    def on_session(self, session_id: str, adapter: BrokerAdapter) -> None:
        """A follower session opened: reconcile its accounts now and after every reconnect."""
        old = self._watches.pop(session_id, None)
        if old is not None:
            old.cancel()
        self._watches[session_id] = asyncio.ensure_future(self._watch(session_id, adapter))

    async def _watch(self, session_id: str, adapter: BrokerAdapter) -> None:
        # Connection changes only: the session's orders and fills (four per copy) are the
        # fill pump's, and woke this task for nothing (#16).
        events = adapter.events(ConnectionEvent)
        try:
            await self.reconcile_many(self._on_session(session_id), "connect")
            async for event in events:
                if isinstance(event, ConnectionEvent) and event.state is ConnectionState.CONNECTED:
                    await self.reconcile_many(self._on_session(session_id), "reconnect")
        finally:
            events.close()

    def _on_session(self, session_id: str) -> list[str]:
        """The session's followers whose leaders' snapshots are here: the others are
        reconciled when those arrive (at start they usually come a moment after the
        sessions connect, and "no leader snapshot yet" is not news worth an error)."""
        accounts = self.ctx.config.accounts
        return [a for a in self.followers() if accounts[a].session_id == session_id and self._leaders_known(a)]

    def _leaders_known(self, account_id: str) -> bool:
        leaders = {
            leader
            for leader, members in self.ctx.config.followers_by_leader.items()
            for _group, follower in members
            if follower.account_id == account_id
        }
        return bool(leaders) and leaders <= set(self.leaders)

    def on_outcome(self, intent: OrderIntent, outcome: Execution | OrderError) -> None:
        """Every copy outcome of this worker: activity that voids an unconfirmed drift, and
        the answer a pending correction waits for."""
        self.last_outcome_at[intent.account_id] = self.clock()
        record = self.records.get(intent.account_id)
        if record is not None:
            record.pending.discard(intent.client_order_id)

    # -- one reconciliation --------------------------------------------------------------
    async def reconcile_many(self, accounts: list[str], trigger: str) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(self.reconcile(a, trigger) for a in accounts)))

    async def reconcile(self, account_id: str, trigger: str) -> dict[str, Any]:
        """Compare, report and (when allowed) correct one follower; returns its report.

        A look of an account that another look already waits for is not queued again (that one
        will compare with the newest leader snapshot): rounds that outlast their interval, at
        1,000 followers or while copies keep flowing, no longer pile up behind each other.
        """
        if account_id in self._waiting:
            return self.records.get(account_id, AccountRecord()).last or {}
        lock = self._locks.setdefault(account_id, asyncio.Lock())
        self._waiting.add(account_id)
        try:
            async with lock, self._limit:
                self._waiting.discard(account_id)
                if self.copies_first is not None:  # before the clock is read: copies made meanwhile count
                    await self.copies_first()
                return await self._look(account_id, trigger)
        finally:
            self._waiting.discard(account_id)

    async def _look(self, account_id: str, trigger: str) -> dict[str, Any]:
        """One look, under the account's lock: the follower's snapshot against its target."""
        record = self.records.setdefault(account_id, AccountRecord())
        now = self.clock()
        try:
            target = rc.target_for(self.ctx.config, account_id, self.leaders, now, self.settings.max_leader_age_s)
        except rc.Unavailable as exc:
            return await self._unavailable(account_id, record, str(exc), now, trigger)
        follower = await take_snapshot(self.ctx.pool.adapter_for, account_id, self.settings.snapshot_timeout_s)
        if follower.error is not None:
            return await self._unavailable(account_id, record, f"follower snapshot: {follower.error}", now, trigger)
        comparison = rc.compare(target, follower)
        state = "in_sync" if comparison.in_sync else "drifted"
        if record.state != state:
            record.state, record.since = state, now
        record.checked_at, record.reason = now, None
        body = rc.report(comparison, record.since, now)
        body.update(trigger=trigger, leader_taken_at=target.leader_taken_at, auto_correct=target.auto_correct)
        if comparison.in_sync:
            record.first_seen = None
        else:
            body["correction"] = await self._on_drift(account_id, target, comparison, record, now)
        body["corrections"] = list(record.corrections)
        record.last = body
        await self._status(account_id, body)
        return body

    async def _unavailable(
        self, account_id: str, record: AccountRecord, reason: str, now: float, trigger: str
    ) -> dict[str, Any]:
        if record.state != "unavailable" or record.reason != reason:
            if record.state != "unavailable":
                record.since = now
            record.state, record.reason = "unavailable", reason
            await self._error(account_id, rc.RECONCILE_UNAVAILABLE, f"cannot reconcile: {reason}; nothing changed", now)
        record.checked_at, record.first_seen = now, None
        body = rc.unavailable_report(reason, record.since, now)
        body.update(trigger=trigger, corrections=list(record.corrections))
        record.last = body
        await self._status(account_id, body)
        return body

    async def _report_findings(
        self, account_id: str, target: rc.Target, comparison: rc.Comparison, record: AccountRecord
    ) -> None:
        mode = "auto-correct on" if target.auto_correct else "report only (auto-correct off)"
        for drift in comparison.drifts:
            await self._error(
                account_id,
                rc.DRIFT_POSITION,
                f"{drift.symbol}: holds {drift.actual}, copy group says {drift.expected} "
                f"(difference {drift.difference:+d}); {mode}",
                record.since or 0.0,
                key=f"{drift.symbol}|{drift.actual}>{drift.expected}",
            )
        for orphan in comparison.orphans:
            await self._error(
                account_id,
                rc.ORPHAN_ORDER,
                f"working order {orphan.broker_order_id} ({orphan.client_order_id}, {orphan.side} "
                f"{orphan.quantity} {orphan.symbol}) has no working leader order; {mode}",
                record.since or 0.0,
                key=f"orphan|{orphan.broker_order_id}",
            )
        for missing in comparison.missing:
            await self._error(
                account_id,
                rc.MISSING_ORDER,
                f"leader {missing.leader} order {missing.leader_order_id} ({missing.symbol}) is working, "
                "its copy is not; reported only (a skipped copy stays skipped)",
                record.since or 0.0,
                key=f"missing|{missing.leader_order_id}",
            )

    async def _on_drift(
        self, account_id: str, target: rc.Target, comparison: rc.Comparison, record: AccountRecord, now: float
    ) -> str:
        """A drift counts once seen twice, ``settle_s`` apart, identical, with no copy outcome
        in between: only then is it reported on ``order.errors`` (a copy on its way is not an
        alarm) and corrected (a copy on its way would be doubled)."""
        if target.leader_taken_at < self.last_outcome_at.get(account_id, 0.0):
            # The leader snapshot predates this account's last copy: the follower may be ahead of
            # it, not drifted (at 1,000 followers a round of looks outlasts the leader's next
            # trade). Neither reported nor corrected; the next leader snapshot decides.
            record.first_seen = None
            return "waiting: the leader snapshot is older than this account's last copy"
        fingerprint = comparison.fingerprint()
        quiet_since_first = self.last_outcome_at.get(account_id, 0.0) < record.first_seen_at
        if record.first_seen != fingerprint or not quiet_since_first:
            record.first_seen, record.first_seen_at = fingerprint, now
            self._confirm_later(account_id, record)
            return f"confirming: looking again in {self.settings.settle_s:g} s"
        if now - record.first_seen_at < self.settings.settle_s:
            self._confirm_later(account_id, record)
            return "confirming"
        await self._report_findings(account_id, target, comparison, record)
        return await self._maybe_correct(account_id, target, comparison, record, now)

    async def _maybe_correct(
        self, account_id: str, target: rc.Target, comparison: rc.Comparison, record: AccountRecord, now: float
    ) -> str:
        """Send the corrections of a confirmed drift when every guard allows it."""
        if not target.auto_correct:
            return "off"
        if self.paused_all or account_id in self.paused:
            return "not corrected: copying is paused"
        if record.pending and now - record.pending_since < PENDING_GIVE_UP_S:
            return f"not corrected: {len(record.pending)} correction(s) still without an outcome"
        record.pending = set()  # answered, or so long ago that the executor gave up on them
        if target.leader_taken_at < self.last_outcome_at.get(account_id, 0.0):  # a copy came during the report
            return "not corrected: the leader snapshot is older than this account's last copy"
        planned = [c for c in rc.corrections(target, comparison) if c.client_order_id not in self._tried]
        if not planned:
            return "not corrected: these corrections were sent already; waiting for a newer leader snapshot"
        await self._send(account_id, planned, now)
        record.pending, record.pending_since = {c.client_order_id for c in planned}, now
        record.corrections = [c.client_order_id for c in planned]
        record.first_seen = None
        return f"corrected with {len(planned)} order(s)"

    def _confirm_later(self, account_id: str, record: AccountRecord) -> None:
        if record.confirming is not None and not record.confirming.done():
            return

        async def again() -> None:
            await asyncio.sleep(self.settings.settle_s)
            record.confirming = None  # this look may need one more
            await self.reconcile(account_id, "confirm")

        record.confirming = self._spawn(again())

    async def _send(self, account_id: str, planned: list[rc.Correction], now: float) -> None:
        platform = self.ctx.config.accounts[account_id].platform
        stamps = {"detected": now, "published": now, "fanned_out": now}
        for correction in planned:
            self._remember(self._tried, correction.client_order_id)
            log.warning("reconcile %s: %s (%s)", account_id, correction.reason, correction.client_order_id)
            intent = OrderIntent(
                client_order_id=correction.client_order_id,
                signal_id=correction.signal_id,
                account_id=account_id,
                platform=platform,
                leader_account="reconcile",
                action=correction.action,
                symbol=correction.symbol,
                side=correction.side,
                quantity=correction.quantity,
                target_client_order_id=correction.target_client_order_id,
                leader_symbol=correction.symbol,
                stamps=stamps,
            )
            await self.ctx.outbox.intents(correction.signal_id, [intent])

    # -- reporting -------------------------------------------------------------------------
    async def _status(self, account_id: str, body: dict[str, Any]) -> None:
        status = session_status(self.ctx, account_id)
        status.reconciliation = body
        await self.ctx.outbox.status(status)

    async def _error(self, account_id: str, code: str, reason: str, since: float, key: str = "") -> None:
        """One record per finding per episode: a drift seen every 30 s is said once."""
        digest = hashlib.blake2b(f"{code}|{since:.3f}|{key or reason}".encode(), digest_size=8).hexdigest()
        error_id = f"reconcile|{account_id}|{digest}"
        if error_id in self._published:
            return
        self._remember(self._published, error_id)
        await self.ctx.outbox.error(
            OrderError(error_id=error_id, stage="execute", reason=reason[:500], account_id=account_id, code=code)
        )

    @staticmethod
    def _remember(keys: OrderedDict[str, None], key: str) -> None:
        keys[key] = None
        if len(keys) > REMEMBERED_KEYS:
            keys.popitem(last=False)

    def _spawn(self, job: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
        task: asyncio.Future[Any] = asyncio.ensure_future(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        for task in [*self._tasks, *self._watches.values()]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._watches.values(), return_exceptions=True)
