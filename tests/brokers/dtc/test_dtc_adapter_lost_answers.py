"""Answers lost with the connection (fault ``lose_response_next``): the request was carried out,
the adapter says ``sent=True`` and never resends, and lookup never answers "none" for it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from adapter_helpers import ACCOUNT, SYMBOL, Recorder

from copytrader.brokers.dtc.adapter import DtcAdapter
from copytrader.brokers.dtc.simulator import DtcSimulator
from copytrader.brokers.errors import BrokerUnavailable
from copytrader.brokers.model import (
    CancelOrder,
    ConnectionEvent,
    ConnectionState,
    FillEvent,
    FlattenPosition,
    OrderEvent,
    OrderStatus,
    OrderType,
    PlaceOrder,
    PositionEvent,
    Side,
    TimeInForce,
)


def back_online(e: object) -> bool:
    return isinstance(e, ConnectionEvent) and e.state is ConnectionState.CONNECTED


async def lose_next_answer(adapter: DtcAdapter, dsim: DtcSimulator, events: Recorder) -> None:
    """The next order request is carried out and its answer lost with the connection (the
    recorder subscribed after connect, so the CONNECTED it awaits next is the reconnect)."""
    dsim.faults(adapter.broker_account(ACCOUNT)).lose_response_next = 1


def kernel_orders(adapter: DtcAdapter, dsim: DtcSimulator) -> list[str | None]:
    return [o.client_order_id for o in dsim.exchange.account(adapter.broker_account(ACCOUNT)).orders.values()]


async def test_a_resting_order_whose_answer_was_lost_is_found(adapter: DtcAdapter, dsim: DtcSimulator) -> None:
    events = Recorder(adapter.events())
    await lose_next_answer(adapter, dsim, events)
    limit = PlaceOrder(ACCOUNT, "l1", SYMBOL, Side.BUY, 1, OrderType.LIMIT, Decimal("4990.00"), None, TimeInForce.GTC)
    with pytest.raises(BrokerUnavailable) as failure:
        await adapter.place(limit)
    assert failure.value.sent is True
    await events.expect(back_online)
    found = await adapter.lookup(ACCOUNT, "l1")
    assert found is not None and found.duplicate and found.status is OrderStatus.WORKING
    assert kernel_orders(adapter, dsim) == ["l1"]  # carried out once, never resent


async def test_a_filled_order_whose_answer_was_lost_is_never_called_absent(
    adapter: DtcAdapter, dsim: DtcSimulator
) -> None:
    events = Recorder(adapter.events())
    await lose_next_answer(adapter, dsim, events)
    with pytest.raises(BrokerUnavailable) as failure:
        await adapter.place(PlaceOrder(ACCOUNT, "m1", SYMBOL, Side.BUY, 2))
    assert failure.value.sent is True
    await events.expect(back_online)
    fill = await events.expect(lambda e: isinstance(e, FillEvent))  # the resync reports the missed fill
    assert isinstance(fill, FillEvent) and fill.quantity == 2 and fill.client_order_id is None
    await events.expect(lambda e: isinstance(e, PositionEvent) and e.net_quantity == 2)
    # The fill history names no ClientOrderID and this session never saw m1's updates:
    with pytest.raises(BrokerUnavailable, match="cannot tell"):
        await adapter.lookup(ACCOUNT, "m1")
    assert kernel_orders(adapter, dsim) == ["m1"]


async def test_a_cancel_whose_answer_was_lost_is_done_and_a_retry_says_so(
    adapter: DtcAdapter, dsim: DtcSimulator
) -> None:
    events = Recorder(adapter.events())
    limit = PlaceOrder(ACCOUNT, "c1", SYMBOL, Side.SELL, 1, OrderType.LIMIT, Decimal("5010.00"), None, TimeInForce.GTC)
    placed = await adapter.place(limit)
    await lose_next_answer(adapter, dsim, events)
    with pytest.raises(BrokerUnavailable) as failure:
        await adapter.cancel(CancelOrder(ACCOUNT, "c1"))
    assert failure.value.sent is True
    await events.expect(back_online)
    ended = await events.expect(lambda e: isinstance(e, OrderEvent) and e.status is OrderStatus.CANCELLED)
    assert ended.client_order_id == "c1"  # type: ignore[union-attr]  # OrderEvent
    again = await adapter.cancel(CancelOrder(ACCOUNT, "c1"))
    assert again.duplicate and again.broker_order_id == placed.broker_order_id


async def test_a_flatten_whose_answer_was_lost_closed_the_position_once(
    adapter: DtcAdapter, dsim: DtcSimulator
) -> None:
    events = Recorder(adapter.events())
    await adapter.place(PlaceOrder(ACCOUNT, "m1", SYMBOL, Side.SELL, 3))
    await events.expect(lambda e: isinstance(e, PositionEvent) and e.net_quantity == -3)
    await lose_next_answer(adapter, dsim, events)
    with pytest.raises(BrokerUnavailable) as failure:
        await adapter.flatten(FlattenPosition(ACCOUNT, "fl"))
    assert failure.value.sent is True
    await events.expect(back_online)
    await events.expect(lambda e: isinstance(e, PositionEvent) and e.net_quantity == 0)
    assert kernel_orders(adapter, dsim).count("fl") == 1
