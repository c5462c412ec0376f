"""The protective-stop invariant end to end (issue #17 item 4): the executor as the worker runs
it, on the paper venue (the simulator kernel) with its reject fault on the follower's stop
copy. Within the group's deadline the follower is protected again or flat, and the records on
``order.errors`` say which, for how long it was naked."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from waiting import wait_until

from copytrader.agents.execution import protective_orders
from copytrader.agents.execution.agent import submit_batch
from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.app.factory import CopyTraderApp
from copytrader.brokers.model import OrderStatus, OrderType, Side
from copytrader.core import ids
from copytrader.core.records import IntentBatch, OrderError, OrderIntent, TradeSignal

DEADLINE_S = 0.5
CONFIG = {
    "sessions": [{"id": "p", "platform": "paper", "options": {"tick_ms": 0, "venue": "protective-test"}}],
    "accounts": [{"id": "L", "session": "p"}, {"id": "f1", "session": "p"}],
    "copy_groups": [{"leader": "L", "followers": [{"account": "f1"}], "protective_stop_s": DEADLINE_S}],
}


@pytest.fixture
def app(make_app: Callable[..., CopyTraderApp]) -> CopyTraderApp:  # tests/agents/conftest.py
    return make_app(CONFIG, ("execute",))


def copy(leader_order: str, side: str, quantity: int, **kw: Any) -> OrderIntent:
    signal = ids.signal_id("L", leader_order, "new")
    return OrderIntent(
        client_order_id=ids.client_order_id(signal, "f1"),
        signal_id=signal,
        account_id="f1",
        platform="paper",
        leader_account="L",
        action="place",
        symbol="ESZ6",
        side=side,
        quantity=quantity,
        stamps={"detected": time.time()},
        **kw,
    )


async def run(app: CopyTraderApp, *intents: OrderIntent) -> None:
    async def acked() -> None:
        return None

    stage = app.runtime.execution
    assert stage is not None
    submit_batch(stage, IntentBatch(batch_id=intents[0].signal_id, intents=list(intents)), acked)


def errors(outbox: MemoryOutbox, code: str) -> list[OrderError]:
    return [e for e in outbox.sent["error"] if isinstance(e, OrderError) and e.code == code]


async def long_two_with_a_rejected_stop(app: CopyTraderApp, outbox: MemoryOutbox) -> tuple[Any, OrderIntent]:
    adapter = await app.runtime.pool.adapter_for("f1")
    exchange = adapter.exchange  # type: ignore[attr-defined]  # the paper adapter's simulator kernel
    exchange.set_price("ESZ6", Decimal("5000"))
    await run(app, copy("1", "buy", 2))
    await wait_until(lambda: exchange.account("f1").positions.get("ESZ6"), timeout_s=5, what="the entry filled")
    exchange.account("f1").faults.reject_next = "stop price outside the allowed band"
    stop = copy("2", "sell", 2, order_type="stop", stop_price=Decimal("4990"))
    await run(app, stop)
    await wait_until(lambda: errors(outbox, "REJECTED"), timeout_s=5, what="the stop copy rejected")
    return exchange, stop


async def test_a_rejected_stop_copy_is_placed_again_within_the_deadline(
    app: CopyTraderApp, outbox: MemoryOutbox
) -> None:
    exchange, stop = await long_two_with_a_rejected_stop(app, outbox)
    rejected_at = time.monotonic()
    [said] = await wait_until(lambda: errors(outbox, "STOP_MISSING_REPLACED"), timeout_s=5, what="the stop re-placed")
    took = time.monotonic() - rejected_at
    working = [o for o in exchange.open_orders("f1") if o.order_type is OrderType.STOP]
    assert [(o.side, o.quantity, o.stop_price, o.client_order_id) for o in working] == [
        (Side.SELL, 2, Decimal("4990"), said.client_order_id)
    ]
    assert said.client_order_id != stop.client_order_id
    assert exchange.account("f1").positions["ESZ6"].net_quantity == 2
    assert "f1 held +2 ESZ6" in said.reason and "placed the stop again" in said.reason
    assert DEADLINE_S <= float(said.reason.split(" for ")[1].split(" s")[0]) < DEADLINE_S + 2
    assert took < DEADLINE_S + 2  # the deadline, plus one snapshot and one order on a busy machine
    assert not errors(outbox, "STOP_MISSING_FLATTENED")


async def test_a_stop_rejected_twice_leaves_the_follower_flat(app: CopyTraderApp, outbox: MemoryOutbox) -> None:
    exchange, _ = await long_two_with_a_rejected_stop(app, outbox)
    exchange.account("f1").faults.reject_next = "stop price outside the allowed band"  # the re-placed one too
    [said] = await wait_until(lambda: errors(outbox, "STOP_MISSING_FLATTENED"), timeout_s=5, what="the flatten")
    assert exchange.account("f1").positions["ESZ6"].net_quantity == 0
    assert not [o for o in exchange.open_orders("f1")]
    assert [e.code for e in outbox.sent["error"]] == ["REJECTED", "REJECTED", "STOP_MISSING_FLATTENED"]
    assert "f1 held +2 ESZ6" in said.reason and "flattened" in said.reason
    flatten_orders = exchange.orders_with_client_id("f1", said.client_order_id)
    assert [(o.side, o.quantity, o.status) for o in flatten_orders] == [(Side.SELL, 2, OrderStatus.FILLED)]


async def test_a_stop_that_works_is_left_alone(app: CopyTraderApp, outbox: MemoryOutbox) -> None:
    adapter = await app.runtime.pool.adapter_for("f1")
    exchange = adapter.exchange  # type: ignore[attr-defined]  # the paper adapter's simulator kernel
    exchange.set_price("ESZ6", Decimal("5000"))
    stop = copy("2", "sell", 2, order_type="stop", stop_price=Decimal("4990"))
    await run(app, copy("1", "buy", 2), stop)
    await wait_until(
        lambda: exchange.find_by_client_id("f1", stop.client_order_id), timeout_s=5, what="the stop placed"
    )
    watcher = app.runtime.execution.protective
    assert watcher is not None
    book = await wait_until(
        lambda: watcher.books.get("f1", {}).get("ESZ6"), timeout_s=5, what="the watcher saw the stop"
    )
    assert [s.state for s in book.stops.values()] == ["working"] and book.timer is None
    assert outbox.sent["error"] == []


async def test_with_the_session_down_it_says_so_and_acts_only_once_the_session_is_back(
    app: CopyTraderApp, outbox: MemoryOutbox
) -> None:
    exchange, _ = await long_two_with_a_rejected_stop(app, outbox)
    pool = app.runtime.pool
    await pool.reset("p")  # the follower's session is gone: its state cannot be read
    [said] = await wait_until(lambda: errors(outbox, "STOP_MISSING_UNVERIFIED"), timeout_s=5, what="the report")
    assert "session p is not connected" in said.reason and "waiting" in said.reason
    assert "f1 held +2 ESZ6" in said.reason or "f1 held unknown ESZ6" in said.reason
    assert not [o for o in exchange.open_orders("f1")]  # nothing placed, nothing flattened
    assert exchange.account("f1").positions["ESZ6"].net_quantity == 2
    await pool.adapter_for("f1")  # the session is back
    await wait_until(lambda: errors(outbox, "STOP_MISSING_REPLACED"), timeout_s=5, what="the stop re-placed")
    working = [o for o in exchange.open_orders("f1") if o.order_type is OrderType.STOP]
    assert [(o.side, o.quantity) for o in working] == [(Side.SELL, 2)]
    assert len(errors(outbox, "STOP_MISSING_UNVERIFIED")) == 1


async def test_the_dashboard_shows_the_last_protective_action(app: CopyTraderApp, outbox: MemoryOutbox) -> None:
    await long_two_with_a_rejected_stop(app, outbox)
    await wait_until(lambda: errors(outbox, "STOP_MISSING_REPLACED"), timeout_s=5, what="the stop re-placed")
    stage = app.runtime.execution
    assert stage is not None
    last_error = stage.router.stats["f1"].last_error or ""
    assert last_error.startswith("STOP_MISSING_REPLACED: f1 held +2 ESZ6")


async def test_a_leaders_stop_planned_by_fan_out_is_protected_on_the_follower(
    make_app: Callable[..., CopyTraderApp], outbox: MemoryOutbox
) -> None:
    """From the leader's signals: fan-out plans the entry and the stop copy, the executor runs
    them, the stop copy is rejected, and the watcher knows it for the leader's protective stop."""
    both = make_app(CONFIG, ("fanout", "execute"))
    adapter = await both.runtime.pool.adapter_for("f1")
    exchange = adapter.exchange  # type: ignore[attr-defined]  # the paper adapter's simulator kernel
    exchange.set_price("ESZ6", Decimal("5000"))
    signals = [
        TradeSignal(
            signal_id=ids.signal_id("L", "1", "new"),
            leader_account="L",
            platform="paper",
            symbol="ESZ6",
            side="buy",
            quantity=2,
            leader_order_id="1",
        ),
        TradeSignal(
            signal_id=ids.signal_id("L", "2", "new"),
            leader_account="L",
            platform="paper",
            symbol="ESZ6",
            side="sell",
            quantity=2,
            order_type="stop",
            stop_price=Decimal("4990"),
            leader_order_id="2",
        ),
    ]
    async with both.agents["fanout"].test_context() as agent:
        for signal in signals:
            await agent.put(signal.dumps(), key=b"ESZ6")
    entry, stop = outbox.sent["intent"]
    assert (stop.order_type, stop.side, stop.stop_price) == ("stop", "sell", Decimal("4990"))
    await run(both, entry)
    await wait_until(lambda: exchange.account("f1").positions.get("ESZ6"), timeout_s=5, what="the entry filled")
    exchange.account("f1").faults.reject_next = "stop price outside the allowed band"
    await run(both, stop)
    [said] = await wait_until(lambda: errors(outbox, "STOP_MISSING_REPLACED"), timeout_s=5, what="the stop re-placed")
    working = [o for o in exchange.open_orders("f1") if o.order_type is OrderType.STOP]
    assert [o.client_order_id for o in working] == [said.client_order_id]
    assert said.signal_id == f"control:protect:{stop.client_order_id}:replace:1"


