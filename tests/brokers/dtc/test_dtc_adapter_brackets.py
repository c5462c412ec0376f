"""DtcAdapter brackets: a parent entry with its exits as one OCO, in both encodings."""

from __future__ import annotations

from decimal import Decimal

import pytest
from adapter_helpers import ACCOUNT, SYMBOL, Recorder, adapter_for, frozen

from copytrader.brokers.dtc.adapter import DtcAdapter
from copytrader.brokers.dtc.messages import Encoding
from copytrader.brokers.dtc.simulator import DtcSimulator, create_simulator
from copytrader.brokers.errors import OrderRejected, UnsupportedOperation
from copytrader.brokers.model import (
    Bracket,
    ConnectionEvent,
    FillEvent,
    OrderEvent,
    OrderStatus,
    OrderType,
    PlaceOrder,
    PositionEvent,
    Side,
    TimeInForce,
)


def working(side: Side, order_type: OrderType) -> object:
    return lambda e: (
        isinstance(e, OrderEvent) and e.side is side and e.order_type is order_type and e.status is OrderStatus.WORKING
    )


async def test_market_entry_exits_are_priced_at_the_real_fill(adapter: DtcAdapter, dsim: DtcSimulator) -> None:
    events = Recorder(adapter.events())
    dsim.exchange.set_price(SYMBOL, Decimal("5002.00"))  # the reference price (5000) is stale
    bracket = Bracket(take_profit=Decimal("10"), stop_loss=Decimal("5"), reference_price=Decimal("5000.00"))
    ack = await adapter.place(PlaceOrder(ACCOUNT, "b1", SYMBOL, Side.BUY, 1, bracket=bracket))
    assert ack.client_order_id == "b1"
    take_profit = await events.expect(working(Side.SELL, OrderType.LIMIT))
    stop_loss = await events.expect(working(Side.SELL, OrderType.STOP))
    assert take_profit.limit_price == Decimal("5012.00")  # type: ignore[union-attr]  # OrderEvent
    assert stop_loss.stop_price == Decimal("4997.00")  # type: ignore[union-attr]  # OrderEvent
    assert {take_profit.client_order_id, stop_loss.client_order_id} == {"b1.tp", "b1.sl"}  # type: ignore[union-attr]  # OrderEvent
    dsim.exchange.set_price(SYMBOL, Decimal("4997.00"))
    await events.expect(lambda e: isinstance(e, FillEvent) and e.client_order_id == "b1.sl")
    cancelled = await events.expect(lambda e: isinstance(e, OrderEvent) and e.status is OrderStatus.CANCELLED)
    assert cancelled.client_order_id == "b1.tp"  # type: ignore[union-attr]  # OrderEvent
    await events.expect(lambda e: isinstance(e, PositionEvent) and e.net_quantity == 0)


async def test_a_short_limit_entry_holds_its_exits_until_it_fills(adapter: DtcAdapter, dsim: DtcSimulator) -> None:
    events = Recorder(adapter.events())
    dsim.exchange.set_price(SYMBOL, Decimal("5000.00"))
    bracket = Bracket(take_profit=Decimal("4"), stop_loss=Decimal("6"))
    entry = PlaceOrder(
        ACCOUNT, "s1", SYMBOL, Side.SELL, 2, OrderType.LIMIT, Decimal("5005.00"), None, TimeInForce.GTC, bracket
    )
    await adapter.place(entry)
    held = await events.expect(lambda e: isinstance(e, OrderEvent) and e.client_order_id == "s1.tp")
    assert held.status is OrderStatus.PENDING  # type: ignore[union-attr]  # OrderEvent
    dsim.exchange.set_price(SYMBOL, Decimal("5005.00"))
    take_profit = await events.expect(working(Side.BUY, OrderType.LIMIT))
    stop_loss = await events.expect(working(Side.BUY, OrderType.STOP))
    assert take_profit.limit_price == Decimal("5001.00") and take_profit.quantity == 2  # type: ignore[union-attr]  # OrderEvent
    assert stop_loss.stop_price == Decimal("5011.00")  # type: ignore[union-attr]  # OrderEvent


async def test_refused_exits_cancel_a_working_entry(adapter: DtcAdapter, dsim: DtcSimulator) -> None:
    events = Recorder(adapter.events())
    dsim.exchange.set_price(SYMBOL, Decimal("5000.00"))
    bracket = Bracket(take_profit=Decimal("10"), stop_loss=Decimal("6000"))  # a stop below zero is refused
    entry = PlaceOrder(
        ACCOUNT, "r1", SYMBOL, Side.BUY, 1, OrderType.LIMIT, Decimal("4990.00"), None, TimeInForce.GTC, bracket
    )
    with pytest.raises(OrderRejected, match="entry was cancelled"):
        await adapter.place(entry)
    await events.expect(
        lambda e: isinstance(e, OrderEvent) and e.client_order_id == "r1" and e.status is OrderStatus.CANCELLED
    )
    assert dsim.exchange.open_orders(adapter.broker_account(ACCOUNT)) == []


async def test_refused_exits_of_a_filled_entry_are_reported(adapter: DtcAdapter, dsim: DtcSimulator) -> None:
    events = Recorder(adapter.events())
    dsim.exchange.set_price(SYMBOL, Decimal("5000.00"))
    bracket = Bracket(take_profit=Decimal("10"), stop_loss=Decimal("6000"), reference_price=Decimal("5000.00"))
    ack = await adapter.place(PlaceOrder(ACCOUNT, "f1", SYMBOL, Side.BUY, 1, bracket=bracket))
    assert ack.client_order_id == "f1"  # the entry exists and filled: it is the answer
    problem = await events.expect(lambda e: isinstance(e, ConnectionEvent) and "stands without" in (e.reason or ""))
    assert "f1" in (problem.reason or "")  # type: ignore[union-attr]  # ConnectionEvent
    assert "stands without" in (adapter.health().last_error or "")


async def test_brackets_need_both_exits_and_a_server_that_supports_them(encoding: Encoding) -> None:
    simulator = create_simulator(exchange=frozen(), oco_supported=False)
    await simulator.start()
    adapter = adapter_for(simulator, encoding)
    await adapter.connect()
    try:
        both = Bracket(take_profit=Decimal("10"), stop_loss=Decimal("5"), reference_price=Decimal("5000.00"))
        with pytest.raises(UnsupportedOperation, match="OCOOrdersSupported"):
            await adapter.place(PlaceOrder(ACCOUNT, "n1", SYMBOL, Side.BUY, 1, bracket=both))
        simulator.oco.supported = True
        await adapter.disconnect()
        await adapter.connect()
        one = Bracket(take_profit=Decimal("10"))
        with pytest.raises(UnsupportedOperation, match="both"):
            await adapter.place(PlaceOrder(ACCOUNT, "n2", SYMBOL, Side.BUY, 1, bracket=one))
        assert simulator.exchange.account(adapter.broker_account(ACCOUNT)).orders == {}  # nothing was placed
    finally:
        await adapter.disconnect()
        await simulator.stop()
