"""Copy controls across processes: ``copy.controls`` records applied in every worker that needs them.

Why a plain aiokafka consumer with ``group_id=None`` and not a Faust agent or GlobalTable:
Faust agents of one app share a consumer group, so with two fan-out workers only one of them
would see a pause; a GlobalTable would do, but its changelog can only be written from inside
an agent's stream (the dashboard process has none), and its recovery is the part of Faust with
the most open reports. The topic is tiny (one compacted partition, one record per account), so
every fan-out worker simply reads it from the beginning and keeps following it: the last
record per key is the state. Every executor follows it too (dashboard accounts and their
logins, ``agents.execution.accounts``), and every web worker (the switches and the account list).

One feed per worker (:func:`worker_feed`), which every stage of it subscribes to: the executor's
accounts, guard edits and reconciliation, the fan-out's switches and the leader's snapshot
requests each had a consumer of their own, and each consumer polls the broker twice a second
even when nothing happens (#16, session 31: three in an idle executor).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from ...common.retrying import keep_running
from ...core.control_records import (
    ALL_ACCOUNTS,
    TOPIC,
    AccountCommand,
    AlertTokenCommand,
    ControlCommand,
    GuardsCommand,
    ReconcileCommand,
    RuleCommand,
    decode_command,
)
from ...core.topics import topic_name
from . import jobs
from .aiokafka_internals import retry_backoff_ms

if TYPE_CHECKING:
    import faust

    from .context import StageContext

log = logging.getLogger(__name__)
#: Every kind of record; each worker applies the kinds it uses and ignores the rest
#: (alert tokens are the web workers' alone).
Command = ControlCommand | RuleCommand | AccountCommand | AlertTokenCommand | ReconcileCommand | GuardsCommand
Apply = Callable[[Command], Any]
OnRefused = Callable[[int, str], Awaitable[None]]


class ControlsFeed:
    """Follows ``copy.controls`` from the beginning and hands each well-formed record to every
    subscriber's ``apply``, in the order they subscribed.

    ``caught_up`` is set once the records present at start have been applied, so callers that
    care (tests, readiness) can wait for the replay to finish. A record a subscriber refuses
    with ``ValueError``/``KeyError`` is logged and skipped by that subscriber (and reported
    through its ``on_refused``): one bad record must not stop the switches, and one stage's
    refusal does not keep the record from the others.
    """

    def __init__(
        self, bootstrap: str, prefix: str, apply: Apply | None = None, on_refused: OnRefused | None = None
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic_name(prefix, TOPIC)
        self.subscribers: list[tuple[Apply, OnRefused | None]] = []
        self.caught_up = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._next_offset = 0
        self._started = False
        if apply is not None:
            self.subscribe(apply, on_refused)

    def subscribe(self, apply: Apply, on_refused: OnRefused | None = None) -> ControlsFeed:
        """Add a stage's ``apply`` (before the feed runs: a later one would miss the replay)."""
        if self._started:
            raise RuntimeError("subscribe to copy.controls before the feed runs: the replay has begun")
        self.subscribers.append((apply, on_refused))
        return self

    async def sync(self, timeout_s: float = 2.0) -> bool:
        """Wait until every record published before this call has been applied (or timeout).

        For a worker about to refuse something it has not heard of (an intent for an unknown
        account): the record that defines it may have been published a moment earlier.
        """
        deadline = asyncio.get_running_loop().time() + timeout_s
        consumer = self._consumer
        if consumer is None:
            try:
                await asyncio.wait_for(self.caught_up.wait(), timeout_s)
            except TimeoutError:
                return False
            return True
        tp = TopicPartition(self.topic, 0)
        try:
            end = (await consumer.end_offsets([tp]))[tp]
        except Exception:  # noqa: BLE001 - a consumer restarting mid-call: the caller refuses with a reason
            log.warning("copy.controls end offset unavailable; not waiting for it")
            return False
        while self._next_offset < end:
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    async def run(self) -> None:
        """Consume until cancelled; a broker hiccup only delays commands, it never loses them."""
        self._started = True
        await keep_running(self._consume_and_close, "copy.controls consumer")

    async def _consume_and_close(self) -> None:
        try:
            await self._consume()
        finally:
            if self._consumer is not None:
                await self._consumer.stop()
                self._consumer = None

    async def _consume(self) -> None:
        self._consumer = consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            group_id=None,
            # One partition, drained record by record: the broker answers the long poll the
            # moment a command lands, and an idle feed costs two requests a second, not fifty.
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=500,
            retry_backoff_ms=retry_backoff_ms(),  # back off during a broker outage
        )
        await consumer.start()
        ends = await self._end_offsets(consumer)
        if not any(ends.values()):
            self.caught_up.set()
        async for message in consumer:
            await self.handle(message.offset, message.value or b"")
            self._next_offset = message.offset + 1
            end = ends.get(TopicPartition(message.topic, message.partition), 0)
            if not self.caught_up.is_set() and message.offset + 1 >= end:
                self.caught_up.set()  # one partition: the replay of what existed at start is done

    async def handle(self, offset: int, raw: bytes) -> bool:
        """Apply one record; a refused one is logged, reported (``on_refused``) and skipped,
        so one bad record never stops the switches that follow it. True when every
        subscriber applied it."""
        try:
            command = decode_command(raw)
        except (ValueError, KeyError, ArithmeticError) as exc:
            log.warning("ignored control record at offset %s: %s", offset, exc)
            for _, on_refused in self.subscribers:
                await _report(offset, exc, on_refused)
            return False
        applied = True
        for apply, on_refused in self.subscribers:
            try:
                result = apply(command)
                if asyncio.iscoroutine(result):
                    await result
            except (ValueError, KeyError, ArithmeticError) as exc:
                log.warning("control record at offset %s not applied by %s: %s", offset, _name(apply), exc)
                await _report(offset, exc, on_refused)
                applied = False
        return applied

    async def _end_offsets(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, int]:
        for _ in range(50):
            parts = consumer.assignment()
            if parts:
                return dict(await consumer.end_offsets(list(parts)))
            await asyncio.sleep(0.05)
        return {}


async def _report(offset: int, exc: Exception, on_refused: OnRefused | None) -> None:
    if on_refused is not None:
        await on_refused(offset, str(exc) or type(exc).__name__)


def _name(apply: Apply) -> str:
    """Which stage refused, for the log: a bound method's owner, else the function's name."""
    owner = getattr(apply, "__self__", None)
    return type(owner).__name__ if owner is not None else getattr(apply, "__qualname__", repr(apply))


def worker_feed(app: faust.App, ctx: StageContext) -> ControlsFeed:
    """This worker's one :class:`ControlsFeed`, made and started (as a task of ``app``) on the
    first call; every stage subscribes to it while it installs."""
    if ctx.controls is None:
        feed = ctx.controls = ControlsFeed(ctx.settings.bootstrap_servers, ctx.settings.topic_prefix)

        @jobs.task(app)
        async def follow_copy_controls() -> None:
            await feed.run()

    return ctx.controls


__all__ = [
    "ALL_ACCOUNTS",
    "TOPIC",
    "AccountCommand",
    "AlertTokenCommand",
    "Command",
    "ControlCommand",
    "ControlsFeed",
    "RuleCommand",
    "decode_command",
    "worker_feed",
]
