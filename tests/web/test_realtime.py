"""Socket.IO push: authenticated connect, snapshot + rows with sequence numbers, and the
reconnect rule (fresh snapshot, then drop rows at or below its cursor: no gap, no duplicate)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import socketio
from copytrader.core.records import Execution, OrderError
from webtest_helpers import Web


def execution(n: int, account: str = "f001") -> Execution:
    return Execution(execution_id=f"e{n}", account_id=account, platform="paper", kind="ack", signal_id=f"leader-1:{n}:new",
                     client_order_id=f"c{n}", request_outcome=True, symbol="ESZ6", side="buy", quantity=1,
                     stamps={"detected": 1.0, "acked": 1.02})


class Browser:
    """The page's rule from web/static/js/live.js, in Python."""

    def __init__(self) -> None:
        self.cursor: dict[str, dict[str, int]] = {}
        self.rows: dict[str, list[dict[str, Any]]] = {}

    def snapshot(self, snap: dict[str, Any]) -> None:
        self.cursor[snap["stream"]] = {k: int(v) for k, v in snap["cursor"].items()}
        self.rows[snap["stream"]] = list(snap["rows"])

    def row(self, stream: str, row: dict[str, Any]) -> None:
        key, seq = ("0", row["_v"]) if stream == "grid" else (str(row["_p"]), row["_o"])
        cursor = self.cursor.setdefault(stream, {})
        if cursor.get(key, -1) >= seq:
            return
        cursor[key] = seq
        self.rows.setdefault(stream, []).append(row)


async def connect(web: Web, browser: Browser, received: list[tuple[str, dict[str, Any]]]) -> socketio.AsyncClient:
    # The test client's HTTP session carries the session cookie on every request, as a browser does.
    client = socketio.AsyncClient(reconnection=False, http_session=web.client.session)
    client.on("row", lambda data: received.append((data["stream"], data["row"])))
    await client.connect(str(web.client.make_url("/")), transports=["websocket"], wait_timeout=5)
    answer = await client.call("subscribe", {"streams": ["orders", "errors", "grid"]}, timeout=5)
    for snap in answer["snapshots"]:
        browser.snapshot(snap)
    return client


async def pump(web: Web, changes: list[tuple[str, dict[str, Any]]]) -> None:
    await web.ctx.hub.push(changes)


async def test_a_socket_without_a_session_is_refused(web: Web) -> None:
    client = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(str(web.client.make_url("/")), transports=["websocket"], wait_timeout=5)


async def test_reconnect_gets_a_fresh_snapshot_then_the_stream_without_gap_or_duplicate(web: Web) -> None:
    await web.login()
    live = web.ctx.live
    for n in range(3):
        await pump(web, live.apply_execution(execution(n), n % 2, n))
    browser, received = Browser(), []
    client = await connect(web, browser, received)
    assert [r["execution_id"] for r in browser.rows["orders"]] == ["e0", "e1", "e2"]
    await pump(web, live.apply_execution(execution(3), 1, 3))
    await pump(web, live.apply_error(OrderError(error_id="x", stage="fanout", reason="follower paused or disabled",
                                                account_id="f002", signal_id="leader-1:3:new", code="PAUSED"), 0, 0))
    await asyncio.sleep(0.3)
    for stream, row in received:
        browser.row(stream, row)
    assert [r["execution_id"] for r in browser.rows["orders"]] == ["e0", "e1", "e2", "e3"]
    assert browser.rows["errors"][-1]["code"] == "PAUSED"
    grid = {r["account_id"]: r for r in browser.rows["grid"]}
    assert any(r["account_id"] == "f002" and r["last_outcome"] == "skipped: PAUSED" for r in browser.rows["grid"][len(grid):])
    await client.disconnect()

    # Rows 4 and 5 happen while the page is away; a redelivered row 3 must not appear twice.
    await pump(web, live.apply_execution(execution(4), 0, 4))
    assert live.apply_execution(execution(3), 1, 3) == []  # same partition and offset: already seen
    received.clear()
    browser2 = Browser()
    browser2.rows = {k: list(v) for k, v in browser.rows.items()}
    client = await connect(web, browser2, received)
    await pump(web, live.apply_execution(execution(5), 1, 5))
    await pump(web, [("orders", browser2.rows["orders"][-1])])  # a row the snapshot already holds, pushed again
    await asyncio.sleep(0.3)
    for stream, row in received:
        browser2.row(stream, row)
    ids = [r["execution_id"] for r in browser2.rows["orders"]]
    assert ids == ["e0", "e1", "e2", "e3", "e4", "e5"]
    await client.disconnect()


async def test_logout_closes_the_sessions_sockets(web: Web) -> None:
    await web.login()
    ended = asyncio.Event()
    client = socketio.AsyncClient(reconnection=False, http_session=web.client.session)
    client.on("session_ended", lambda data: ended.set())
    await client.connect(str(web.client.make_url("/")), transports=["websocket"], wait_timeout=5)
    assert (await web.client.delete("/api/session", headers=web.write_headers())).status == 200
    await asyncio.wait_for(ended.wait(), 3)
    await asyncio.sleep(0.3)
    assert not client.connected
    await client.disconnect()
