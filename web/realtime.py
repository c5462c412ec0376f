"""Live push: the web worker's own Kafka reader feeding ``LiveState`` and Socket.IO rooms.

Why a plain aiokafka consumer with ``group_id=None`` (manual assignment of every partition)
instead of a Faust agent: agents of one Faust app share a consumer group, so a second web
worker would get only half of the partitions and its browsers half of the rows. Each web
worker reads everything, so each can serve a full snapshot by itself.

Why rows are pushed with ``ignore_queue=True`` even with the Redis manager: every worker
already has every row, so sending rows through Redis would deliver each row once per worker.
The Redis manager (``COPYTRADER_REDIS_URL``) carries what only one process knows: a logout,
which must close that session's sockets on every worker.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
import socketio
from aiokafka import AIOKafkaConsumer, TopicPartition

from ..agents.shared.decoded_records import DecodedRecords
from ..common.retrying import keep_running
from ..core.control_records import TOPIC as CONTROLS_TOPIC
from ..core.control_records import (
    AccountCommand,
    AlertTokenCommand,
    ControlCommand,
    GuardsCommand,
    ReconcileCommand,
    RuleCommand,
    decode_command,
)
from ..core.records import AccountStatus, errors_of, executions_of, positions_of
from ..core.topics import SPEC, topic_name
from .auth import Auth, parse_cookie_header
from .live import STREAMS, LiveState, batch_sequence

log = logging.getLogger(__name__)
T = TypeVar("T")
BACKLOG_PER_PARTITION = 5000  # order log / errors: enough for today's figures, bounded start-up
FULL_HISTORY = ("positions.updates", "account.status", CONTROLS_TOPIC)
FEED_WAIT_MS = 250
FEED_MIN_BYTES = 32 * 1024
FEED_BATCH = 500  # records per fetch handed out: a catch-up after a restart stays small in memory
#: The feed's topics whose records carry several records each (decoded through ``decoded``).
BATCHED_TOPICS = ("trade.executions", "order.errors", "positions.updates")
FEED_TOPICS = ("trade.executions", "order.errors", "positions.updates", "account.status", CONTROLS_TOPIC)
SWEEP_S = 15.0
#: Rows per pushed message at most: a catch-up's thousands go as several small messages.
PUSH_CHUNK = 500


class _Json:
    """python-socketio's JSON hook: orjson, with Decimal as text (prices must not become floats)."""

    @staticmethod
    def dumps(obj: Any, **_: Any) -> str:
        return orjson.dumps(obj, default=str).decode()

    @staticmethod
    def loads(text: str | bytes, **_: Any) -> Any:
        return orjson.loads(text)


def session_room(token: str) -> str:
    return "session:" + hashlib.sha256(token.encode()).hexdigest()[:32]


