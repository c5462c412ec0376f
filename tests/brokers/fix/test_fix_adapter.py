"""The FIX adapter against the simulator's QuickFIX acceptor, in FIX 4.2 and FIX 4.4."""

from __future__ import annotations

from decimal import Decimal

import pytest
from conftest import AdapterFactory
from fix_helpers import ACCOUNT, SYMBOL, Recorder

from copytrader.brokers.errors import AuthenticationFailed, BrokerUnavailable, OrderRejected, UnknownOrder
from copytrader.brokers.fix.adapter import FixAdapter
from copytrader.brokers.fix.simulator import FixSimulator
from copytrader.brokers.model import (
    CancelOrder,
    ConnectionState,
    FillCorrection,
    FillEvent,
    FlattenPosition,
    ModifyOrder,
    OrderEvent,
    OrderStatus,
    OrderType,
    PlaceOrder,
    PositionEvent,
    Side,
    TimeInForce,
)

PRICE = Decimal("5000.00")


def market(client_id: str, quantity: int = 1, side: Side = Side.BUY) -> PlaceOrder:
    return PlaceOrder(ACCOUNT, client_id, SYMBOL, side, quantity)


def limit(client_id: str, price: str = "4990.00") -> PlaceOrder:
    return PlaceOrder(
        ACCOUNT, client_id, SYMBOL, Side.BUY, 1, OrderType.LIMIT, Decimal(price), time_in_force=TimeInForce.GTC
    )


def kernel_account(sim: FixSimulator) -> str:
    return str(sim.demo_credentials()["accounts"][0])


async def test_market_order_fills_once_with_position(sim: FixSimulator, adapter: FixAdapter) -> None:
    sim.exchange.set_price(SYMBOL, PRICE)
    events = Recorder(adapter)
    ack = await adapter.place(market("M1", 2))
    assert ack.client_order_id == "M1" and ack.broker_order_id and not ack.duplicate
    fill = await events.wait_for(lambda e: isinstance(e, FillEvent), "the fill")
    assert isinstance(fill, FillEvent)
    assert (fill.client_order_id, fill.quantity, fill.price, fill.leaves_quantity) == ("M1", 2, PRICE, 0)
    await events.wait_for(lambda e: isinstance(e, PositionEvent) and e.net_quantity == 2, "position 2")
    assert len(events.of(FillEvent)) == 1


async def test_partial_fills_report_cumulative_and_leaves(sim: FixSimulator, adapter: FixAdapter) -> None:
    sim.exchange.set_price(SYMBOL, PRICE)
    sim.faults(kernel_account(sim)).partial_fill_lot = 1
    events = Recorder(adapter)
    await adapter.place(market("P1", 3))
    sim.exchange.advance(2)
    await events.wait_for(lambda e: isinstance(e, FillEvent) and e.leaves_quantity == 0, "the last partial fill")
    fills = events.of(FillEvent)
    assert [(f.quantity, f.cumulative_quantity, f.leaves_quantity) for f in fills] == [(1, 1, 2), (1, 2, 1), (1, 3, 0)]
    assert len({f.fill_id for f in fills}) == 3


@pytest.mark.parametrize("version", ["FIX.4.4"])  # nothing in it differs by version
async def test_reject_carries_the_counterpartys_text(sim: FixSimulator, adapter: FixAdapter) -> None:
    sim.faults(kernel_account(sim)).reject_next = "risk: max position exceeded"
    with pytest.raises(OrderRejected, match="max position"):
        await adapter.place(market("R1"))
    with pytest.raises(OrderRejected, match="tick"):
        await adapter.place(limit("R2", "4990.10"))


async def test_limit_modify_cancel(sim: FixSimulator, adapter: FixAdapter) -> None:
    sim.exchange.set_price(SYMBOL, PRICE)
    events = Recorder(adapter)
    placed = await adapter.place(limit("L1"))
    assert placed.status is OrderStatus.WORKING
    modified = await adapter.modify(ModifyOrder(ACCOUNT, "L1", limit_price=Decimal("4991.00"), quantity=2))
    assert modified.broker_order_id == placed.broker_order_id
    order = sim.exchange.account(kernel_account(sim)).orders[placed.broker_order_id]
    assert (order.limit_price, order.quantity) == (Decimal("4991.00"), 2)
    cancelled = await adapter.cancel(CancelOrder(ACCOUNT, "L1"))
    assert cancelled.status is OrderStatus.CANCELLED
    await events.wait_for(
        lambda e: isinstance(e, OrderEvent) and e.status is OrderStatus.CANCELLED and e.client_order_id == "L1",
        "the cancel reported under our id",
    )
    again = await adapter.cancel(CancelOrder(ACCOUNT, "L1"))
    assert again.duplicate and again.status is OrderStatus.CANCELLED
    with pytest.raises(UnknownOrder):
        await adapter.cancel(CancelOrder(ACCOUNT, "NEVER-SENT"))


