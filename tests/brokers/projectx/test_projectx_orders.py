"""Adapter ↔ simulator: auth, order entry, fills, modify, cancel, rejects, flatten."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from projectx_helpers import next_event, session_config

from copytrader.brokers.errors import AuthenticationFailed, OrderRejected, UnknownOrder
from copytrader.brokers.model import (
    CancelOrder,
    ConnectionState,
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

SYMBOL = "ESZ6"


def _place(cid: str, account: str = "f1", **kw: object) -> PlaceOrder:
    return PlaceOrder(
        account_id=account,
        client_order_id=cid,
        symbol=kw.pop("symbol", SYMBOL),  # type: ignore[arg-type]
        side=kw.pop("side", Side.BUY),
        quantity=kw.pop("quantity", 1),
        **kw,
    )  # type: ignore[arg-type]


async def test_auth_ok_maps_accounts(adapter: ProjectXAdapter, sim) -> None:
    assert adapter.state is ConnectionState.CONNECTED
    assert adapter._ids == {ours: sim.account_id(name) for ours, name in adapter.px.accounts.items()}
    assert 0 < adapter.health().rate_headroom <= 1.0


async def test_auth_bad_key_is_permanent(sim) -> None:
    bad = ProjectXAdapter(replace(session_config(sim), secret="wrong"))
    with pytest.raises(AuthenticationFailed) as info:
        await bad.connect()
    assert info.value.code == "3" and not info.value.retriable
    assert bad.state is ConnectionState.DISCONNECTED


async def test_market_order_ack_then_fill(adapter: ProjectXAdapter) -> None:
    events = adapter.events()
    ack = await adapter.place(_place("mkt-1"))
    assert ack.broker_order_id and not ack.duplicate
    fill = await next_event(events, lambda e: isinstance(e, FillEvent) and e.client_order_id == "mkt-1")
    assert fill.account_id == "f1" and fill.symbol == SYMBOL and fill.quantity == 1 and fill.leaves_quantity == 0
    assert isinstance(fill.price, Decimal)
    position = await next_event(events, lambda e: isinstance(e, PositionEvent) and e.account_id == "f1")
    assert position.net_quantity == 1


async def test_limit_order_works_then_fills_when_price_crosses(adapter: ProjectXAdapter, sim) -> None:
    events = adapter.events()
    sim.exchange.prices.set_price(SYMBOL, Decimal("5000"))
    await adapter.place(_place("lmt-1", order_type=OrderType.LIMIT, limit_price=Decimal("4990.00")))
    working = await next_event(events, lambda e: isinstance(e, OrderEvent) and e.client_order_id == "lmt-1")
    assert working.status is OrderStatus.WORKING and working.limit_price == Decimal("4990")
    sim.exchange.prices.set_price(SYMBOL, Decimal("4989"))
    fill = await next_event(events, lambda e: isinstance(e, FillEvent) and e.client_order_id == "lmt-1")
    assert fill.price == Decimal("4990")


async def test_stop_order_triggers(adapter: ProjectXAdapter, sim) -> None:
    events = adapter.events()
    sim.exchange.prices.set_price(SYMBOL, Decimal("5000"))
    await adapter.place(_place("stp-1", side=Side.SELL, order_type=OrderType.STOP, stop_price=Decimal("4980")))
    await next_event(events, lambda e: isinstance(e, OrderEvent) and e.client_order_id == "stp-1")
    sim.exchange.prices.set_price(SYMBOL, Decimal("4975"))
    fill = await next_event(events, lambda e: isinstance(e, FillEvent) and e.client_order_id == "stp-1")
    assert fill.side is Side.SELL


async def test_partial_fills_accumulate(adapter: ProjectXAdapter, sim) -> None:
    sim.faults("PX-FOLLOWER-1").partial_fill_lot = 1
    events = adapter.events()
    await adapter.place(_place("part-1", quantity=3))
    fills = [
        await next_event(events, lambda e: isinstance(e, FillEvent) and e.client_order_id == "part-1") for _ in range(3)
    ]
    assert [f.cumulative_quantity for f in fills] == [1, 2, 3]
    assert [f.leaves_quantity for f in fills] == [2, 1, 0]
    assert fills[0].is_partial and not fills[-1].is_partial


async def test_modify_then_cancel_by_client_id(adapter: ProjectXAdapter, sim) -> None:
    events = adapter.events()
    sim.exchange.prices.set_price(SYMBOL, Decimal("5000"))
    await adapter.place(_place("mod-1", order_type=OrderType.LIMIT, limit_price=Decimal("4900")))
    await adapter.modify(ModifyOrder("f1", "mod-1", quantity=2, limit_price=Decimal("4901.25")))
    changed = await next_event(
        events, lambda e: isinstance(e, OrderEvent) and e.client_order_id == "mod-1" and e.quantity == 2
    )
    assert changed.limit_price == Decimal("4901.25")
    ack = await adapter.cancel(CancelOrder("f1", "mod-1"))
    assert ack.status is OrderStatus.CANCELLED
    await next_event(
        events,
        lambda e: isinstance(e, OrderEvent) and e.client_order_id == "mod-1" and e.status is OrderStatus.CANCELLED,
    )
    again = await adapter.cancel(CancelOrder("f1", "mod-1"))  # a redelivered cancel is done already
    assert again.duplicate and again.broker_order_id == ack.broker_order_id
    with pytest.raises(UnknownOrder):
        await adapter.cancel(CancelOrder("f1", "never-placed"))


async def test_reject_carries_reason(adapter: ProjectXAdapter, sim) -> None:
    sim.faults("PX-FOLLOWER-1").reject_next = "risk: daily loss limit"
    with pytest.raises(OrderRejected) as info:
        await adapter.place(_place("rej-1"))
    assert "daily loss limit" in info.value.message and info.value.code == "2"
    with pytest.raises(OrderRejected):  # off-tick price: refused by the kernel's checks
        await adapter.place(_place("rej-2", order_type=OrderType.LIMIT, limit_price=Decimal("4990.10")))


async def test_flatten_and_snapshot(adapter: ProjectXAdapter, sim) -> None:
    events = adapter.events()
    await adapter.place(_place("fl-1", quantity=2))
    await next_event(events, lambda e: isinstance(e, PositionEvent) and e.net_quantity == 2)
    sim.exchange.prices.set_price(SYMBOL, Decimal("5000"))
    await adapter.place(_place("fl-2", order_type=OrderType.LIMIT, limit_price=Decimal("4000")))
    snap = await adapter.snapshot("f1")
    assert [p.net_quantity for p in snap.positions] == [2]
    assert [o.client_order_id for o in snap.open_orders] == ["fl-2"]
    ack = await adapter.flatten(FlattenPosition("f1", "flat-1", SYMBOL))
    await next_event(events, lambda e: isinstance(e, PositionEvent) and e.account_id == "f1" and e.net_quantity == 0)
    # The closing order is ours by tag: it carries the flatten's client order id.
    [closing] = sim.exchange.orders_with_client_id("PX-FOLLOWER-1", "flat-1")
    assert ack.broker_order_id == closing.order_id and closing.side is Side.SELL and closing.quantity == 2
    snap = await adapter.snapshot("f1")
    assert snap.positions == () and snap.open_orders == ()