class SocketHub:
    """Socket.IO server: authenticated connect, ``subscribe`` → snapshot + live rows."""

    def __init__(self, auth: Auth, live: LiveState, redis_url: str | None = None) -> None:
        self.auth = auth
        self.live = live
        manager = socketio.AsyncRedisManager(redis_url) if redis_url else None
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp", client_manager=manager, json=_Json, logger=False, engineio_logger=False
        )
        self.sio.on("connect", self._connect)
        self.sio.on("subscribe", self._subscribe)
        self.connected: dict[str, str] = {}  # sid → session token (this process only)

    def attach(self, web_app: Any) -> None:
        """Must run before Faust's web server starts (STACK.md)."""
        self.sio.attach(web_app)

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        cookies = parse_cookie_header(environ.get("HTTP_COOKIE"))
        session = await self.auth.session_for(cookies)
        if session is None:
            raise socketio.exceptions.ConnectionRefusedError("unauthorized")
        self.connected[sid] = session.token
        await self.sio.enter_room(sid, session_room(session.token))

    async def _subscribe(self, sid: str, data: Any) -> str:
        """Join the rooms first, then snapshot: a row applied in between arrives twice at most,
        and the browser drops it by its sequence number; it can never fall in a gap.

        The answer is JSON text, as the pushed rows are (:meth:`push`): a day's order log is
        tens of thousands of rows, and python-socketio's walk of every value looking for bytes
        took 0.4 s for 50,000 of them, a stall of this worker (and of the tracker beside it in
        the 3-process layout) on every page load; orjson encodes them in a tenth of that.
        """
        token = self.connected.get(sid)
        if token is None or await self.auth.sessions.get(token) is None:
            await self.sio.disconnect(sid)
            return _Json.dumps({"error": "unauthorized"})
        wanted = data.get("streams") if isinstance(data, dict) else None
        # Each name once: a list of the same name many times would be as many snapshots.
        if (
            not isinstance(wanted, list)
            or not 0 < len(wanted) <= len(STREAMS)
            or any(s not in STREAMS for s in wanted)
            or len(set(wanted)) < len(wanted)
        ):
            return _Json.dumps({"error": f"streams must be a non-empty list of {', '.join(STREAMS)}, each once"})
        for stream in wanted:
            await self.sio.enter_room(sid, f"stream:{stream}")
        return _Json.dumps({"snapshots": [self.live.snapshot(stream) for stream in wanted]})

    async def push(self, changes: list[tuple[str, dict[str, Any]]]) -> None:
        """A fetch's rows as one ``rows`` message per stream (in their order), to the pages in
        that stream's room; nothing is encoded for a room nobody on this worker is in.

        Why not a message per row: python-socketio encodes each emit and starts a task per
        page for it. At 200 followers one open dashboard cost the web worker about 85 µs per
        row, 0.3 ms per copy: as much as the tracker and the web feed together without it.
        Why the message is JSON text (the page parses it): python-socketio walks every value
        of an emitted object looking for bytes to send as attachments, and that walk was 84 %
        of a batched push; a text is one value.
        """
        by_stream: dict[str, list[dict[str, Any]]] = {}
        for stream, row in changes:
            by_stream.setdefault(stream, []).append(row)
        for stream, rows in by_stream.items():
            room = f"stream:{stream}"
            if not self._watched(room):
                continue
            for start in range(0, len(rows), PUSH_CHUNK):
                text = _Json.dumps({"stream": stream, "rows": rows[start : start + PUSH_CHUNK]})
                await self.sio.emit("rows", text, room=room, ignore_queue=True)

    def _watched(self, room: str) -> bool:
        """Whether a page on this worker is in ``room`` (pushes are local: ``ignore_queue``)."""
        return next(iter(self.sio.manager.get_participants("/", room)), None) is not None

    async def resync(self) -> None:
        """Ask every page on this worker to take fresh snapshots: a push was lost on the way.
        Once per page (not per room it joined); local, as the pushes are."""
        await self.sio.emit("resync", {}, ignore_queue=True)

    async def end_session(self, token: str) -> None:
        """Logout: tell that session's sockets on every worker (through Redis when present)."""
        await self.sio.emit("session_ended", {}, room=session_room(token))
        for sid, owner in list(self.connected.items()):
            if owner == token:
                await self.sio.disconnect(sid)

    async def sweep(self) -> None:
        """Close sockets whose session ended elsewhere (logout on another worker, expiry)."""
        while True:
            await asyncio.sleep(SWEEP_S)
            for sid, token in list(self.connected.items()):
                if await self.auth.sessions.get(token) is None:
                    await self.sio.disconnect(sid)
                    self.connected.pop(sid, None)


