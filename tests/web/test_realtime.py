"""Socket.IO push from the real Kafka feed: authenticated connect, snapshot + rows with
sequence numbers, the feed's start-up seek (a bounded backlog of the order log and errors, the
full history of positions), and the reconnect rule: a page that comes back takes a fresh
snapshot and keeps only what lies beyond its last seen position — no gap, no duplicate."""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from typing import Any

import pytest
import socketio
from waiting import wait_until
from webtest_helpers import KafkaWeb, Web

from copytrader.core.records import Execution, OrderError, Position
from copytrader.web import realtime
from copytrader.web.live import batch_sequence

pytestmark = [pytest.mark.kafka]
STREAMS = ["orders", "errors", "positions", "grid"]
BACKLOG = 3  # the feed's per-partition backlog, made small so the test can publish past it


def execution(n: int, account: str = "f001") -> Execution:
    return Execution(
        execution_id=f"e{n}",
        account_id=account,
        platform="paper",
        kind="ack",
        signal_id=f"leader-1:{n}:new",
        client_order_id=f"c{n}",
        request_outcome=True,
        symbol="ESZ6",
        side="buy",
        quantity=1,
        stamps={"detected": 1.0, "acked": 1.02},
    )


def error(n: int, account: str = "f002", code: str = "PAUSED") -> OrderError:
    return OrderError(
        error_id=f"x{n}",
        stage="fanout",
        reason="follower paused or disabled",
        account_id=account,
        signal_id=f"leader-1:{n}:new",
        code=code,
    )


def sequence_key(stream: str, row: dict[str, Any]) -> tuple[str, int]:
    return ("0", row["_v"]) if stream == "grid" else (str(row["_p"]), row["_o"])


IDENT = {"orders": "execution_id", "errors": "error_id", "positions": "key"}  # a row's id, per stream


class Page:
    """A page across reconnects, with the rule of web/static/js/live.js.

    ``seen`` holds, per stream, every row the page took in, across connections: from each
    snapshot only what lies beyond its last seen position (its cursor), then pushed rows beyond
    it. ``raw`` is every push on the current connection, as delivered.
    """

    def __init__(self) -> None:
        self.cursor: dict[str, dict[str, int]] = {}
        self.seen: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.grid: dict[str, dict[str, Any]] = {}
        self.raw: list[tuple[str, dict[str, Any]]] = []
        self.messages = 0  # pushed messages (each carries one stream's rows of a fetch)
        self._pending: list[tuple[str, dict[str, Any]]] = []
        self._ready = False
        self.resyncs = 0  # fresh snapshots the worker asked for
        self.resumed_from_snapshot = 0  # rows a reconnect's snapshot held beyond the last seen position

    def accept(self, stream: str, row: dict[str, Any]) -> bool:
        key, seq = sequence_key(stream, row)
        cursor = self.cursor.setdefault(stream, {})
        if cursor.get(key, -1) >= seq:
            return False
        cursor[key] = seq
        if stream == "grid":
            self.grid[row["account_id"]] = row
        else:
            self.seen[stream].append(row)
        return True

    def on_rows(self, text: str) -> None:
        """One pushed message: a fetch's rows of one stream, in their order, as JSON text."""
        data = json.loads(text)
        self.messages += 1
        for row in data["rows"]:
            self.raw.append((data["stream"], row))
            if self._ready:
                self.accept(data["stream"], row)
            else:  # held until the snapshot, as live.js holds them
                self._pending.append((data["stream"], row))

    def on_snapshots(self, snapshots: list[dict[str, Any]], resumed: bool, replace: bool = False) -> None:
        """``replace``: live.js's answer to ``resync`` — each snapshot replaces the stream's view."""
        for snap in snapshots:
            if replace:
                self.cursor[snap["stream"]] = {}
                self.seen[snap["stream"]].clear()
            if snap["stream"] == "grid":  # derived and versioned per process: replaced whole
                self.cursor["grid"] = {}
                self.grid.clear()
            for row in snap["rows"]:
                if self.accept(snap["stream"], row) and resumed and snap["stream"] != "grid":
                    self.resumed_from_snapshot += 1
            cursor = self.cursor.setdefault(snap["stream"], {})
            for key, seq in snap["cursor"].items():
                cursor[key] = max(cursor.get(key, -1), int(seq))
        self._ready = True
        for stream, row in self._pending:
            self.accept(stream, row)
        self._pending.clear()

    def ids(self, stream: str) -> dict[int, list[str]]:
        """Per partition, the ids in the order the page took them in."""
        out: dict[int, list[str]] = defaultdict(list)
        for row in self.seen[stream]:
            out[row["_p"]].append(row[IDENT[stream]])
        return dict(out)

    def duplicate_pushes(self) -> list[tuple[str, tuple[str, int]]]:
        counts = Counter((s, sequence_key(s, r)) for s, r in self.raw if s != "grid")
        return [k for k, n in counts.items() if n > 1]

    def mark(self) -> tuple[int, dict[str, dict[str, int]]]:
        """Where the page stands now: pushes so far on this connection, and its cursors."""
        return len(self.raw), {s: dict(c) for s, c in self.cursor.items()}

    def pushed_again_since(self, mark: tuple[int, dict[str, dict[str, int]]]) -> list[tuple[str, tuple[str, int]]]:
        """Rows pushed after ``mark`` that the page had already taken in before it."""
        count, cursor = mark
        return [
            (s, (k, q))
            for s, r in self.raw[count:]
            if s != "grid"
            for k, q in [sequence_key(s, r)]
            if q <= cursor.get(s, {}).get(k, -1)
        ]


