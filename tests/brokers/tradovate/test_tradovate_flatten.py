"""Flatten on Tradovate: every order it creates carries the flatten's clOrdId, it reads the
broker's orders and positions, and rerunning it after a lost answer changes nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from tradovate_helpers import next_event

from copytrader.brokers.errors import BrokerUnavailable
from copytrader.brokers.model import FlattenPosition, OrderStatus, OrderType, PlaceOrder, PositionEvent, Side
from copytrader.brokers.tradovate.adapter import TradovateAdapter
from copytrader.brokers.tradovate.simulator import TradovateSimulator

ACCT = "DEMO1002"


def position(sim: TradovateSimulator, symbol: str) -> int:
    found = sim.exchange.account(ACCT).positions.get(symbol)
    return found.net_quantity if found else 0


async def long_two(adapter: TradovateAdapter, symbol: str, cl: str) -> None:
    sub = adapter.events()
    await adapter.place(PlaceOrder("f2", cl, symbol, Side.BUY, 2))
    await next_event(sub, lambda e: isinstance(e, PositionEvent) and e.symbol == symbol and e.net_quantity == 2)


async def test_flatten_cancels_then_closes_under_its_own_client_id(
    adapter: TradovateAdapter, sim: TradovateSimulator
) -> None:
    await long_two(adapter, "MESZ6", "fl-in")
    await adapter.place(PlaceOrder("f2", "fl-work", "MESZ6", Side.BUY, 1, OrderType.LIMIT, limit_price=Decimal("1000")))
    ack = await adapter.flatten(FlattenPosition("f2", "fl-1", "MESZ6"))
    (closing,) = sim.exchange.orders_with_client_id(ACCT, "fl-1")
    assert ack.broker_order_id == closing.order_id and (closing.side, closing.quantity) == (Side.SELL, 2)
    assert sim.exchange.orders_with_client_id(ACCT, "fl-work")[0].status is OrderStatus.CANCELLED
    assert position(sim, "MESZ6") == 0
    assert not any(ep == "order/liquidateposition" for ep, _ in sim.api.calls)  # it cannot carry a clOrdId
    found = await adapter.lookup("f2", "fl-1")
    assert found is not None and found.broker_order_id == closing.order_id


async def test_flatten_all_closes_every_contract(adapter: TradovateAdapter, sim: TradovateSimulator) -> None:
    await long_two(adapter, "MESZ6", "fa-1")
    await long_two(adapter, "ESZ6", "fa-2")
    ack = await adapter.flatten(FlattenPosition("f2", "fa-x"))
    assert len(ack.broker_order_id.split(",")) == 2
    assert len(sim.exchange.orders_with_client_id(ACCT, "fa-x")) == 2
    assert position(sim, "MESZ6") == position(sim, "ESZ6") == 0


async def test_lost_flatten_answer_then_rerun_places_nothing_more(
    adapter: TradovateAdapter, sim: TradovateSimulator
) -> None:
    await long_two(adapter, "MESZ6", "fl-in2")
    sim.faults(ACCT).lose_response_next = 1
    with pytest.raises(BrokerUnavailable) as lost:
        await adapter.flatten(FlattenPosition("f2", "fl-2", "MESZ6"))
    assert lost.value.sent is True
    assert await adapter.lookup("f2", "fl-2") is not None
    again = await adapter.flatten(FlattenPosition("f2", "fl-2", "MESZ6"))
    assert again.broker_order_id == "none"
    assert len(sim.exchange.orders_with_client_id(ACCT, "fl-2")) == 1 and position(sim, "MESZ6") == 0
