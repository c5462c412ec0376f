"""Executor: consumes ``orders.requests``, runs each intent in its account's lane.

Offsets are acknowledged by the lane when the broker answered: at-least-once delivery; the
attempt journal (data dir) and the consumer's redelivery flag tell the router which intents to
look up at the broker before placing (``router.py``). Two interchangeable consumers feed the lanes
(``COPYTRADER_EXECUTOR_CONSUMER``): ``direct``, a plain aiokafka consumer in the worker's loop
(``intent_consumer.py``, the low-latency default), or ``faust``, a Faust agent with manual
acks on a ``noack`` stream. Also pumps follower fills from the adapters to ``trade.executions``
and reports session health.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import faust
from aiokafka.structs import ConsumerRecord

from ...brokers.base import BrokerAdapter
from ...common.crypto import optional_cipher
from ...core import metrics
from ...core.metric_tally import CounterTally, HistogramTally
from ...core.records import AccountStatus, Execution, IntentBatch, OrderError, OrderIntent
from ...core.settings import Settings
from ..shared import jobs
from ..shared.context import StageContext
from ..shared.controls_feed import ControlsFeed, worker_feed
from ..shared.deferred_outbox import DeferredOutbox
from ..shared.health_reports import HealthReports, session_status
from ..shared.refused_events import unreadable_record
from . import guards as risk_guards
from . import protective_wiring as protective_stops
from .accounts import ExecutorAccounts
from .attempt_journal import AttemptJournal
from .intent_consumer import LOG_APPEND_TIME, DirectIntentConsumer
from .netting import StaleCopies
from .protective import ProtectiveStops
from .router import AccountLanes, OrderRouter

log = logging.getLogger(__name__)


#: The most CPU a fill pump spends in one loop turn before it lets other work run.
PUMP_SLICE_S = 0.001

_INTERNAL = metrics.stage_tally("internal")
_E2E = metrics.stage_tally("e2e")


@functools.cache
def _ack_series(platform: str, action: str, duplicate: bool) -> tuple[CounterTally, HistogramTally]:
    """An ack's order counter and broker-call histogram, resolved once per kind of ack."""
    return metrics.orders_tally(platform, "duplicate" if duplicate else "placed"), metrics.broker_call_tally(
        platform, action
    )


def observe_outcome(intent: OrderIntent, outcome: Execution | OrderError) -> None:
    """An intent's outcome on the dashboard's series: per ack, the order count, the broker
    call and the internal and e2e stages. Counted in tallies (``core/metric_tally.py``), which
    the scrape adds to the same series: three histogram observations and an increment per
    copy were 7.6 µs of the lane's CPU (#16)."""
    if isinstance(outcome, Execution):
        values = outcome.__dict__  # Faust's field descriptors cost a call per read
        stamps = values["stamps"]
        placed, call = _ack_series(intent.platform, intent.action, values["duplicate"])
        placed.inc()
        sent, acked, detected = stamps.get("sent"), stamps.get("acked"), stamps.get("detected")
        if sent is not None and acked is not None:
            call.observe(acked - sent)
        if detected is not None:
            if sent is not None:
                _INTERNAL.observe(sent - detected)
            if acked is not None:
                _E2E.observe(acked - detected)
    else:
        metrics.count_order(intent.platform, "rejected")
        metrics.count_reject(intent.platform, (outcome.code or "other").lower()[:32])


@dataclass(slots=True)
class ExecutionStage:
    """What the execution stage of one worker owns: the router (broker calls, exactly once),
    the per-account lanes, the dashboard accounts it follows and one fill pump per session."""

    ctx: StageContext
    router: OrderRouter
    lanes: AccountLanes
    accounts: ExecutorAccounts | None = None
    controls_feed: ControlsFeed | None = None
    pumps: dict[str, asyncio.Future[None]] = field(default_factory=dict)
    protective: ProtectiveStops | None = None  # the protective-stop watcher (protective.py)
    intent_consumer: DirectIntentConsumer | None = None  # the direct consumer, for the warm-up
    #: Set once every follower session's first connection attempt ended (opened or refused),
    #: or SESSIONS_GATE_S passed: a gate of ``/readyz`` (``warmup.py``).
    sessions_tried: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def build(cls, ctx: StageContext) -> ExecutionStage:
        router = OrderRouter(ctx.pool, ctx.outbox)
        stale = StaleCopies(router)  # copies too late to place as they were are netted (netting.py)
        return cls(ctx, router, AccountLanes(router.execute, router.report_crash, router.report_skipped, stale))


