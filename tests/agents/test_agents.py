"""The agents inside Faust's test context: real Faust streams, no Kafka.

Outbound records go to a MemoryOutbox (Faust's test context would otherwise try to reach
Kafka on an unpatched ``topic.send``), so each test asserts exactly what an agent published.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal

import pytest

from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.app.factory import CopyTraderApp
from copytrader.brokers.model import PlaceOrder, Side
from copytrader.core import ids
from copytrader.core.records import Execution, ExecutionBatch, IntentBatch, OrderIntent, TradeSignal

CONFIG = {
    "sessions": [{"id": "p", "platform": "paper", "options": {"tick_ms": 0, "venue": "agents-test"}}],
    "accounts": [{"id": "L", "session": "p"}, {"id": "f1", "session": "p"}, {"id": "f2", "session": "p"}],
    "copy_groups": [{"leader": "L", "followers": [{"account": "f1"}, {"account": "f2", "rule": {"multiplier": 3}}]}],
}


@pytest.fixture
def app(make_app: Callable[..., CopyTraderApp]) -> CopyTraderApp:  # tests/agents/conftest.py
    return make_app(CONFIG, ("fanout", "execute", "track"))


def signal_bytes(kind: str = "new", **kw: object) -> bytes:
    base: dict[str, object] = dict(
        signal_id=ids.signal_id("L", "1", kind, 1),
        leader_account="L",
        platform="paper",
        symbol="ESZ6",
        side="buy",
        quantity=2,
        kind=kind,
        leader_order_id="1",
        stamps={"detected": 1.0},
    )
    return TradeSignal(**{**base, **kw}).dumps()


async def test_fanout_agent_publishes_one_intent_per_follower(app: CopyTraderApp, outbox: MemoryOutbox) -> None:
    async with app.agents["fanout"].test_context() as agent:
        await agent.put(signal_bytes(), key=b"ESZ6")
    intents = outbox.sent["intent"]
    assert {(i.account_id, i.quantity, i.action) for i in intents} == {("f1", 2, "place"), ("f2", 6, "place")}
    assert not outbox.sent["error"]


async def test_fanout_agent_puts_a_malformed_signal_on_order_errors(app: CopyTraderApp, outbox: MemoryOutbox) -> None:
    async with app.agents["fanout"].test_context() as agent:
        await agent.put(
            b'{"signal_id": "x", "leader_account": "L", "symbol": "ESZ6", "side": "up", "quantity": 1}', key=b"ESZ6"
        )
        await agent.put(b"\xff garbage", key=b"ESZ6")
    errors = outbox.sent["error"]
    assert [e.code for e in errors] == ["MALFORMED", "MALFORMED"]
    assert "side" in errors[0].reason and errors[0].stage == "ingest"
    assert "garbage" in (errors[1].payload or "")
    assert not outbox.sent["intent"]


def intent(account: str, quantity: int, signal: str = "s1") -> OrderIntent:
    return OrderIntent(
        client_order_id=ids.client_order_id(signal, account),
        signal_id=signal,
        account_id=account,
        platform="paper",
        leader_account="L",
        action="place",
        symbol="ESZ6",
        side="buy",
        quantity=quantity,
        stamps={"detected": 1.0},
    )


async def wait_for(predicate, timeout: float = 3.0) -> None:  # type: ignore[no-untyped-def]  # test helper
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_executor_agent_places_once_even_when_the_batch_is_redelivered(
    app: CopyTraderApp, outbox: MemoryOutbox
) -> None:
    batch = IntentBatch(batch_id="s1|p0", intents=[intent("f1", 2), intent("f2", 6)])
    async with app.agents["executor"].test_context() as agent:
        await agent.put(batch, key=b"s1|p0")
        await agent.put(batch, key=b"s1|p0")  # Kafka redelivery after a crash
        await wait_for(lambda: len([e for e in outbox.sent["execution"] if e.request_outcome]) >= 2)
        await app.runtime.execution.lanes.join()
    outcomes = [e for e in outbox.sent["execution"] if isinstance(e, Execution) and e.request_outcome]
    assert sorted((e.account_id, e.kind, e.duplicate) for e in outcomes) == [("f1", "ack", False), ("f2", "ack", False)]
    adapter = app.runtime.pool.connected()["p"]
    orders = [o for name in ("f1", "f2") for o in adapter.exchange.account(name).orders.values()]  # type: ignore[attr-defined]  # paper adapter
    assert sorted(o.quantity for o in orders) == [2, 6]
    assert all("sent" in e.stamps and "acked" in e.stamps for e in outcomes)


async def test_executor_reports_a_broker_reject_on_order_errors(app: CopyTraderApp, outbox: MemoryOutbox) -> None:
    adapter = await app.runtime.pool.adapter_for("f1")
    adapter.exchange.account("f1").faults.reject_next = "max position exceeded"  # type: ignore[attr-defined]  # paper adapter
    async with app.agents["executor"].test_context() as agent:
        await agent.put(IntentBatch(batch_id="b", intents=[intent("f1", 1, "s2")]), key=b"b")
        await wait_for(lambda: bool(outbox.sent["error"]))
    error = outbox.sent["error"][0]
    assert (error.account_id, error.stage, error.reason) == ("f1", "execute", "max position exceeded")
    assert [e.kind for e in outbox.sent["execution"] if e.request_outcome] == ["reject"]


async def test_tracker_agent_builds_positions_from_fills_and_ignores_duplicates(
    app: CopyTraderApp, outbox: MemoryOutbox
) -> None:
    def fill(n: int, side: str, qty: int, price: str) -> Execution:
        return Execution(
            execution_id=f"f1|o{n}|fill|{n}",
            account_id="f1",
            platform="paper",
            kind="fill",
            symbol="ESZ6",
            side=side,
            quantity=qty,
            price=Decimal(price),
        )

    async with app.agents["tracker"].test_context() as agent:
        # One record carrying a fill and its redelivery, a record nobody can read, then a bare
        # execution (what producers before batching sent): the bad one is reported, not fatal.
        await agent.put(ExecutionBatch(executions=[fill(1, "buy", 2, "5000"), fill(1, "buy", 2, "5000")]).dumps())
        await agent.put(b'{"executions": [{"execution_id": "x", "kind": "fill"}]}', key=b"f1")
        await agent.put(fill(2, "sell", 1, "5004").dumps(), key=b"f1")
    table = app.runtime.tables["positions"]
    position = table["f1|ESZ6"]
    assert (position.net_quantity, position.realized_pnl) == (1, Decimal(200))
    assert [p.net_quantity for p in outbox.sent["position"]] == [2, 1]
    [unreadable] = outbox.sent["error"]
    assert (unreadable.stage, unreadable.code) == ("track", "BAD_RECORD")
    assert "account_id" in unreadable.reason


async def test_a_batch_is_acknowledged_only_once_its_acks_are_published(
    app: CopyTraderApp, outbox: MemoryOutbox
) -> None:
    from copytrader.agents.execution.agent import submit_batch

    published_at_ack: list[int] = []

    async def on_all_done() -> None:  # what commits the batch's Kafka offset
        published_at_ack.append(len([e for e in outbox.sent["execution"] if e.request_outcome]))

    batch = IntentBatch(batch_id="s9|p0", intents=[intent("f1", 1, "s9"), intent("f2", 1, "s9")], appended=2.0)
    submit_batch(app.runtime.execution, batch, on_all_done)  # type: ignore[arg-type]
    await wait_for(lambda: bool(published_at_ack))
    assert published_at_ack == [2]
    acks = [e for e in outbox.sent["execution"] if e.request_outcome]
    assert all(e.stamps["appended"] == 2.0 and e.stamps["received"] >= e.stamps["appended"] for e in acks)
    await app.runtime.pool.close()


async def test_each_copys_ack_is_published_before_its_fill(app: CopyTraderApp, outbox: MemoryOutbox) -> None:
    """The paper venue fills a market order inside the broker call, before the call returns:
    the fill pump still reports each fill after the lane reported the order's ack."""
    from copytrader.agents.execution.agent import submit_batch

    stage = app.runtime.execution
    assert stage is not None
    await app.runtime.pool.connect_all(["f1", "f2"])  # their fill pumps start here
    acked: list[bool] = []

    async def on_all_done() -> None:
        acked.append(True)

    for n in range(3):
        batch = IntentBatch(batch_id=f"s{n}|p0", intents=[intent("f1", 1, f"s{n}"), intent("f2", 2, f"s{n}")])
        submit_batch(stage, batch, on_all_done)
    await wait_for(lambda: len([e for e in outbox.sent["execution"] if e.kind == "fill"]) == 6)
    kinds: dict[str, list[str]] = {}
    for e in outbox.sent["execution"]:
        kinds.setdefault(e.client_order_id, []).append(e.kind)
    assert len(kinds) == 6 and all(each == ["ack", "fill"] for each in kinds.values()), kinds
    await wait_for(lambda: len(acked) == 3)
    await app.runtime.pool.close()


async def test_the_faust_executor_finds_an_order_another_host_placed_instead_of_placing_it_again(
    app: CopyTraderApp, outbox: MemoryOutbox
) -> None:
    """Failover with ``COPYTRADER_EXECUTOR_CONSUMER=faust``: the previous owner of the partition
    placed the order and died before committing; this host's journal knows nothing of it."""
    earlier = intent("f1", 2, "s9")
    adapter = await app.runtime.pool.adapter_for("f1")
    await adapter.place(PlaceOrder("f1", earlier.client_order_id, "ESZ6", Side.BUY, 2))  # what the other host did
    async with app.agents["executor"].test_context() as agent:
        await agent.put(IntentBatch(batch_id="s9|p0", intents=[earlier]), key=b"s9|p0")
        await wait_for(lambda: any(e.request_outcome for e in outbox.sent["execution"]))
        await app.runtime.execution.lanes.join()
    exchange = adapter.exchange  # type: ignore[attr-defined]  # paper adapter
    assert len(exchange.orders_with_client_id("f1", earlier.client_order_id)) == 1  # found, not placed again
    assert [e.kind for e in outbox.sent["execution"] if e.request_outcome] == ["ack"]
