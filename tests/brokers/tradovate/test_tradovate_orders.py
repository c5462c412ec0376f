"""Order flow through TradovateAdapter ↔ simulator: ack → events, modify, cancel, rejects."""

from __future__ import annotations

from decimal import Decimal

import aiohttp
import pytest
from tradovate_helpers import next_event

from copytrader.brokers.errors import OrderRejected, UnknownOrder
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
from copytrader.brokers.tradovate.adapter import TradovateAdapter
from copytrader.brokers.tradovate.simulator import TradovateSimulator

ACCT = "DEMO1001"


def order_event(cl: str, status: OrderStatus):  # type: ignore[no-untyped-def]
    return lambda e: isinstance(e, OrderEvent) and e.client_order_id == cl and e.status is status


async def test_market_order_ack_then_fill_events(adapter: TradovateAdapter) -> None:
    sub, fills, done = adapter.events(), adapter.events(), adapter.events()
    ack = await adapter.place(PlaceOrder("f1", "mkt-1", "ESZ6", Side.BUY, 2))
    assert ack.broker_order_id and not ack.duplicate
    accepted = await next_event(sub, order_event("mkt-1", OrderStatus.WORKING))
    assert accepted.broker_order_id == ack.broker_order_id and accepted.account_id == "f1"
    fill = await next_event(fills, lambda e: isinstance(e, FillEvent) and e.client_order_id == "mkt-1")
    assert (fill.quantity, fill.leaves_quantity, fill.symbol) == (2, 0, "ESZ6")
    assert isinstance(fill.price, Decimal)
    await next_event(done, order_event("mkt-1", OrderStatus.FILLED))
    position = await next_event(sub, lambda e: isinstance(e, PositionEvent) and e.account_id == "f1")
    assert position.net_quantity == 2


async def test_limit_order_fills_when_price_reaches_it(adapter: TradovateAdapter, sim: TradovateSimulator) -> None:
    sub = adapter.events()
    await adapter.place(PlaceOrder("f1", "lmt-1", "NQZ6", Side.BUY, 1, OrderType.LIMIT, limit_price=Decimal("17000")))
    working = await next_event(sub, order_event("lmt-1", OrderStatus.WORKING))
    assert working.limit_price == Decimal("17000")
    sim.exchange.prices.set_price("NQZ6", Decimal("16990"))
    fill = await next_event(sub, lambda e: isinstance(e, FillEvent) and e.client_order_id == "lmt-1")
    assert fill.price == Decimal("17000")


async def test_stop_order_triggers(adapter: TradovateAdapter, sim: TradovateSimulator) -> None:
    sub = adapter.events()
    await adapter.place(PlaceOrder("f1", "stp-1", "ESZ6", Side.BUY, 1, OrderType.STOP, stop_price=Decimal("5010")))
    await next_event(sub, order_event("stp-1", OrderStatus.WORKING))
    sim.exchange.prices.set_price("ESZ6", Decimal("5020"))
    fill = await next_event(sub, lambda e: isinstance(e, FillEvent) and e.client_order_id == "stp-1")
    assert fill.price >= Decimal("5010")


async def test_partial_fills(adapter: TradovateAdapter, sim: TradovateSimulator) -> None:
    sim.faults(ACCT).partial_fill_lot = 1
    sub, done = adapter.events(), adapter.events()
    await adapter.place(PlaceOrder("f1", "part-1", "ESZ6", Side.SELL, 3))
    leaves = []
    for _ in range(3):
        fill = await next_event(sub, lambda e: isinstance(e, FillEvent) and e.client_order_id == "part-1")
        leaves.append((fill.quantity, fill.cumulative_quantity, fill.leaves_quantity))
    assert leaves == [(1, 1, 2), (1, 2, 1), (1, 3, 0)]
    partial = await next_event(done, order_event("part-1", OrderStatus.FILLED))
    assert partial.filled_quantity == 3