async def connect(web: Web, page: Page, *, resumed: bool = False) -> socketio.AsyncClient:
    # The test client's HTTP session carries the session cookie on every request, as a browser does.
    page.raw, page._ready = [], False
    client = socketio.AsyncClient(reconnection=False, http_session=web.client.session)
    client.on("rows", page.on_rows)

    async def resync(_: Any) -> None:
        page._ready = False
        again = json.loads(await client.call("subscribe", {"streams": STREAMS}, timeout=5))
        page.on_snapshots(again["snapshots"], resumed=True, replace=True)
        page.resyncs += 1

    client.on("resync", resync)
    await client.connect(str(web.client.make_url("/")), transports=["websocket"], wait_timeout=5)
    answer = json.loads(await client.call("subscribe", {"streams": STREAMS}, timeout=5))
    page.on_snapshots(answer["snapshots"], resumed)
    return client


class Publisher:
    """Publishes what the leader's followers would produce, and remembers it per partition."""

    def __init__(self, web: KafkaWeb) -> None:
        self.web = web
        self.expected: dict[str, dict[int, list[str]]] = {
            s: defaultdict(list) for s in ("orders", "errors", "positions")
        }
        self.count = 0
        self.offsets: dict[str, dict[str, int]] = {s: {} for s in ("orders", "errors", "positions")}

    def _took(self, stream: str, partition: int, offset: int, ident: str) -> None:
        self.expected[stream][partition].append(ident)
        self.offsets[stream][str(partition)] = offset
        self.count += 1

    async def execution(self, n: int, partition: int) -> None:
        self._took("orders", *await self.web.publish("trade.executions", execution(n), partition), f"e{n}")

    async def error(self, n: int, partition: int) -> None:
        self._took("errors", *await self.web.publish("order.errors", error(n), partition), f"x{n}")

    async def position(self, n: int, partition: int) -> None:
        record = Position(account_id="f003", symbol=f"S{n}", net_quantity=n)
        self._took("positions", *await self.web.publish("positions.updates", record, partition), f"f003|S{n}")

    async def stream(self, first: int, last: int) -> None:
        """Records keep arriving: executions over three partitions, an error every fifth."""
        for n in range(first, last):
            await self.execution(n, n % 3)
            if n % 5 == 0:
                await self.error(n, n % 2)
            await asyncio.sleep(0.01)  # paces the stream so the page's disconnect falls mid-way

    def backlog_tail(self) -> None:
        """What the feed should keep of records published before it started: the last
        ``BACKLOG`` per partition of the order log and errors; every position."""
        for stream in ("orders", "errors"):
            for p, ids in self.expected[stream].items():
                self.expected[stream][p] = ids[-BACKLOG:]


async def test_a_socket_without_a_session_is_refused(web: Web) -> None:
    client = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(str(web.client.make_url("/")), transports=["websocket"], wait_timeout=5)


