"""Process settings from the environment (``COPYTRADER_*``), with embedded defaults.

A user with a Kafka cluster sets ``COPYTRADER_KAFKA_BROKER`` and nothing else changes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

ALL_ROLES = ("ingest", "fanout", "execute", "track", "web")
EXTRA_ROLES = ("store",)  # the database sink (agents/tracking/storage_sink.py)


def _env(name: str, default: str) -> str:
    return os.environ.get(f"COPYTRADER_{name}", default)


EXECUTOR_CONSUMERS = ("direct", "faust")
FANOUT_CONSUMERS = ("direct", "faust")
_GROUP_ID = re.compile(r"[A-Za-z0-9._-]{1,249}")


def _group_ids(name: str, value: str) -> tuple[str, ...]:
    """A comma list of Kafka consumer group ids (Kafka's legal characters and length)."""
    ids = tuple(part.strip() for part in value.split(",") if part.strip())
    for group in ids:
        if not _GROUP_ID.fullmatch(group):
            raise ValueError(f"COPYTRADER_{name}: {group!r} is not a consumer group id (A-Z a-z 0-9 . _ -, 1-249)")
    return ids


def _executor_consumer(value: str) -> str:
    if value not in EXECUTOR_CONSUMERS:
        raise ValueError(f"COPYTRADER_EXECUTOR_CONSUMER: {value!r}; known: {EXECUTOR_CONSUMERS}")
    return value


def _fanout_consumer(value: str) -> str:
    if value not in FANOUT_CONSUMERS:
        raise ValueError(f"COPYTRADER_FANOUT_CONSUMER: {value!r}; known: {FANOUT_CONSUMERS}")
    return value


def _positive(name: str, value: float) -> float:
    if not value > 0:
        raise ValueError(f"COPYTRADER_{name}: must be positive, got {value!r}")
    return value


MAX_LINGER_MS = 1000.0


def _linger(name: str, value: float) -> float:
    """A producer linger: 0 to a second (NaN and infinities refused: they would stall sends)."""
    if not 0 <= value <= MAX_LINGER_MS:
        raise ValueError(f"COPYTRADER_{name}: must be between 0 and {MAX_LINGER_MS:g} ms, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Settings:
    app_id: str = "copytrader"
    kafka_broker: str = "kafka://127.0.0.1:9092"
    topic_prefix: str = ""
    config_path: str | None = None
    data_dir: Path = Path("var")
    web_port: int = 6066
    web_host: str = "127.0.0.1"
    # ``/metrics`` on a port of its own (and not on the dashboard's); 0: on the web port.
    metrics_port: int = 0
    store: str = "memory://"
    roles: tuple[str, ...] = ALL_ROLES
    # 0: a signal's intent batches are appended in one loop turn, so the sender takes them all
    # in one request; with a linger the first batch went alone and the rest waited for its
    # answer (aiokafka keeps one request in flight per broker). Measured in docs/benchmarks.md.
    producer_linger_ms: float = 0.0
    # The producer of a worker that is not on the copy path's way in (executor, tracker, store,
    # web): a few milliseconds let outcomes, positions and changelog records leave in batches,
    # and every consumer downstream then fetches and decodes them in batches too. Measured in
    # docs/benchmarks.md ("Batching the records behind the copy path"): the tracker, store and
    # web workers' CPU per copy fell to about a third. A copy never waits for these records.
    background_linger_ms: float = 5.0
    # Fan-out's Faust consumer (trade.signals, COPYTRADER_FANOUT_CONSUMER=faust): a long poll,
    # which the broker answers the moment a signal lands. A 5 ms poll measured no faster and
    # cost 7 % of a core in Faust's consumer thread plus the broker's CPU for 200 empty fetches
    # a second. The price: a partition Faust resumes while a fetch is in flight (start-up, a
    # rebalance) waits for that fetch to return, at most this long.
    fetch_max_wait_ms: int = 100
    # Faust's consumer in a worker whose Faust agents are off the copy path (tracker, store,
    # web; the executor with the direct consumer). In the fan-out and the executor (direct
    # consumers) it holds only Faust's own ``__assignor-__leader`` topic; at 100 ms each of
    # them polled that ten times a second, a third of an idle worker's fetches (#16, session 31).
    background_fetch_wait_ms: int = 500
    # A worker that only watches (roles within track, store, web: nothing waits on it): its
    # Faust consumer's fetch waits up to this long for this many bytes, and its producer
    # lingers this long, so one round trip carries what arrived meanwhile instead of one per
    # record and the idle worker polls 4 times a second, not 10 (docs/benchmarks.md, session 26).
    watch_fetch_wait_ms: int = 250
    watch_fetch_min_bytes: int = 16 * 1024
    watch_linger_ms: float = 25.0
    # The executor's direct consumer drains everything it fetched at once, so aiokafka's next
    # fetch always covers every partition and the broker answers it the moment an intent
    # lands: a long poll costs no latency there, and saves 200 empty round trips a second.
    intent_fetch_wait_ms: int = 500
    # Who consumes orders.requests in the executor: "direct" (a plain aiokafka consumer in the
    # worker's loop, the low-latency path) or "faust" (the Faust agent); see agents/execution/agent.py.
    executor_consumer: str = "direct"
    # Who consumes trade.signals in the fan-out: "direct" (a plain aiokafka consumer in the
    # worker's loop, without Faust's consumer thread and stream machinery) or "faust" (the
    # Faust agent); see agents/fanout/agent.py.
    fanout_consumer: str = "direct"
    # The fan-out's direct consumer hands every fetched signal on before it fetches again, so
    # its next fetch covers every partition and the broker answers it the moment a signal
    # lands: a long poll costs no latency (as intent_fetch_wait_ms).
    signal_fetch_wait_ms: int = 500
    database_url: str | None = None
    redis_url: str | None = None
    # One total budget per copy (executor, transport, re-authentication and lookups together):
    # what cannot be settled within it is reported (unknown or rejected), never retried later.
    copy_deadline_s: float = 5.0
    # How long the executor's attempt journal keeps an intent's row (data dir, SQLite).
    journal_keep_h: float = 72.0
    heartbeat_interval_s: float = 1.0
    # How long Faust's Kafka clients wait before retrying a failed request or reconnecting
    # (aiokafka's default is 100 ms: during a broker outage each client then retried ten times
    # a second, each retry a log line). Only failed requests wait; the copy path never does.
    kafka_retry_backoff_ms: int = 500
    status_interval_s: float = 5.0
    # Consumer groups whose committed offsets a direct consumer adopts on its first start, in
    # order, before its own app id's group: an executor moved to an app id of its own (the Helm
    # chart's role groups) continues where the old worker's group stopped instead of replaying
    # orders.requests from the earliest record.
    adopt_offsets_from: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> Settings:
        roles = tuple(r.strip() for r in _env("ROLES", ",".join(ALL_ROLES)).split(",") if r.strip())
        unknown = set(roles) - set(ALL_ROLES) - set(EXTRA_ROLES)
        if unknown:
            raise ValueError(f"COPYTRADER_ROLES: unknown role(s) {sorted(unknown)}; known: {ALL_ROLES}")
        data_dir = Path(_env("DATA_DIR", "var")).resolve()
        return cls(
            app_id=_env("APP_ID", "copytrader"),
            kafka_broker=_env("KAFKA_BROKER", "kafka://127.0.0.1:9092"),
            topic_prefix=_env("TOPIC_PREFIX", ""),
            config_path=os.environ.get("COPYTRADER_CONFIG"),
            data_dir=data_dir,
            web_port=int(_env("WEB_PORT", "6066")),
            web_host=_env("WEB_HOST", "127.0.0.1"),
            metrics_port=int(_env("METRICS_PORT", "0")),
            store=_env("STORE", "memory://"),
            roles=roles,
            producer_linger_ms=_linger("PRODUCER_LINGER_MS", float(_env("PRODUCER_LINGER_MS", "0"))),
            background_linger_ms=_linger("BACKGROUND_LINGER_MS", float(_env("BACKGROUND_LINGER_MS", "5"))),
            fetch_max_wait_ms=int(_env("FETCH_MAX_WAIT_MS", "100")),
            background_fetch_wait_ms=int(_env("BACKGROUND_FETCH_WAIT_MS", "500")),
            intent_fetch_wait_ms=int(_env("INTENT_FETCH_WAIT_MS", "500")),
            watch_fetch_wait_ms=int(_env("WATCH_FETCH_WAIT_MS", "250")),
            watch_fetch_min_bytes=int(_env("WATCH_FETCH_MIN_BYTES", str(16 * 1024))),
            watch_linger_ms=_linger("WATCH_LINGER_MS", float(_env("WATCH_LINGER_MS", "25"))),
            executor_consumer=_executor_consumer(_env("EXECUTOR_CONSUMER", "direct")),
            fanout_consumer=_fanout_consumer(_env("FANOUT_CONSUMER", "direct")),
            signal_fetch_wait_ms=int(_env("SIGNAL_FETCH_WAIT_MS", "500")),
            database_url=os.environ.get("COPYTRADER_DATABASE_URL"),
            redis_url=os.environ.get("COPYTRADER_REDIS_URL"),
            copy_deadline_s=_positive("COPY_DEADLINE_S", float(_env("COPY_DEADLINE_S", "5"))),
            journal_keep_h=_positive("JOURNAL_KEEP_H", float(_env("JOURNAL_KEEP_H", "72"))),
            heartbeat_interval_s=float(_env("HEARTBEAT_INTERVAL_S", "1")),
            kafka_retry_backoff_ms=int(
                _positive("KAFKA_RETRY_BACKOFF_MS", float(_env("KAFKA_RETRY_BACKOFF_MS", "500")))
            ),
            status_interval_s=float(_env("STATUS_INTERVAL_S", "5")),
            adopt_offsets_from=_group_ids("ADOPT_OFFSETS_FROM", _env("ADOPT_OFFSETS_FROM", "")),
        )

    def has(self, role: str) -> bool:
        return role in self.roles

    @property
    def faust_consumer_on_copy_path(self) -> bool:
        """Does a copy wait on this worker's Faust consumer? Only where a stage consumes through
        it: ``COPYTRADER_FANOUT_CONSUMER=faust`` or ``COPYTRADER_EXECUTOR_CONSUMER=faust``."""
        return (self.has("fanout") and self.fanout_consumer == "faust") or (
            self.has("execute") and self.executor_consumer == "faust"
        )

    @property
    def faust_linger_ms(self) -> float:
        """The linger of this worker's Faust producer: none where a copy's intents are produced
        (ingest, fan-out), a short batching window everywhere else."""
        on_copy_path = self.has("ingest") or self.has("fanout")
        if self.watching_only:
            return self.watch_linger_ms
        return self.producer_linger_ms if on_copy_path else self.background_linger_ms

    @property
    def watching_only(self) -> bool:
        """Does this worker only watch (tracker, database sink, dashboard), so that no copy, no
        kill switch and no other worker waits on what it consumes or produces?"""
        return bool(self.roles) and set(self.roles) <= {"track", "store", "web"}

    @property
    def faust_fetch_min_bytes(self) -> int:
        """The bytes a fetch of this worker's Faust consumer waits for (up to its fetch wait):
        one on any worker a copy may wait on (answered the moment a record lands)."""
        return self.watch_fetch_min_bytes if self.watching_only else 1

    @property
    def faust_fetch_wait_ms(self) -> int:
        """The fetch wait for this worker's Faust consumer. aiokafka sends no new fetch while one
        is in flight, so the wait bounds how long a partition that was left out of it (records
        still buffered, or just resumed) waits for its next fetch."""
        if self.watching_only:
            return self.watch_fetch_wait_ms
        return self.fetch_max_wait_ms if self.faust_consumer_on_copy_path else self.background_fetch_wait_ms

    @property
    def bootstrap_servers(self) -> str:
        """``kafka://a:9092;b:9092`` → ``a:9092,b:9092`` for plain aiokafka clients."""
        return ",".join(u.split("://", 1)[-1] for u in self.kafka_broker.replace(";", ",").split(","))
