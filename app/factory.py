"""``create_app(settings)``: the Faust application, built from settings and the copy config.

Roles (``COPYTRADER_ROLES``) decide which agents a worker runs, so the hot path can be split
over processes (fan-out on one core, executor on the other). Workers with different roles use
different app ids — one consumer group each — because Faust's assignor expects every member
of a group to run the same agents.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import faust

from ..agents.execution import agent as execution
from ..agents.execution import warmup as execution_warmup
from ..agents.fanout import agent as fanout
from ..agents.fanout import warmup as fanout_warmup
from ..agents.ingest import service as ingest
from ..agents.notify import stage as notify
from ..agents.reconcile import stage as reconcile
from ..agents.shared import heartbeat, jobs, price_feed
from ..agents.shared.aiokafka_internals import (
    apply_changelog_pause,
    apply_fetch_wait,
    apply_retry_backoff,
    apply_watching,
)
from ..agents.shared.context import StageContext
from ..agents.shared.outbox import Outbox, TopicOutbox
from ..agents.shared.sessions import SessionPool
from ..agents.shared.warmup import Warmup, faust_producer, produced_topics, warm_codecs, warm_producer
from ..agents.tracking import storage_sink, tracker
from ..brokers.registry import create_adapter
from ..core import metrics
from ..core.config import CopyConfig, load_config, parse_config
from ..core.quotes import QuoteBook
from ..core.settings import Settings
from ..core.topics import SPEC, declare_topics, ensure_topics
from ..web import api
from ..web.server import WebContext
from .gc_tuning import IdleCollector, freeze_startup_heap
from .worker import CopyTraderWorker

log = logging.getLogger(__name__)


@dataclass(slots=True, kw_only=True)
class Runtime(StageContext):
    """One worker's shared context plus what each of its stages built (``None`` for a stage
    whose role this worker does not run)."""

    ingest: ingest.IngestStage | None = None
    fanout: fanout.FanoutStage | None = None
    execution: execution.ExecutionStage | None = None
    storage: storage_sink.StorageSink | None = None
    notify: notify.NotifyStage | None = None
    web: WebContext | None = None
    reconcile: reconcile.ReconcileStage | None = None
    #: Run before the worker says it is ready (``/readyz``): see ``agents/shared/warmup.py``.
    warmup: Warmup = field(default_factory=Warmup)


class CopyTraderApp(faust.App):
    """A Faust app that creates its topics (with their partition counts) before it consumes."""

    runtime: Runtime
    #: Set once ``on_started`` finished (start-up heap frozen, idle collector installed).
    started_up: bool = False

    async def maybe_start_producer(self) -> Any:
        """Faust's version is a ``mode`` stampede wrapper that yields to the event loop three
        times (``asyncio.sleep(0)``) on every ``topic.send``, started producer or not. On a busy
        loop each yield waits behind every other ready task, and the fan-out's intent batches
        trickle out one loop turn apart. With a started producer there is nothing to wait for.
        """
        producer = self.producer
        if not self.in_transaction and producer.started:
            return producer
        started = await super().maybe_start_producer()
        # mode's stampede caches its wrapper in the instance's __dict__ on first use, which
        # shadows this method from then on (and brought the three yields back on every send).
        self.__dict__.pop("maybe_start_producer", None)
        return started

    def assigned_partitions(self) -> int:
        """Partitions this worker consumes: Faust's consumer plus any direct consumer."""
        faust_assigned = len(self.consumer.assignment()) if self.consumer else 0
        return faust_assigned + sum(len(assignment()) for assignment in self.runtime.assignments)

    async def on_first_start(self) -> None:
        settings = self.runtime.settings
        # Table changelogs too: Faust would create them itself, but only after its consumer has
        # read the cluster's metadata, so the first table write (the tracker's) could find the
        # changelog with 0 partitions and crash with PartitionsMismatch until metadata refreshed.
        changelogs = [
            (table.changelog_topic.get_topic_name(), table.partitions or 1, {"cleanup.policy": "compact"})
            for table in self.tables.values()
        ]
        created = await ensure_topics(settings.bootstrap_servers, settings.topic_prefix, changelogs)
        if created:
            log.info("created topics: %s", ", ".join(created))
        await super().on_first_start()

    async def on_started(self) -> None:
        await super().on_started()
        freeze_startup_heap()
        # Collections between bursts of copies, not inside them (gc_tuning.py).
        collector = IdleCollector(self.runtime.busy)
        collector.install()
        self.add_future(collector.run())
        self.started_up = True  # a gate of /readyz: the collection above is start-up work

    async def on_stop(self) -> None:
        """Run the agents' shutdown hooks (close broker sessions) before Faust stops."""
        for hook in self.runtime.shutdown_hooks:
            try:
                await hook()
            except Exception:  # noqa: BLE001 - every hook must run
                log.exception("shutdown hook %r failed", hook)
        await super().on_stop()


LAG_INTERVAL_S = 5.0


def install_lag_reporting(app: CopyTraderApp) -> None:
    """``copytrader_consumer_lag`` for Faust's consumer and any direct consumer of the worker
    (the Grafana panel "consumer lag")."""

    @jobs.timer(app, LAG_INTERVAL_S)
    async def report_consumer_lag() -> None:
        metrics.record_consumer_lag(app.monitor)
        for lags in app.runtime.lags:
            for tp, lag in lags().items():
                metrics.set_consumer_lag(tp.topic, tp.partition, lag)