#: How long ``/readyz`` waits for the follower sessions' first connection attempts: a platform
#: that does not answer must not keep every other account's copies out of service.
SESSIONS_GATE_S = 30.0


async def connect_sessions(stage: ExecutionStage, account_ids: list[str], bound_s: float = SESSIONS_GATE_S) -> None:
    """Open the followers' sessions before the first signal needs them, and say when every
    first attempt ended (``stage.sessions_tried``): a first copy that found its session still
    connecting waited for the log-in round trips on top of its own (#16 item 3). A failed or
    slow session is left to the pool (the next request for it connects again)."""
    attempt = asyncio.ensure_future(stage.ctx.pool.connect_all(account_ids))
    try:
        done, _ = await asyncio.wait({attempt}, timeout=bound_s)
        if not done:
            log.warning("follower sessions still connecting after %g s; ready without them", bound_s)
    finally:
        stage.sessions_tried.set()
    await attempt


async def pump_fills(router: OrderRouter, adapter: BrokerAdapter, followers: set[str]) -> None:
    """Follower fills and late cancels/rejects of one session → ``trade.executions``.

    ``followers`` is the worker's live set: a follower added later is pumped from then on.
    """
    events = adapter.events()
    take, platform, queue = router.take_broker_event, adapter.platform, events.queue
    clock = time.perf_counter
    try:
        while True:
            # What is queued already is taken without a coroutine per event (four per copy on
            # the paper venue, all queued by the order's placement), in slices of at most
            # PUMP_SLICE_S: a burst's 800 events were 10 ms in one turn, which the next intent
            # batch's fetch waited behind (#16). Then wait for more.
            event = await queue.get()
            started = clock()
            while True:
                if getattr(event, "account_id", None) in followers:
                    take(platform, event)
                if not queue.qsize():
                    break
                if clock() - started > PUMP_SLICE_S:
                    await asyncio.sleep(0)
                    started = clock()
                event = queue.get_nowait()
    finally:
        events.close()


class Countdown:
    """Acknowledges a batch's Kafka offset once every intent in it has finished and Kafka
    acknowledged every outcome record queued by then.

    Counted as each intent finishes; the last one asks the publisher (``DeferredOutbox.after``)
    to acknowledge once everything queued before has reached Kafka: every intent of the batch
    queued its outcome before it finished, so that covers them all. One publishing step per
    batch, where one per intent cost each copy a step, a coroutine and a callback (#16).
    """

    def __init__(self, count: int, on_zero: Callable[[], Awaitable[object]], publisher: DeferredOutbox) -> None:
        self.remaining = count
        self.on_zero = on_zero
        self.publisher = publisher

    async def one_done(self) -> None:
        self.remaining -= 1
        if self.remaining == 0:
            self.publisher.after(self.on_zero)


def submit_batch(
    stage: ExecutionStage, batch: IntentBatch, on_all_done: Callable[[], Awaitable[object]], redelivered: bool = False
) -> None:
    """Stamp a batch's intents received (and appended, when the broker stamped the record)
    and queue them in their lanes; ``on_all_done`` acks it. ``redelivered``: a previous owner
    of the partition may have handled the batch, so its intents are looked up before placing.

    The offset is acknowledged once Kafka acknowledged the intents' outcome records, not when
    they were queued or handed to the producer: it must not be committed ahead of them (a
    record the producer gave up on is sent again first; deferred_outbox.py)."""
    if not batch.intents:
        asyncio.ensure_future(on_all_done())
        return
    received = time.time()
    arrival = {"received": received} if batch.appended is None else {"appended": batch.appended, "received": received}
    one_done = Countdown(len(batch.intents), on_all_done, stage.router.outbox).one_done
    for intent in batch.intents:
        intent.stamps = {**intent.stamps, **arrival}
        stage.lanes.submit(intent, done=one_done, redelivered=redelivered)