@pytest.mark.parametrize("version", ["FIX.4.4"])  # nothing in it differs by version
async def test_cancel_that_loses_the_race_is_an_order_cancel_reject(sim: FixSimulator, adapter: FixAdapter) -> None:
    sim.exchange.set_price(SYMBOL, PRICE)
    events = Recorder(adapter)
    await adapter.place(limit("L2"))
    sim.faults(kernel_account(sim)).fill_before_cancel = True
    with pytest.raises((UnknownOrder, OrderRejected), match="too late|already"):
        await adapter.cancel(CancelOrder(ACCOUNT, "L2"))
    fill = await events.wait_for(lambda e: isinstance(e, FillEvent), "the fill that beat the cancel")
    assert isinstance(fill, FillEvent) and fill.client_order_id == "L2"


async def test_lookup_asks_with_order_status_requests(sim: FixSimulator, adapter: FixAdapter) -> None:
    sim.exchange.set_price(SYMBOL, PRICE)
    await adapter.place(limit("L3"))
    found = await adapter.lookup(ACCOUNT, "L3")
    assert found is not None and found.duplicate and found.status is OrderStatus.WORKING
    assert await adapter.lookup(ACCOUNT, "NEVER") is None
    sim.desk.order_status_supported = False  # a counterparty without 35=H: cannot tell
    with pytest.raises(BrokerUnavailable, match="cannot tell"):
        await adapter.lookup(ACCOUNT, "L3")


@pytest.mark.parametrize("version", ["FIX.4.4"])  # nothing in it differs by version
async def test_lookup_without_status_requests_is_unknown(sim: FixSimulator, make_adapter: AdapterFactory) -> None:
    adapter = make_adapter(order_status_requests=False)
    await adapter.connect()
    await adapter.place(limit("L4"))
    with pytest.raises(BrokerUnavailable, match="cannot tell"):
        await adapter.lookup(ACCOUNT, "L4")
    assert await adapter.lookup(ACCOUNT, "NEVER") is None  # never handed to the engine (journal)


@pytest.mark.parametrize("version", ["FIX.4.4"])  # nothing in it differs by version
async def test_flatten_cancels_working_orders_and_closes_with_our_id(sim: FixSimulator, adapter: FixAdapter) -> None:
    sim.exchange.set_price(SYMBOL, PRICE)
    events = Recorder(adapter)
    await adapter.place(market("M2", 2))
    await events.wait_for(lambda e: isinstance(e, PositionEvent) and e.net_quantity == 2, "long 2")
    await adapter.place(limit("L5"))
    ack = await adapter.flatten(FlattenPosition(ACCOUNT, "FL1", SYMBOL))
    assert ack.client_order_id == "FL1"
    await events.wait_for(lambda e: isinstance(e, PositionEvent) and e.net_quantity == 0, "flat")
    closing = [f for f in events.of(FillEvent) if f.client_order_id == "FL1"]
    assert [(f.side, f.quantity) for f in closing] == [(Side.SELL, 2)]
    account = kernel_account(sim)
    assert not sim.exchange.open_orders(account)
    assert [o.client_order_id for o in sim.exchange.orders_with_client_id(account, "FL1")] == ["FL1"]


async def test_busted_fill_is_a_correction(sim: FixSimulator, adapter: FixAdapter) -> None:
    sim.exchange.set_price(SYMBOL, PRICE)
    events = Recorder(adapter)
    sim.faults(kernel_account(sim)).bust_next_fill = True
    await adapter.place(market("B1"))
    correction = await events.wait_for(lambda e: isinstance(e, FillCorrection), "the bust")
    assert isinstance(correction, FillCorrection) and correction.busted and correction.client_order_id == "B1"
    await events.wait_for(lambda e: isinstance(e, PositionEvent) and e.net_quantity == 0, "flat after the bust")


@pytest.mark.parametrize("version", ["FIX.4.4"])  # nothing in it differs by version
async def test_bad_password_is_authentication_failed(make_adapter: AdapterFactory) -> None:
    adapter = make_adapter()
    object.__setattr__(adapter.fix, "password", "wrong")
    with pytest.raises(AuthenticationFailed, match="invalid username or password"):
        await adapter.connect()
    assert adapter.state is ConnectionState.DISCONNECTED
