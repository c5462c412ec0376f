"""Exactly once without trusting the gateway to refuse a repeated customTag.

ProjectX documents no refusal of a repeated tag, so every plausible answer is simulated (a new
order — the default —, a refusal, the first order's id) and the adapter must be safe under each:
a lost answer surfaces as ``BrokerUnavailable(sent=True)``, the adapter never resends by itself,
and ``lookup`` finds the one order the books hold.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from projectx_helpers import next_event, session_config

from copytrader.brokers.deadline import copy_deadline
from copytrader.brokers.errors import BrokerUnavailable, OrderRejected
from copytrader.brokers.model import (
    CancelOrder,
    FillEvent,
    FlattenPosition,
    ModifyOrder,
    OrderEvent,
    OrderStatus,
    OrderType,
    PlaceOrder,
    PositionEvent,
    Side,
)
from copytrader.brokers.projectx.adapter import ProjectXAdapter
from copytrader.brokers.projectx.simulator import ProjectXSimulator, create_simulator
from copytrader.brokers.simkernel.exchange import SimExchange

SYMBOL = "ESZ6"
KERNEL = "PX-FOLLOWER-1"
ANSWERS = ["new_order", "refuse", "first_order"]


def _place(cid: str, **kw: object) -> PlaceOrder:
    return PlaceOrder(
        account_id="f1",
        client_order_id=cid,
        symbol=SYMBOL,
        side=kw.pop("side", Side.BUY),  # type: ignore[arg-type]
        quantity=kw.pop("quantity", 1),
        **kw,
    )  # type: ignore[arg-type]


@pytest.fixture(params=ANSWERS)
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[tuple[ProjectXSimulator, ProjectXAdapter]]:
    sim = create_simulator(SimExchange(seed=11), tick_ms=10, keepalive_s=1.0, repeated_tag=request.param)
    await sim.start()
    adapter = ProjectXAdapter(session_config(sim))
    try:
        await adapter.connect()
        yield sim, adapter
    finally:
        await adapter.disconnect()
        await sim.stop()


def _books(sim: ProjectXSimulator, cid: str) -> list[str]:
    return [o.order_id for o in sim.exchange.orders_with_client_id(KERNEL, cid)]


async def test_lost_place_answer_is_sent_true_and_lookup_finds_the_one_order(pair) -> None:  # type: ignore[no-untyped-def]
    sim, adapter = pair
    sim.faults(KERNEL).lose_response_next = 1
    with pytest.raises(BrokerUnavailable) as info:
        await adapter.place(_place("lost-1"))
    assert info.value.sent and info.value.retriable
    assert len(_books(sim, "lost-1")) == 1  # carried out, and never resent by the adapter
    found = await adapter.lookup("f1", "lost-1")
    assert found is not None and found.duplicate and found.broker_order_id == _books(sim, "lost-1")[0]
    assert await adapter.lookup("f1", "never-sent") is None


async def test_a_repeated_place_is_answered_truthfully_under_each_gateway_answer(pair) -> None:  # type: ignore[no-untyped-def]
    sim, adapter = pair
    first = await adapter.place(_place("again-1"))
    second = await adapter.place(_place("again-1"))  # a caller that skipped lookup
    if sim.repeated_tag == "new_order":
        # The strictest plausible gateway: a second order. The adapter says so (no duplicate flag).
        assert not second.duplicate and second.broker_order_id != first.broker_order_id
        assert len(_books(sim, "again-1")) == 2
    elif sim.repeated_tag == "refuse":
        # A refusal is checked against the books, never parsed: the live order is the answer.
        assert second.duplicate and second.broker_order_id == first.broker_order_id
        assert len(_books(sim, "again-1")) == 1
    else:
        assert second.broker_order_id == first.broker_order_id and len(_books(sim, "again-1")) == 1


async def test_an_ordinary_rejection_stays_a_rejection(pair) -> None:  # type: ignore[no-untyped-def]
    sim, adapter = pair
    sim.faults(KERNEL).reject_next = "risk: daily loss limit"
    with pytest.raises(OrderRejected) as info:
        await adapter.place(_place("rej-1"))
    assert info.value.code == "2" and "daily loss limit" in info.value.message
    found = await adapter.lookup("f1", "rej-1")  # the gateway keeps the rejected record
    assert found is not None and found.status is OrderStatus.REJECTED


async def test_lost_modify_and_cancel_answers_happened_anyway(adapter: ProjectXAdapter, sim) -> None:  # type: ignore[no-untyped-def]
    sim.exchange.prices.set_price(SYMBOL, Decimal("5000"))
    events = adapter.events()
    await adapter.place(_place("mc-1", order_type=OrderType.LIMIT, limit_price=Decimal("4900")))
    sim.faults(KERNEL).lose_response_next = 1
    with pytest.raises(BrokerUnavailable) as info:
        await adapter.modify(ModifyOrder("f1", "mc-1", limit_price=Decimal("4901")))
    assert info.value.sent
    await next_event(events, lambda e: isinstance(e, OrderEvent) and e.limit_price == Decimal("4901"))
    sim.faults(KERNEL).lose_response_next = 1
    with pytest.raises(BrokerUnavailable):
        await adapter.cancel(CancelOrder("f1", "mc-1"))
    await next_event(
        events,
        lambda e: isinstance(e, OrderEvent) and e.client_order_id == "mc-1" and e.status is OrderStatus.CANCELLED,
    )


async def test_a_silent_gateway_costs_no_more_than_the_copy_deadline() -> None:
    sim = create_simulator(SimExchange(seed=11), tick_ms=10, lose_response="timeout", lose_response_hold_s=30)
    await sim.start()
    adapter = ProjectXAdapter(session_config(sim))
    try:
        await adapter.connect()
        sim.faults(KERNEL).lose_response_next = 1
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable) as info, copy_deadline(0.5):
            await adapter.place(_place("slow-1"))
        assert info.value.sent and time.monotonic() - started < 2.0
        assert len(_books(sim, "slow-1")) == 1
    finally:
        await adapter.disconnect()
        await sim.stop()


async def test_lookup_that_cannot_ask_raises(adapter: ProjectXAdapter, sim) -> None:  # type: ignore[no-untyped-def]
    sim.faults(KERNEL).rate_limit_next = 50
    with pytest.raises(BrokerUnavailable), copy_deadline(0.3):
        await adapter.lookup("f1", "whatever")


async def test_flatten_orders_carry_the_flatten_id_and_lookup_finds_them(adapter: ProjectXAdapter, sim) -> None:  # type: ignore[no-untyped-def]
    events = adapter.events()
    await adapter.place(_place("fl-in", quantity=2))
    await next_event(events, lambda e: isinstance(e, PositionEvent) and e.net_quantity == 2)
    sim.faults(KERNEL).lose_response_next = 1  # the closing order's answer is lost
    with pytest.raises(BrokerUnavailable):
        await adapter.flatten(FlattenPosition("f1", "flat-1", SYMBOL))
    closing = sim.exchange.orders_with_client_id(KERNEL, "flat-1")
    assert [(o.side, o.quantity) for o in closing] == [(Side.SELL, 2)]
    found = await adapter.lookup("f1", "flat-1")
    assert found is not None and found.broker_order_id == closing[0].order_id
    fill = await next_event(events, lambda e: isinstance(e, FillEvent) and e.client_order_id == "flat-1")
    assert fill.quantity == 2