async def test_modify_and_cancel_by_client_order_id(adapter: TradovateAdapter) -> None:
    sub = adapter.events()
    await adapter.place(PlaceOrder("f1", "mod-1", "ESZ6", Side.BUY, 1, OrderType.LIMIT, limit_price=Decimal("4000")))
    ack = await adapter.modify(ModifyOrder("f1", "mod-1", quantity=3, limit_price=Decimal("4001.25")))
    assert ack.client_order_id == "mod-1"
    modified = await next_event(sub, lambda e: isinstance(e, OrderEvent) and e.limit_price == Decimal("4001.25"))
    assert modified.quantity == 3 and modified.status is OrderStatus.WORKING
    await adapter.cancel(CancelOrder("f1", "mod-1"))
    cancelled = await next_event(sub, order_event("mod-1", OrderStatus.CANCELLED))
    assert cancelled.broker_order_id == ack.broker_order_id
    again = await adapter.cancel(CancelOrder("f1", "mod-1"))  # a redelivered cancel is done already
    assert again.duplicate and again.broker_order_id == ack.broker_order_id
    with pytest.raises(UnknownOrder):
        await adapter.modify(ModifyOrder("f1", "never-placed", quantity=2))


async def test_reject_carries_failure_reason(adapter: TradovateAdapter, sim: TradovateSimulator) -> None:
    sub = adapter.events()
    sim.faults(ACCT).reject_next = "SessionClosed"
    with pytest.raises(OrderRejected) as info:
        await adapter.place(PlaceOrder("f1", "rej-1", "ESZ6", Side.BUY, 1))
    assert info.value.code == "SessionClosed"
    rejected = await next_event(sub, order_event("rej-1", OrderStatus.REJECTED))
    assert rejected.reason and "SessionClosed" in rejected.reason
    with pytest.raises(OrderRejected) as bad_price:
        await adapter.place(
            PlaceOrder("f1", "rej-2", "ESZ6", Side.BUY, 1, OrderType.LIMIT, limit_price=Decimal("4000.10"))
        )
    assert bad_price.value.code == "InvalidPrice"


async def test_repeated_client_order_id_is_a_new_order(adapter: TradovateAdapter, sim: TradovateSimulator) -> None:
    """Tradovate documents no uniqueness for clOrdId: the simulator must not dedupe, and the
    adapter must not pretend it did (the executor looks up before any resend)."""
    command = PlaceOrder("f1", "dup-1", "ESZ6", Side.BUY, 1, OrderType.LIMIT, limit_price=Decimal("4000"))
    first = await adapter.place(command)
    second = await adapter.place(command)
    assert second.broker_order_id != first.broker_order_id and not second.duplicate
    assert len(sim.exchange.orders_with_client_id(ACCT, "dup-1")) == 2
    placed = [body for endpoint, body in sim.api.calls if endpoint == "order/placeorder"]
    assert len(placed) == 2
    assert all(body["isAutomated"] is True and body["clOrdId"] == "dup-1" for body in placed)


async def test_flatten_closes_the_position(adapter: TradovateAdapter) -> None:
    sub = adapter.events()
    await adapter.place(PlaceOrder("f2", "fl-1", "MESZ6", Side.BUY, 2))
    await next_event(sub, lambda e: isinstance(e, PositionEvent) and e.account_id == "f2" and e.net_quantity == 2)
    await adapter.flatten(FlattenPosition("f2", "fl-x", "MESZ6"))
    flat = await next_event(sub, lambda e: isinstance(e, PositionEvent) and e.account_id == "f2")
    assert flat.net_quantity == 0
    snap = await adapter.snapshot("f2")
    assert snap.positions == () and snap.balance > 0


async def test_leader_sees_orders_placed_by_another_client(adapter: TradovateAdapter, sim: TradovateSimulator) -> None:
    """The leader's adapter must report orders the trader placed elsewhere (web, mobile)."""
    sub = adapter.events()
    creds = sim.demo_credentials()
    login = {k: creds[k] for k in ("name", "password", "appId", "appVersion", "cid", "sec", "deviceId")}
    async with aiohttp.ClientSession() as http:
        token = (await (await http.post(f"{sim.base_url}/auth/accesstokenrequest", json=login)).json())["accessToken"]
        body = {
            "accountSpec": ACCT,
            "accountId": sim.account_id(ACCT),
            "clOrdId": "manual-1",
            "action": "Sell",
            "symbol": "ESZ6",
            "orderQty": 1,
            "orderType": "Market",
            "isAutomated": False,
        }
        reply = await http.post(
            f"{sim.base_url}/order/placeorder", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        order_id = str((await reply.json())["orderId"])
    accepted = await next_event(sub, lambda e: isinstance(e, OrderEvent) and e.broker_order_id == order_id)
    assert accepted.client_order_id == "manual-1" and accepted.side is Side.SELL
    fill = await next_event(sub, lambda e: isinstance(e, FillEvent) and e.broker_order_id == order_id)
    assert fill.account_id == "f1" and fill.quantity == 1