def report_unreadable(
    stage: ExecutionStage, record: ConsumerRecord, exc: Exception, done: Callable[[], Awaitable[object]]
) -> None:
    """An ``orders.requests`` record that is no intent batch: its copies cannot be made, so it
    is said on ``order.errors``, and its offset passes only once Kafka took that error."""
    publisher = stage.router.outbox
    publisher.queue_error(unreadable_record("execute", "orders.requests", record.value, exc))
    publisher.after(done)


def install_direct_consumer(app: faust.App, stage: ExecutionStage) -> None:
    """Consume ``orders.requests`` with :class:`DirectIntentConsumer` in this worker's loop."""
    ctx = stage.ctx
    settings = ctx.settings
    consumer = DirectIntentConsumer(
        ctx.topics.intents.get_topic_name(),
        settings.bootstrap_servers,
        group_id=f"{settings.app_id}.executor",
        submit=lambda batch, done, redelivered: submit_batch(stage, batch, done, redelivered),
        # The configured groups first (an executor given an app id of its own), then the Faust
        # agent's group, when switching over.
        adopt_offsets_from=(*settings.adopt_offsets_from, settings.app_id),
        fetch_max_wait_ms=settings.intent_fetch_wait_ms,
        session_timeout_ms=int(app.conf.broker_session_timeout * 1000),
        heartbeat_interval_ms=int(app.conf.broker_heartbeat_interval * 1000),
        # Not what keeps outcomes ahead of their offsets (a flush returns normally when a send
        # failed; the acknowledgements that do are submit_batch's): it lets what was sent go out.
        before_commit=lambda: app.producer.flush(),
        unreadable=lambda record, exc, done: report_unreadable(stage, record, exc, done),
    )
    ctx.assignments.append(consumer.assignment)
    stage.intent_consumer = consumer
    ctx.lags.append(consumer.lags)
    ctx.busy.append(consumer.busy)

    @jobs.task(app)
    async def start_intent_consumer() -> None:
        await consumer.start()

    # Before the lanes close (close_sessions): the in-flight intents finish, then the commit.
    ctx.shutdown_hooks.insert(0, consumer.stop)


def status_of(stage: ExecutionStage, account_id: str, refused: str | None = None) -> AccountStatus:
    """A follower's session health plus what this executor's copies for it did."""
    status = session_status(stage.ctx, account_id)
    stats = stage.router.stats.get(account_id)
    if stats is not None:
        status.orders_placed, status.rejects, status.last_copy_ms = (
            stats.orders_placed,
            stats.rejects,
            stats.last_copy_ms,
        )
    status.last_error = refused or (stats.last_error if stats else None) or status.last_error
    return status


def journal_path(settings: Settings) -> Path:
    """One journal per executor app id in the data dir (a restarted worker finds its own)."""
    return settings.data_dir / "executor" / f"{settings.app_id}.attempts.sqlite"


