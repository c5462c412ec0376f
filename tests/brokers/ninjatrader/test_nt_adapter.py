"""The adapter against the simulator on both routes: the ATI TCP port and the OIF folders."""

from __future__ import annotations

from decimal import Decimal

import pytest
from conftest import AdapterFactory
from waiting import wait_until

from copytrader.brokers.base import Subscription
from copytrader.brokers.errors import OrderRejected, UnknownOrder, UnsupportedOperation
from copytrader.brokers.model import (
    BrokerEvent,
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
    TimeInForce,
)
from copytrader.brokers.ninjatrader import orders
from copytrader.brokers.ninjatrader.simulator import NinjaTraderSimulator

PRICE = Decimal("5000")


def drain(subscription: Subscription) -> list[BrokerEvent]:
    found = []
    while not subscription.queue.empty():
        found.append(subscription.queue.get_nowait())
    return found


class Seen:
    """Every event of one subscription, kept as it arrives."""

    def __init__(self, subscription: Subscription) -> None:
        self.subscription = subscription
        self.events: list[BrokerEvent] = []

    def take(self) -> list[BrokerEvent]:
        self.events += drain(self.subscription)
        return self.events

    def fills(self, client_id: str) -> list[FillEvent]:
        return [e for e in self.take() if isinstance(e, FillEvent) and e.client_order_id == client_id]

    def orders(self, client_id: str) -> list[OrderEvent]:
        return [e for e in self.take() if isinstance(e, OrderEvent) and e.client_order_id == client_id]

    def positions(self) -> list[PositionEvent]:
        return [e for e in self.take() if isinstance(e, PositionEvent)]


def limit(client_id: str, price: str, quantity: int = 1, side: Side = Side.BUY) -> PlaceOrder:
    return PlaceOrder(
        "A", client_id, "ESZ6", side, quantity, OrderType.LIMIT, Decimal(price), time_in_force=TimeInForce.GTC
    )


async def test_market_order_fills_once_and_the_position_follows(
    route: str, connect: AdapterFactory, sim: NinjaTraderSimulator
) -> None:
    adapter = await connect(route)
    seen = Seen(adapter.events())
    ack = await adapter.place(PlaceOrder("A", "CTM1", "ESZ6", Side.BUY, 2))
    assert ack.broker_order_id == "CTM1" and ack.status in (OrderStatus.WORKING, OrderStatus.FILLED)
    fills = await wait_until(lambda: seen.fills("CTM1"), timeout_s=5, what="the fill")
    assert [(f.quantity, f.price, f.cumulative_quantity, f.leaves_quantity) for f in fills] == [(2, PRICE, 2, 0)]
    await wait_until(lambda: [p for p in seen.positions() if p.net_quantity == 2], timeout_s=5, what="position 2")
    snapshot = await adapter.snapshot("A")
    assert [(p.symbol, p.net_quantity, p.average_price) for p in snapshot.positions] == [("ESZ6", 2, PRICE)]
    assert snapshot.open_orders == ()
    assert sim.exchange.orders_with_client_id("Sim101", "CTM1")[0].quantity == 2


async def test_partial_fills_are_each_reported_once_with_their_prices(
    route: str, connect: AdapterFactory, sim: NinjaTraderSimulator
) -> None:
    adapter = await connect(route)
    seen = Seen(adapter.events())
    sim.faults("Sim101").partial_fill_lot = 1
    await adapter.place(limit("CTP1", "4990.00", quantity=2))
    sim.exchange.set_price("ESZ6", Decimal("4990.00"))
    await wait_until(lambda: seen.fills("CTP1"), timeout_s=5, what="the first partial fill")
    sim.exchange.set_price("ESZ6", Decimal("4990.00"))
    fills = await wait_until(lambda: len(seen.fills("CTP1")) == 2 and seen.fills("CTP1"), timeout_s=5, what="two fills")
    assert [(f.quantity, f.price, f.leaves_quantity) for f in fills] == [
        (1, Decimal("4990.00"), 1),
        (1, Decimal("4990.00"), 0),
    ]
    assert [e.status for e in seen.orders("CTP1")][-2:] == [OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED]


async def test_modify_then_cancel_and_a_repeated_cancel_is_a_duplicate(route: str, connect: AdapterFactory) -> None:
    adapter = await connect(route)
    seen = Seen(adapter.events())
    await adapter.place(limit("CTL1", "4990.00"))
    ack = await adapter.modify(ModifyOrder("A", "CTL1", quantity=3, limit_price=Decimal("4991.00")))
    assert ack.status is OrderStatus.WORKING
    last = await wait_until(
        lambda: [e for e in seen.orders("CTL1") if e.limit_price == Decimal("4991.00")], timeout_s=5, what="new terms"
    )
    assert last[-1].quantity == 3
    assert (await adapter.cancel(CancelOrder("A", "CTL1"))).status is OrderStatus.CANCELLED
    again = await adapter.cancel(CancelOrder("A", "CTL1"))
    assert again.duplicate and again.broker_order_id == "CTL1"
    with pytest.raises(UnknownOrder):
        await adapter.modify(ModifyOrder("A", "CTL1", quantity=2))
    with pytest.raises(UnknownOrder):
        await adapter.cancel(CancelOrder("A", "CTNEVER"))


