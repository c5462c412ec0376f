"""The published JS client (@dxfeed/dxlink-api 0.3.0, the registry's only version) against the
simulator, unchanged, under Debian's Node with ``--experimental-websocket`` (0.3.0 uses the global
WebSocket, which Node 20 has only behind that flag)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from ci_skips import require
from dxlink_helpers import eventually

from copytrader.brokers.dxlink import protocol as p
from copytrader.brokers.dxlink.simulator import DEFAULT_TOKEN, DxLinkSimulator

NODE_MODULES = Path(
    os.environ.get("DXLINK_NODE_MODULES", str(Path.home() / ".cache/copytrader-dxlink-node/node_modules"))
)
ES = "/ESZ26:XCME"

# Prints every event and error as one JSON line; exits 4 when the token is refused.
NODE_SCRIPT = r"""
const { DXLinkWebSocketClient, DXLinkFeed, FeedContract, FeedDataFormat } = require('@dxfeed/dxlink-api');
const [url, token, format, symbol] = process.argv.slice(2);
const client = new DXLinkWebSocketClient();
client.setAuthToken(token);
client.addErrorListener((error) => {
  console.log(JSON.stringify({ error: error.type, message: error.message }));
  if (error.type === 'UNAUTHORIZED') process.exit(4);
});
client.connect(url);
const feed = new DXLinkFeed(client, FeedContract.AUTO);
feed.configure({
  acceptAggregationPeriod: 0,
  acceptDataFormat: format === 'FULL' ? FeedDataFormat.FULL : FeedDataFormat.COMPACT,
  acceptEventFields: { Quote: ['eventType', 'eventSymbol', 'bidPrice', 'askPrice'], Trade: ['eventType', 'eventSymbol', 'price', 'size'] },
});
feed.addSubscriptions({ type: 'Quote', symbol }, { type: 'Trade', symbol });
feed.addEventListener((events) => { for (const e of events) console.log(JSON.stringify(e)); });
setTimeout(() => process.exit(3), 30000);
"""


@pytest.fixture
async def run_js(tmp_path: Path) -> AsyncIterator[Any]:
    node = shutil.which("node")
    require(
        "dxlink js client",
        "node and `npm install @dxfeed/dxlink-api@0.3.0` (DXLINK_NODE_MODULES)",
        available=node is not None and (NODE_MODULES / "@dxfeed" / "dxlink-api").is_dir(),
    )
    assert node is not None
    script = tmp_path / "client.js"
    script.write_text(NODE_SCRIPT)
    procs: list[asyncio.subprocess.Process] = []

    async def start(url: str, token: str, data_format: str) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            node,
            "--experimental-websocket",
            str(script),
            url,
            token,
            data_format,
            ES,
            stdout=asyncio.subprocess.PIPE,
            env=dict(os.environ, NODE_PATH=str(NODE_MODULES)),
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def lines_until(proc: asyncio.subprocess.Process, kinds: set[str], timeout_s: float = 15.0) -> list[Any]:
    """Read the client's JSON lines until every event type in ``kinds`` has been printed."""
    assert proc.stdout is not None
    seen: list[Any] = []
    async with asyncio.timeout(timeout_s):
        while not kinds <= {line.get("eventType") for line in seen}:
            raw = await proc.stdout.readline()
            assert raw, f"client exited ({await proc.wait()}) after {seen}"
            seen.append(json.loads(raw))
    return seen


@pytest.mark.parametrize("data_format", ["COMPACT", "FULL"])
async def test_js_client_reads_quotes_and_trades(sim: DxLinkSimulator, run_js: Any, data_format: str) -> None:
    proc = await run_js(sim.url, DEFAULT_TOKEN, data_format)
    lines = await lines_until(proc, {"Quote", "Trade"})
    events = [line for line in lines if "eventType" in line]
    assert all(e["eventSymbol"] == ES for e in events)
    quote = next(e for e in events if e["eventType"] == "Quote")
    trade = next(e for e in events if e["eventType"] == "Trade")
    assert set(quote) == {"eventType", "eventSymbol", "bidPrice", "askPrice"} and quote["bidPrice"] < quote["askPrice"]
    assert set(trade) == {"eventType", "eventSymbol", "price", "size"} and trade["price"] % 0.25 == 0
    session = sim.history[0]
    kinds = [type(m) for m in session.received]
    assert kinds[:2] == [p.Setup, p.Auth]  # the token goes right after SETUP, without waiting
    assert kinds.index(p.ChannelRequest) < kinds.index(p.FeedSetup) < kinds.index(p.FeedSubscription)
    setup = session.received[0]
    assert isinstance(setup, p.Setup) and setup.version == "0.1-DXF-JS/0.3.0"


async def test_js_client_refused_token(sim: DxLinkSimulator, run_js: Any) -> None:
    proc = await run_js(sim.url, "stolen", "COMPACT")
    assert await asyncio.wait_for(proc.wait(), 15) == 4  # its error listener saw ERROR UNAUTHORIZED


async def test_js_client_reconnects_and_resubscribes(run_js: Any) -> None:
    async with DxLinkSimulator(tick_ms=0) as still:  # no clock: the only data is each subscription's snapshot
        proc = await run_js(still.url, DEFAULT_TOKEN, "COMPACT")
        first = await lines_until(proc, {"Quote", "Trade"})
        assert len(first) == 2
        await still.drop_all()
        await eventually(lambda: still.connections == 2 and still.subscriptions() == {("Quote", ES), ("Trade", ES)}, 15)
        await lines_until(proc, {"Quote", "Trade"})  # the snapshot sent for the resubscription
        assert any(isinstance(m, p.FeedSetup) for m in still.history[1].received)  # FEED_SETUP re-sent