def install(app: faust.App, ctx: StageContext) -> ExecutionStage:
    """Role ``execute``: intents → broker orders; fills → ``trade.executions``; health reports."""
    stage = ExecutionStage.build(ctx)
    router, lanes, pumps = stage.router, stage.lanes, stage.pumps
    router.on_outcome = observe_outcome
    settings = ctx.settings
    router.deadline_s = settings.copy_deadline_s
    router.journal = AttemptJournal(journal_path(settings), keep_s=settings.journal_keep_h * 3600)
    # Followers of this worker; grows when the dashboard adds one (``ExecutorAccounts``).
    followers = set(ctx.config.follower_accounts())

    def breaker_changed(name: str, old: str, new: str) -> None:
        metrics.on_circuit_change(name, old, new)
        for account_id, account in ctx.config.accounts.items():
            if account.session_id == name and account_id in followers:
                asyncio.ensure_future(ctx.outbox.health(status_of(stage, account_id)))

    def session_opened(session_id: str, adapter: BrokerAdapter) -> None:
        """Every connection gets its fill pump, whether opened at start or by a later order."""
        session_closed(session_id)
        metrics.set_broker_connected(session_id, adapter.platform, True)
        pumps[session_id] = asyncio.ensure_future(pump_fills(router, adapter, followers))

    def session_closed(session_id: str) -> None:
        pump = pumps.pop(session_id, None)
        if pump is not None:
            pump.cancel()

    ctx.pool.on_breaker_change = breaker_changed
    ctx.pool.on_connected = session_opened
    ctx.pool.on_closed = session_closed
    risk_guards.install(app, ctx, router, lanes.submit)  # after on_connected: it seeds positions there
    stage.protective = protective_stops.install(ctx, router, lanes.submit)  # after observe_outcome and on_connected

    async def open_session(session_id: str) -> None:
        try:
            await ctx.pool.open(session_id)
        except Exception as exc:  # noqa: BLE001 - the next order retries; the status says why
            log.error("session %s failed to connect: %r", session_id, exc)

    accounts = ExecutorAccounts(ctx, followers, open_session, optional_cipher())
    feed = worker_feed(app, ctx).subscribe(accounts.apply)
    ctx.pool.catch_up = feed.sync
    stage.accounts, stage.controls_feed = accounts, feed

    if ctx.settings.executor_consumer == "faust":

        @app.agent(ctx.topics.intents, name="executor")
        async def executor(stream: faust.StreamT[IntentBatch]) -> None:
            """Intents → broker requests in per-account lanes; offsets acked once the broker answered."""
            manual = stream.noack()  # type: ignore[attr-defined]  # Faust's StreamT omits Stream.noack
            async for event in manual.events():
                batch = event.value
                if event.message.timestamp_type == LOG_APPEND_TIME:
                    batch.appended = event.message.timestamp  # Faust gives seconds
                # Faust hides the end offsets at assignment, so this path cannot tell a fresh
                # intent from one a previous owner (another host, whose journal we cannot read)
                # may already have sent: every intent is looked up at the broker before it is
                # placed. Safe, at one lookup per order; the direct consumer (the default) looks
                # up only what was written before it owned the partition.
                submit_batch(stage, batch, functools.partial(manual.ack, event), redelivered=True)
    else:
        install_direct_consumer(app, stage)

    @jobs.task(app)
    async def connect_followers() -> None:
        await connect_sessions(stage, sorted(followers))

    @jobs.task(app)
    async def follow_account_records() -> None:
        await feed.run()

    reported = HealthReports()

    @jobs.timer(app, ctx.settings.status_interval_s)
    async def report_health() -> None:
        if stage.intent_consumer is not None:  # between signals, not inside one (as reconciling)
            await stage.intent_consumer.copies_first()
        full = reported.next_round()
        for account_id in sorted(followers):
            if account_id not in ctx.config.accounts:
                continue
            status = status_of(stage, account_id, accounts.refused.get(account_id))
            if reported.changed(status) or full:
                await ctx.outbox.health(status)
                # One report at a time: 200 back-to-back sends held every lane ~100 ms.
                await asyncio.sleep(0)
        for session_id, adapter in ctx.pool.connected().items():
            metrics.set_rate_headroom(session_id, adapter.health().rate_headroom)

    async def close_sessions() -> None:
        for pump in list(pumps.values()):
            pump.cancel()
        await router.late.close()
        await lanes.close()
        await router.outbox.close()  # the fills and acks already queued still go out
        await ctx.pool.close()
        if router.journal is not None:
            router.journal.close()

    ctx.shutdown_hooks.append(close_sessions)
    return stage