async def test_rejects_and_lines_refused_before_sending(
    route: str, connect: AdapterFactory, sim: NinjaTraderSimulator
) -> None:
    adapter = await connect(route)
    sim.faults("Sim101").reject_next = "risk: max position exceeded"
    with pytest.raises(OrderRejected, match="Rejected by NinjaTrader") as rejected:
        await adapter.place(PlaceOrder("A", "CTR1", "ESZ6", Side.BUY, 1))
    assert not rejected.value.retriable
    lines_before = sim.desk.lines
    with pytest.raises(OrderRejected, match="unknown instrument root"):
        await adapter.place(PlaceOrder("A", "CTR2", "ZZZZ6", Side.BUY, 1))
    with pytest.raises(OrderRejected, match="no contract month"):
        await adapter.place(PlaceOrder("A", "CTR3", "ES", Side.BUY, 1))
    with pytest.raises(UnsupportedOperation, match="DAY or GTC"):
        await adapter.place(
            limit("CTR4", "4990").__class__("A", "CTR4", "ESZ6", Side.BUY, 1, time_in_force=TimeInForce.IOC)
        )
    assert sim.desk.lines == lines_before  # none of them reached NinjaTrader


async def test_flatten_cancels_our_orders_and_closes_with_an_order_carrying_its_id(
    route: str, connect: AdapterFactory, sim: NinjaTraderSimulator
) -> None:
    adapter = await connect(route)
    seen = Seen(adapter.events())
    await adapter.place(PlaceOrder("A", "CTF0", "ESZ6", Side.SELL, 3))
    await wait_until(lambda: adapter.book.open_positions("A"), timeout_s=5, what="the short")
    await adapter.place(limit("CTF1", "4900.00"))
    sim.exchange.set_price("ESZ6", Decimal("4996.00"))
    ack = await adapter.flatten(FlattenPosition("A", "CTFLAT"))
    assert ack.client_order_id == "CTFLAT" and ack.broker_order_id == "CTFLAT"
    await wait_until(lambda: seen.fills("CTFLAT"), timeout_s=5, what="the closing fill")
    assert seen.fills("CTFLAT")[0].side is Side.BUY and seen.fills("CTFLAT")[0].quantity == 3
    assert seen.orders("CTF1")[-1].status is OrderStatus.CANCELLED
    found = await adapter.lookup("A", "CTFLAT")
    assert found is not None and found.duplicate
    assert len(sim.exchange.orders_with_client_id("Sim101", "CTFLAT")) == 1
    await wait_until(lambda: not adapter.book.open_positions("A"), timeout_s=5, what="flat")
    nothing = await adapter.flatten(FlattenPosition("A", "CTFLAT2"))
    assert nothing.broker_order_id == "none" and sim.exchange.orders_with_client_id("Sim101", "CTFLAT2") == []


async def test_account_wide_commands_reach_ninjatrader(
    route: str, connect: AdapterFactory, sim: NinjaTraderSimulator
) -> None:
    adapter = await connect(route)
    await adapter.place(PlaceOrder("A", "CTW0", "ESZ6", Side.BUY, 1))
    await adapter.place(limit("CTW1", "4900.00"))
    await orders.close_position(adapter, "A", "ESZ6")
    await wait_until(
        lambda: sim.exchange.account("Sim101").positions["ESZ6"].net_quantity == 0, timeout_s=5, what="flat"
    )
    await adapter.place(limit("CTW2", "4900.00"))
    await orders.cancel_all_orders(adapter)
    await wait_until(lambda: not sim.exchange.open_orders("Sim101"), timeout_s=5, what="no working orders")
    await adapter.place(PlaceOrder("B", "CTW3", "ESZ6", Side.SELL, 2))
    await orders.flatten_everything(adapter)
    await wait_until(
        lambda: sim.exchange.account("Sim102").positions["ESZ6"].net_quantity == 0, timeout_s=5, what="B flat"
    )


async def test_lookup_finds_what_ninjatrader_holds_and_answers_none_for_the_rest_on_tcp(
    connect: AdapterFactory,
) -> None:
    adapter = await connect("ati")
    await adapter.place(limit("CTK1", "4990.00"))
    found = await adapter.lookup("A", "CTK1")
    assert found is not None and found.duplicate and found.status is OrderStatus.WORKING
    assert await adapter.lookup("A", "CTNEVER") is None


async def test_a_repeated_client_id_is_sent_again_and_placed_twice(
    route: str, connect: AdapterFactory, sim: NinjaTraderSimulator
) -> None:
    adapter = await connect(route)
    first = await adapter.place(PlaceOrder("A", "CTD1", "ESZ6", Side.BUY, 1))
    second = await adapter.place(PlaceOrder("A", "CTD1", "ESZ6", Side.BUY, 1))
    assert not first.duplicate and not second.duplicate
    assert len(sim.exchange.orders_with_client_id("Sim101", "CTD1")) == 2
    await wait_until(
        lambda: [p for p in adapter.book.open_positions("A") if p.net_quantity == 2], timeout_s=5, what="long 2"
    )