def install_warmup(app: CopyTraderApp) -> None:
    """The worker's warm-up: every record type's codec, the producer's metadata and leader
    connections for the topics its roles produce to, then each role's own steps (the fan-out's
    throw-away plans and signal positions, the executor's positions, lanes, metric series and
    journal reads); run once the worker starts, before ``/readyz`` says ready
    (``agents/shared/warmup.py``)."""
    runtime = app.runtime
    warmup = runtime.warmup
    names = produced_topics(runtime.topics, runtime.settings.roles)

    async def warm_topics() -> None:
        await app.maybe_start_producer()
        await warm_producer(faust_producer(app), names)

    warmup.add("codecs", warm_codecs)
    warmup.add("producer: " + ", ".join(names), warm_topics)
    warmup.add_gate("worker started (start-up heap frozen)", lambda: app.started_up)
    if runtime.storage is not None:
        warmup.add_gate("database ready", runtime.storage.ready.is_set)
    if runtime.fanout is not None:
        fanout_warmup.install(warmup, runtime.fanout)
    if runtime.execution is not None:
        execution_warmup.install(warmup, runtime.execution)

    @jobs.task(app)
    async def warm_up() -> None:
        await warmup.run()


def empty_config() -> CopyConfig:
    return parse_config({"sessions": [], "accounts": [], "copy_groups": []}, env={})


def create_app(
    settings: Settings | None = None,
    config: CopyConfig | None = None,
    *,
    adapter_factory: Any = create_adapter,
    outbox: Outbox | None = None,
) -> CopyTraderApp:
    settings = settings or Settings.from_env()
    if config is None:
        config = load_config(settings.config_path) if settings.config_path else empty_config()
    apply_fetch_wait(settings.faust_fetch_wait_ms)
    apply_watching(settings.faust_fetch_min_bytes, node_linger=settings.watching_only)
    apply_retry_backoff(settings.kafka_retry_backoff_ms)
    apply_changelog_pause()
    (settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)
    app = CopyTraderApp(
        settings.app_id,
        broker=settings.kafka_broker,
        store=settings.store,
        datadir=str(settings.data_dir / "faust" / settings.app_id),
        autodiscover=False,
        web_enabled=True,  # every worker serves /healthz, /readyz and /metrics
        web_port=settings.web_port,
        web_host=settings.web_host,
        web_in_thread=False,
        producer_linger_ms=settings.faust_linger_ms,
        consumer_auto_offset_reset="earliest",
        processing_guarantee="at_least_once",
        topic_partitions=10,
        topic_replication_factor=1,
        broker_commit_every=100,
        broker_commit_interval=0.5,
        stream_wait_empty=False,
        # A dead worker's partitions move to a live one within ~10 s instead of Kafka's
        # default minute: follower orders must not wait a minute behind a crashed process.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
        Worker=CopyTraderWorker,  # no spinner: it turns on DEBUG logging for every library
    )
    topics = declare_topics(app, settings.topic_prefix)
    app.runtime = Runtime(
        settings=settings,
        config=config,
        topics=topics,
        outbox=outbox or TopicOutbox(topics),
        pool=SessionPool(config, adapter_factory),
        quotes=_quote_book(settings, config),
    )
    _install(app)
    return app


#: Roles that read prices: fan-out (price band), tracking (marks, slippage), web (marks, chart).
PRICE_ROLES = ("fanout", "track", "web")


def _quote_book(settings: Settings, config: CopyConfig) -> QuoteBook | None:
    """A QuoteBook when a market-data source is configured and this worker reads prices."""
    if config.market_data is None or not any(settings.has(role) for role in PRICE_ROLES):
        return None
    return QuoteBook(config.market_data.max_age_s)


def _install(app: CopyTraderApp) -> None:
    """Each role's stage, in the order a signal travels; every worker gets the probes."""
    runtime = app.runtime
    settings = runtime.settings
    heartbeat.install(app, runtime, app.assigned_partitions)
    price_feed.install(app, runtime)
    if settings.has("ingest"):
        runtime.ingest = ingest.install(app, runtime)
    if settings.has("fanout"):
        runtime.fanout = fanout.install(app, runtime)
    if settings.has("execute"):
        runtime.execution = execution.install(app, runtime)
    if runtime.ingest is not None or runtime.execution is not None:
        router = runtime.execution.router if runtime.execution is not None else None
        runtime.reconcile = reconcile.install(app, runtime, leaders=runtime.ingest is not None, router=router)
        consumer = runtime.execution.intent_consumer if runtime.execution is not None else None
        if runtime.reconcile.followers is not None and consumer is not None:
            runtime.reconcile.followers.copies_first = consumer.copies_first  # copies before looks
    if settings.has("track"):
        tracker.install(app, runtime, SPEC["trade.executions"].partitions, SPEC["broker.health"].partitions)
        runtime.notify = notify.install(app, runtime)
    if settings.has("store"):
        runtime.storage = storage_sink.install(app, runtime)
        if runtime.storage.consumer is not None:
            runtime.storage.consumer.share_decoding(runtime.decoded)
    install_warmup(app)
    api.install_probes(app, runtime, app.assigned_partitions, runtime.warmup)
    install_lag_reporting(app)
    if settings.has("web"):
        runtime.web = api.install(app, runtime)
        runtime.warmup.add_gate("dashboard feed positioned", runtime.web.feed.ready.is_set)
