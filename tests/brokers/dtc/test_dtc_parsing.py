"""DTC wire values to the domain model and back."""

from __future__ import annotations

import asyncio
import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from copytrader.brokers.dtc.codec import Message, make
from copytrader.brokers.dtc.messages import DBL_MAX, MsgType
from copytrader.brokers.dtc.messages import OrderStatus as DtcStatus
from copytrader.brokers.dtc.messages import OrderType as DtcType
from copytrader.brokers.dtc.messages import OrderUpdateReason as Reason
from copytrader.brokers.dtc.parsing import (
    WireValueError,
    contracts,
    fill_event,
    order_event,
    position_event,
    price_in,
    submit_order,
)
from copytrader.brokers.dtc.simulator import DtcSimulator
from copytrader.brokers.dtc.transport import DtcConnection, DtcEndpoint
from copytrader.brokers.model import OrderStatus, OrderType, PlaceOrder, Side


def test_prices_read_as_the_decimal_they_were_written_as() -> None:
    assert price_in(5000.25) == Decimal("5000.25") and price_in(0.1) == Decimal("0.1")
    assert price_in(DBL_MAX) is None and price_in(math.nan) is None and price_in(math.inf) is None


@given(st.decimals(min_value=Decimal("0.25"), max_value=Decimal(100000), places=2))
def test_tick_prices_survive_the_double(price: Decimal) -> None:
    out = price_in(float(price))
    assert out is not None and out == price


def test_quantities_must_be_whole_contracts() -> None:
    assert contracts(3.0) == 3 and contracts(DBL_MAX) == 0
    with pytest.raises(WireValueError):
        contracts(1.5)


@pytest.mark.parametrize(
    ("order_type", "limit", "stop", "price1", "price2"),
    [
        (OrderType.MARKET, None, None, DBL_MAX, DBL_MAX),
        (OrderType.LIMIT, Decimal("4990.25"), None, 4990.25, DBL_MAX),
        (OrderType.STOP, None, Decimal("5010.5"), 5010.5, DBL_MAX),
        (OrderType.STOP_LIMIT, Decimal("5011"), Decimal("5010.5"), 5010.5, 5011.0),
    ],
)
def test_submit_order_places_prices_as_the_header_says(
    order_type: OrderType, limit: Decimal | None, stop: Decimal | None, price1: float, price2: float
) -> None:
    command = PlaceOrder("acct", "cid", "ESZ6", Side.SELL, 2, order_type, limit_price=limit, stop_price=stop)
    msg = submit_order(command, "DTC-LEADER")
    assert (msg["Price1"], msg["Price2"], msg["BuySell"], msg["Quantity"]) == (price1, price2, 2, 2.0)
    assert (msg["ClientOrderID"], msg["TradeAccount"], msg["IsAutomatedOrder"]) == ("cid", "DTC-LEADER", 1)


def test_markers_and_unknown_values() -> None:
    assert order_event(make(MsgType.ORDER_UPDATE, NoOrders=1), "a") is None
    assert position_event(make(MsgType.POSITION_UPDATE, NoPositions=1), "a") is None
    strange = make(MsgType.ORDER_UPDATE, OrderStatus=int(DtcStatus.OPEN), OrderType=int(DtcType.LIMIT_IF_TOUCHED))
    with pytest.raises(WireValueError, match="order type"):
        order_event(strange, "a")
    ack = make(MsgType.ORDER_UPDATE, OrderStatus=int(DtcStatus.OPEN), OrderUpdateReason=int(Reason.NEW_ORDER_ACCEPTED))
    assert fill_event(ack, "a") is None


async def test_the_simulators_updates_parse_into_the_domain(sim: DtcSimulator) -> None:
    sim.exchange.set_price("ESZ6", Decimal("5000.25"))
    sim.exchange.account("DTC-LEADER").faults.partial_fill_lot = 1
    received: list[Message] = []
    connection = await DtcConnection.open(DtcEndpoint("127.0.0.1", sim.port, "sim-trader", "sim"), received.append)
    try:
        connection.send(submit_order(PlaceOrder("acct", "p1", "ESZ6", Side.BUY, 2), "DTC-LEADER"))
        connection.send(
            submit_order(
                PlaceOrder("acct", "l1", "ESZ6", Side.SELL, 1, OrderType.LIMIT, Decimal("5100.75")), "DTC-LEADER"
            )
        )

        async def settled() -> None:
            reasons = {(m.values.get("ClientOrderID"), m.values.get("OrderUpdateReason")) for m in received}
            while not {("l1", Reason.NEW_ORDER_ACCEPTED), ("p1", Reason.ORDER_FILLED_PARTIALLY)} <= reasons:
                await asyncio.sleep(0.01)
                reasons = {(m.values.get("ClientOrderID"), m.values.get("OrderUpdateReason")) for m in received}

        await asyncio.wait_for(settled(), 5)
        sim.exchange.set_price("ESZ6", Decimal("5000.25"))

        async def filled() -> None:
            while not any(m.values.get("OrderUpdateReason") == Reason.ORDER_FILLED for m in received):
                await asyncio.sleep(0.01)

        await asyncio.wait_for(filled(), 5)
    finally:
        await connection.close()
    updates = [m for m in received if m.type is MsgType.ORDER_UPDATE]
    orders = [order_event(m, "acct") for m in updates]
    fills = [f for f in (fill_event(m, "acct") for m in updates) if f is not None]
    resting = next(o for o in orders if o is not None and o.client_order_id == "l1")
    assert (resting.status, resting.limit_price, resting.order_type) == (
        OrderStatus.WORKING,
        Decimal("5100.75"),
        OrderType.LIMIT,
    )
    assert [(f.quantity, f.cumulative_quantity, f.leaves_quantity, f.price) for f in fills] == [
        (1, 1, 1, Decimal("5000.25")),
        (1, 2, 0, Decimal("5000.25")),
    ]
    assert all(f.client_order_id == "p1" and f.side is Side.BUY and f.fill_id for f in fills)
    positions = [position_event(m, "acct") for m in received if m.type is MsgType.POSITION_UPDATE]
    assert positions[-1] is not None and positions[-1].net_quantity == 2
    assert positions[-1].average_price == Decimal("5000.25")