async def test_reconnect_resumes_from_the_last_seen_position_without_gap_or_duplicate(
    kafka_web: KafkaWeb, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(realtime, "BACKLOG_PER_PARTITION", BACKLOG)
    web, published = kafka_web, Publisher(kafka_web)
    # Before the worker starts: more than the backlog on some partitions, less on others.
    for n in range(5):
        await published.execution(n, 0)
        await published.error(n, 0)
        await published.position(n, 0)
    for n in range(5, 7):
        await published.execution(n, 1)
    published.backlog_tail()
    await web.start_feed()
    await web.login()
    page = Page()
    client = await connect(web, page)
    await wait_until(
        lambda: page.ids("orders") == dict(published.expected["orders"]),
        timeout_s=20,
        what="the backlog on the first connection",
        observe=lambda: page.ids("orders"),
    )

    stream = asyncio.ensure_future(published.stream(100, 160))
    try:
        taken = len(page.seen["orders"])
        await wait_until(
            lambda: len(page.seen["orders"]) >= taken + 10,
            timeout_s=20,
            what="ten live rows pushed to the first connection",
            observe=lambda: len(page.seen["orders"]),
        )
        await client.disconnect()  # mid-stream: records keep arriving while the page is away
        away_from = published.count
        await wait_until(
            lambda: published.count >= away_from + 10,
            timeout_s=20,
            what="ten records published while the page is away",
            observe=lambda: published.count,
        )
        # The feed applies them while the page is away (within its fetch wait), so the
        # reconnect's snapshot is what must fill the page's gap.
        away = {s: dict(o) for s, o in published.offsets.items()}
        await wait_until(
            lambda: all(
                web.ctx.feed.live.cursors[s].get(p, -1) >= batch_sequence(o, 0)
                for s, offsets in away.items()
                for p, o in offsets.items()
            ),
            timeout_s=20,
            what="the feed applied what was published while the page was away",
            observe=lambda: web.ctx.feed.live.cursors,
        )
        client = await connect(web, page, resumed=True)
        # The worker's consumer restarts mid-stream (a broker hiccup) once it has applied what
        # was published so far: it seeks again and re-reads its backlog (every position), which
        # must not reach the page a second time.
        published_so_far = {s: dict(o) for s, o in published.offsets.items()}
        await wait_until(
            lambda: all(
                page.cursor.get(s, {}).get(p, -1) >= o
                for s, offsets in published_so_far.items()
                for p, o in offsets.items()
            ),
            timeout_s=20,
            what="the page caught up before the feed's restart",
            observe=lambda: page.cursor,
        )
        before_restart = page.mark()
        assert web.feed_task is not None
        web.feed_task.cancel()
        await asyncio.gather(web.feed_task, return_exceptions=True)
        await web.start_feed()
        await stream
        await published.position(5, 0)  # read after the restarted feed's re-read of positions
    finally:
        stream.cancel()

    def complete() -> bool:
        return all(page.ids(s) == dict(published.expected[s]) for s in ("orders", "errors", "positions"))

    await wait_until(
        complete,
        timeout_s=20,
        what="every published record on the page",
        observe=lambda: {s: (page.ids(s), dict(published.expected[s])) for s in ("orders", "errors", "positions")},
    )
    await client.disconnect()
    # Exactly once, in order (per partition, as Kafka orders them): the equal lists above say
    # both. The start-up backlog was bounded for the order log, whole for positions:
    assert page.ids("orders")[0][:3] == ["e2", "e3", "e4"] and page.ids("orders")[1][:2] == ["e5", "e6"]
    assert page.ids("positions") == {0: [f"f003|S{n}" for n in range(6)]}  # positions: full history
    assert page.resumed_from_snapshot > 0, "the reconnect's snapshot filled no gap: nothing was missed?"
    assert page.duplicate_pushes() == []
    assert page.pushed_again_since(before_restart) == []  # the restarted feed's re-read stayed in the worker
    assert page.grid["f002"]["last_outcome"] == "skipped: PAUSED"
    assert page.grid["f001"]["last_outcome"] == "copied"


async def test_a_failed_push_costs_the_feed_nothing_and_the_page_resyncs(
    kafka_web: KafkaWeb, monkeypatch: pytest.MonkeyPatch
) -> None:
    web, published = kafka_web, Publisher(kafka_web)
    await web.start_feed()
    await web.login()
    page = Page()
    client = await connect(web, page)
    hub = web.ctx.hub
    real_push, failed = hub.push, []

    async def push_failing_once(changes: list[tuple[str, dict[str, Any]]]) -> None:
        if not failed and any(row.get("execution_id") == "e1" for _, row in changes):
            failed.append(changes)
            raise ConnectionError("redis went away")
        await real_push(changes)

    monkeypatch.setattr(hub, "push", push_failing_once)
    await published.execution(1, 0)
    # The next record, after the failed push (one fetch may carry several records: then they
    # share one push, and the resync comes with the push after it).
    await wait_until(lambda: bool(failed), timeout_s=20, what="the push of e1 failed")
    await published.execution(2, 0)
    await wait_until(
        lambda: page.ids("orders").get(0) == ["e1", "e2"],
        timeout_s=20,
        what="the row whose push failed on the page, from the resync's snapshot, then the next",
        observe=lambda: page.ids("orders"),
    )
    assert failed, "the push never failed: the test proved nothing"
    assert page.resyncs == 1
    assert web.feed_task is not None and not web.feed_task.done(), "the feed stopped on a failed push"
    await published.execution(3, 0)
    await wait_until(lambda: page.ids("orders").get(0) == ["e1", "e2", "e3"], timeout_s=20, what="pushes go on")
    await client.disconnect()


async def test_logout_closes_the_sessions_sockets(web: Web) -> None:
    await web.login()
    ended = asyncio.Event()
    client = socketio.AsyncClient(reconnection=False, http_session=web.client.session)
    client.on("session_ended", lambda data: ended.set())
    await client.connect(str(web.client.make_url("/")), transports=["websocket"], wait_timeout=5)
    assert (await web.client.delete("/api/session", headers=web.write_headers())).status == 200
    await asyncio.wait_for(ended.wait(), 3)
    await wait_until(lambda: not client.connected, timeout_s=3, what="the socket closed by the server")
    await client.disconnect()


async def test_a_fetchs_rows_go_as_one_message_per_watched_stream(web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    """A message per stream and fetch (cut at ``PUSH_CHUNK`` rows), rows in their order; a
    stream no page on the worker watches is not encoded at all (#16: a message per row cost
    an open dashboard about 85 µs a row in the web worker)."""
    await web.login()
    received: list[tuple[str, list[dict[str, Any]]]] = []
    client = socketio.AsyncClient(reconnection=False, http_session=web.client.session)
    client.on("rows", lambda text: received.append((json.loads(text)["stream"], json.loads(text)["rows"])))
    await client.connect(str(web.client.make_url("/")), transports=["websocket"], wait_timeout=5)
    try:
        await client.call("subscribe", {"streams": ["orders", "grid"]}, timeout=5)
        hub = web.ctx.hub
        emitted: list[str] = []
        emit = hub.sio.emit

        async def counting_emit(event: str, data: Any, **kw: Any) -> None:
            emitted.append(json.loads(data)["stream"])
            await emit(event, data, **kw)

        monkeypatch.setattr(hub.sio, "emit", counting_emit)
        orders = 2 * realtime.PUSH_CHUNK + 7
        changes = [("orders", {"_p": 0, "_o": n}) for n in range(orders)]
        changes += [("positions", {"_p": 0, "_o": n}) for n in range(3)]  # nobody watches it
        changes.insert(5, ("grid", {"_v": 1, "account_id": "f001"}))
        await hub.push(changes)
        await wait_until(lambda: sum(len(rows) for _, rows in received) == orders + 1, timeout_s=5, what="the rows")
        assert [(s, len(rows)) for s, rows in received] == [
            ("orders", realtime.PUSH_CHUNK),
            ("orders", realtime.PUSH_CHUNK),
            ("orders", 7),
            ("grid", 1),
        ]
        assert [row["_o"] for s, rows in received if s == "orders" for row in rows] == list(range(orders))
        assert "positions" not in emitted
    finally:
        await client.disconnect()


async def test_subscribe_answers_json_text_and_refuses_what_is_not_a_list_of_streams(web: Web) -> None:
    """The answer is text the page parses (a day's snapshot is not walked value by value by
    python-socketio); a wrong request gets the reason, and no room."""
    await web.login()
    client = socketio.AsyncClient(reconnection=False, http_session=web.client.session)
    await client.connect(str(web.client.make_url("/")), transports=["websocket"], wait_timeout=5)
    try:
        many = ["orders"] * 100_000  # as many snapshots of a day's order log, were it taken
        for bad in ([], ["orders", "nope"], "orders", None, [1], ["grid", "grid"], many, [[]], [{}]):
            answer = json.loads(await client.call("subscribe", {"streams": bad}, timeout=5))
            assert answer == {"error": "streams must be a non-empty list of orders, errors, positions, grid, each once"}
        text = await client.call("subscribe", {"streams": ["orders", "grid"]}, timeout=5)
        assert isinstance(text, str)
        assert [s["stream"] for s in json.loads(text)["snapshots"]] == ["orders", "grid"]
    finally:
        await client.disconnect()