async def test_a_watcher_bug_never_stops_the_fill_pump_or_a_lane(app: CopyTraderApp, outbox: MemoryOutbox) -> None:
    stage = app.runtime.execution
    assert stage is not None and stage.protective is not None

    def broken(*_args: object) -> None:
        raise RuntimeError("watcher bug")

    stage.protective.on_event = broken  # type: ignore[method-assign]  # the fault under test
    stage.protective.on_outcome = broken  # type: ignore[method-assign]  # the fault under test
    adapter = await app.runtime.pool.adapter_for("f1")
    adapter.exchange.set_price("ESZ6", Decimal("5000"))  # type: ignore[attr-defined]  # paper adapter
    await run(app, copy("1", "buy", 2))
    fills = await wait_until(
        lambda: [e for e in outbox.sent["execution"] if e.kind == "fill"], timeout_s=5, what="the fill published"
    )
    assert fills[0].quantity == 2
    assert [e.kind for e in outbox.sent["execution"] if e.request_outcome] == ["ack"]


async def test_a_replacement_sent_again_is_never_a_second_stop(app: CopyTraderApp, outbox: MemoryOutbox) -> None:
    """What a restarted watcher would send: the same derived id, so the executor's journal
    (and its lookup at the broker) turns it into the order already there."""
    exchange, stop = await long_two_with_a_rejected_stop(app, outbox)
    [said] = await wait_until(lambda: errors(outbox, "STOP_MISSING_REPLACED"), timeout_s=5, what="the stop re-placed")
    again = protective_orders.replacement(stop, 1, 2, time.time())
    assert again.client_order_id == said.client_order_id
    stage = app.runtime.execution
    assert stage is not None
    finished = asyncio.Event()

    async def acked() -> None:
        finished.set()

    submit_batch(stage, IntentBatch(batch_id="again", intents=[again]), acked, redelivered=True)
    await wait_until(finished.is_set, timeout_s=5, what="the repeat handled")
    assert len(exchange.orders_with_client_id("f1", again.client_order_id)) == 1