class KafkaFeed:
    """Reads the output topics (every partition) into ``LiveState`` and pushes the changes."""

    def __init__(
        self,
        bootstrap: str,
        prefix: str,
        live: LiveState,
        hub: SocketHub | None,
        *,
        decoded: DecodedRecords | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.live = live
        self.hub = hub
        self.ready = asyncio.Event()
        self.push_failures = 0  # the current streak, for one warning per streak
        self.skipped = 0  # records no stage could read (anyone with topic access writes them)
        # The next offset to read per partition, once the feed has read it: a restarted consumer
        # (a broker hiccup) resumes there. Seeking to the start-up backlog again would skip
        # whatever arrived beyond the backlog while it restarted (the state is kept, so those
        # rows would never show) and re-read what the state already holds.
        self._resume: dict[TopicPartition, int] = {}
        # Rule and account records replayed from copy.controls (the account registry applies
        # them, so it shows what the planners and executors apply).
        self.on_command: Callable[[RuleCommand | AccountCommand | AlertTokenCommand | GuardsCommand], None] | None = (
            None
        )
        # The worker's shared decoding: its tracker and database sink read the batched topics too.
        self.decoded = decoded if decoded is not None else DecodedRecords()
        if decoded is not None:
            for name in BATCHED_TOPICS:
                decoded.add_reader(topic_name(prefix, name))

    async def run(self) -> None:
        await keep_running(self._consume, "dashboard feed")

    def _partitions(self) -> list[TopicPartition]:
        return [
            TopicPartition(topic_name(self.prefix, name), p)
            for name in FEED_TOPICS
            for p in range(SPEC[name].partitions)
        ]

    async def _consume(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            # A fetch waits up to 250 ms for 32 KiB: while copies flow, one round trip carries
            # hundreds of records instead of the handful that arrived since the last one (each
            # fetch is a request, a response and a GIL hand-off in a worker the copy path shares
            # a small machine with, #16); a quiet feed still shows a record within 250 ms. Idle,
            # the feed's fetches (46 partitions each) were most of the worker's idle CPU at
            # 100 ms (docs/benchmarks.md, session 27).
            auto_offset_reset="earliest",
            fetch_max_wait_ms=FEED_WAIT_MS,
            fetch_min_bytes=FEED_MIN_BYTES,
            max_poll_records=FEED_BATCH,
        )
        await consumer.start()
        try:
            partitions = self._partitions()
            consumer.assign(partitions)
            begins = await consumer.beginning_offsets(partitions)
            ends = await consumer.end_offsets(partitions)
            for tp in partitions:
                bounded = not any(tp.topic == topic_name(self.prefix, n) for n in FULL_HISTORY)
                start = max(begins[tp], ends[tp] - BACKLOG_PER_PARTITION) if bounded else begins[tp]
                if tp in self._resume:
                    start = max(begins[tp], self._resume[tp])
                consumer.seek(tp, start)
            self.ready.set()
            while True:
                fetched = await consumer.getmany(timeout_ms=1000)
                for tp, messages in fetched.items():
                    if messages:
                        self._resume[tp] = messages[-1].offset + 1
                # One grid row per account a fetch touched, built after the fetch is applied:
                # a grid row is the account's whole row, replaced by the next, so the earlier
                # ones of a fetch would say nothing (``LiveState.batch``).
                with self.live.batch() as grid:
                    changes = [
                        change
                        for tp, messages in fetched.items()
                        for message in messages
                        for change in self._apply(
                            tp.topic[len(self.prefix) :], tp.partition, message.offset, message.value
                        )
                    ]
                changes += grid
                if changes and self.hub is not None:
                    await self._push(changes)
        finally:
            await consumer.stop()

    async def _push(self, changes: list[tuple[str, dict[str, Any]]]) -> None:
        """Push rows the state already holds; a failed push costs the feed nothing.

        Restarting the feed would not bring the lost rows to the pages (they are behind the
        pages' cursors by then). Instead, the first push that works again is preceded by a
        ``resync``: every page takes fresh snapshots, which hold the rows it missed. One
        warning per failure streak, not per row.
        """
        assert self.hub is not None
        try:
            if self.push_failures:
                await self.hub.resync()
            await self.hub.push(changes)
        except Exception as exc:  # noqa: BLE001 - a socket layer hiccup (Redis, an engine.io write)
            self.push_failures += 1
            if self.push_failures == 1:
                log.warning(
                    "dashboard push failed (%s: %s); pages resync when pushes work again", type(exc).__name__, exc
                )
        else:
            if self.push_failures:
                log.warning("dashboard pushes work again after %d failed; pages told to resync", self.push_failures)
                self.push_failures = 0

    def _decode(
        self, decode: Callable[[bytes], list[T]], topic: str, partition: int, offset: int, raw: bytes
    ) -> list[T]:
        return self.decoded.decode(decode, topic_name(self.prefix, topic), partition, offset, raw)

    def _apply(self, topic: str, partition: int, offset: int, value: bytes | None) -> list[tuple[str, dict[str, Any]]]:
        if value is None:
            return []
        try:
            if topic == "trade.executions":
                changes = []
                for index, execution in enumerate(self._decode(executions_of, topic, partition, offset, value)):
                    changes += self.live.apply_execution(execution, partition, batch_sequence(offset, index))
                return changes
            if topic == "order.errors":
                changes = []
                for index, error in enumerate(self._decode(errors_of, topic, partition, offset, value)):
                    changes += self.live.apply_error(error, partition, batch_sequence(offset, index))
                return changes
            if topic == "positions.updates":
                changes = []
                for index, position in enumerate(self._decode(positions_of, topic, partition, offset, value)):
                    changes += self.live.apply_position(position, partition, batch_sequence(offset, index))
                return changes
            if topic == "account.status":
                return self.live.apply_status(AccountStatus.loads(value))
            if topic == CONTROLS_TOPIC:
                command = decode_command(value)
                if isinstance(command, (RuleCommand, AccountCommand, AlertTokenCommand, GuardsCommand)):
                    if self.on_command is not None:
                        self.on_command(command)
                    if isinstance(command, AccountCommand):
                        return self.live.apply_account(command.account_id, command.platform)
                    return []
                if isinstance(command, ReconcileCommand):
                    return []  # a request for the executors; its answer arrives on account.status
                assert isinstance(command, ControlCommand)
                return self.live.apply_control(command.account_id, command.paused)
        except Exception as exc:  # noqa: BLE001 - one bad record must not stop the dashboard
            self.skipped += 1
            if self.skipped % 1000 == 1:  # the first, then one line a thousand: a flood must not flood the log
                log.warning(
                    "dashboard skipped a record on %s[%s]@%s: %s (%d skipped so far)",
                    *(topic, partition, offset, type(exc).__name__, self.skipped),
                )
        return []
