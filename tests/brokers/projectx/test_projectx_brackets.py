"""Brackets as the live gateway treats them: signed ticks, Auto OCO mode only, children at once.

Sources (docs/fidelity/projectx.md X-10..X-13): the gateway refuses a long's positive stop-loss
ticks with errorCode 2 "Ticks should be less than zero when longing", refuses brackets on an
account in Position Brackets mode, and pushes the children at once as status 8 (Suspended),
tagged ``<tag>-SL`` / ``<tag>-TP``, until the entry fills.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from projectx_helpers import next_event, session_config

from copytrader.brokers.errors import OrderRejected
from copytrader.brokers.model import (
    Bracket,
    CancelOrder,
    FillEvent,
    OrderEvent,
    OrderStatus,
    OrderType,
    PlaceOrder,
    Side,
)
from copytrader.brokers.projectx.adapter import ProjectXAdapter
from copytrader.brokers.projectx.simulator import ProjectXSimulator, create_simulator
from copytrader.brokers.simkernel.exchange import SimExchange

SYMBOL = "ESZ6"
KERNEL = "PX-FOLLOWER-1"


@pytest.fixture
async def oco_sim() -> AsyncIterator[ProjectXSimulator]:
    sim = create_simulator(SimExchange(seed=11), tick_ms=10, keepalive_s=1.0, auto_oco_accounts=[KERNEL])
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


@pytest.fixture
async def oco_adapter(oco_sim: ProjectXSimulator) -> AsyncIterator[ProjectXAdapter]:
    adapter = ProjectXAdapter(session_config(oco_sim))
    await adapter.connect()
    try:
        yield adapter
    finally:
        await adapter.disconnect()


def _bracketed(cid: str, side: Side = Side.BUY, **kw: Any) -> PlaceOrder:
    return PlaceOrder(
        "f1", cid, SYMBOL, side, 1, bracket=Bracket(take_profit=Decimal("5"), stop_loss=Decimal("2.50")), **kw
    )


async def _raw_place(sim: ProjectXSimulator, body: dict[str, Any]) -> dict[str, Any]:
    creds = sim.demo_credentials()
    async with aiohttp.ClientSession(base_url=sim.base_url) as http:
        async with http.post(
            "/api/Auth/loginKey", json={"userName": creds["userName"], "apiKey": creds["apiKey"]}
        ) as r:
            token = (await r.json())["token"]
        base = {
            "accountId": creds["accounts"][KERNEL],
            "contractId": sim.state.front["ES"].contract_id,
            "type": 2,
            "side": 0,
            "size": 1,
        }
        async with http.post(
            "/api/Order/place", json={**base, **body}, headers={"Authorization": f"Bearer {token}"}
        ) as r:
            return dict(await r.json())


async def test_position_brackets_mode_refuses_with_the_gateway_text(adapter: ProjectXAdapter, sim) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(OrderRejected) as info:
        await adapter.place(_bracketed("pb-1"))
    assert info.value.code == "2" and "Auto OCO Brackets" in info.value.message
    [record] = sim.exchange.orders_with_client_id(KERNEL, "pb-1")  # the gateway keeps a rejected record
    assert record.status is OrderStatus.REJECTED


async def test_a_refusal_whose_entry_lives_anyway_is_not_reported_rejected() -> None:
    """The other reading of the Position Brackets refusal: the entry is placed without brackets.
    The adapter must report the live order (duplicate) instead of a rejection it would never track."""
    sim = create_simulator(SimExchange(seed=11), tick_ms=10, position_brackets_places_entry=True)
    await sim.start()
    adapter = ProjectXAdapter(session_config(sim))
    try:
        await adapter.connect()
        ack = await adapter.place(_bracketed("pb-3"))
        [order] = sim.exchange.orders_with_client_id(KERNEL, "pb-3")
        assert ack.duplicate and ack.broker_order_id == order.order_id
        assert order.status is not OrderStatus.REJECTED and order.bracket is None
    finally:
        await adapter.disconnect()
        await sim.stop()


async def test_an_account_known_to_be_in_position_mode_is_refused_before_sending(sim) -> None:  # type: ignore[no-untyped-def]
    adapter = ProjectXAdapter(session_config(sim, position_bracket_accounts=["f1"]))
    await adapter.connect()
    try:
        with pytest.raises(OrderRejected) as info:
            await adapter.place(_bracketed("pb-2"))
        assert info.value.code == "BRACKET_MODE" and "Auto OCO" in info.value.message
        assert sim.exchange.orders_with_client_id(KERNEL, "pb-2") == []
    finally:
        await adapter.disconnect()


@pytest.mark.parametrize(
    ("side", "leg", "ticks", "text"),
    [
        (0, "stopLossBracket", 8, "Invalid stop loss ticks (8). Ticks should be less than zero when longing."),
        (
            1,
            "takeProfitBracket",
            20,
            "Invalid take profit ticks (20). Ticks should be less than zero when going short.",
        ),
        (
            0,
            "takeProfitBracket",
            -20,
            "Invalid take profit ticks (-20). Ticks should be greater than zero when longing.",
        ),
        (1, "stopLossBracket", -8, "Invalid stop loss ticks (-8). Ticks should be greater than zero when going short."),
    ],
)
async def test_wrongly_signed_ticks_are_refused_with_error_code_2(
    oco_sim: ProjectXSimulator, side: int, leg: str, ticks: int, text: str
) -> None:
    answer = await _raw_place(oco_sim, {"side": side, leg: {"ticks": ticks, "type": 4 if "stop" in leg else 1}})
    assert (answer["success"], answer["errorCode"], answer["errorMessage"]) == (False, 2, text)
    assert answer["orderId"] is not None  # the rejected order record's id, as the live gateway answers


async def test_children_exist_at_once_suspended_then_work_after_the_fill(oco_adapter: ProjectXAdapter, oco_sim) -> None:  # type: ignore[no-untyped-def]
    events = oco_adapter.events()
    oco_sim.exchange.prices.set_price(SYMBOL, Decimal("5000"))
    ack = await oco_adapter.place(_bracketed("brk-1", order_type=OrderType.LIMIT, limit_price=Decimal("4990")))
    sl = await next_event(events, lambda e: isinstance(e, OrderEvent) and e.client_order_id == "brk-1-SL")
    tp = await next_event(events, lambda e: isinstance(e, OrderEvent) and e.client_order_id == "brk-1-TP")
    assert (sl.status, tp.status) == (OrderStatus.PENDING, OrderStatus.PENDING)
    assert sl.stop_price is None and tp.limit_price is None and sl.side is Side.SELL
    snapshot = await oco_adapter.snapshot("f1")  # searchOpen does not list suspended children (observed)
    assert [o.broker_order_id for o in snapshot.open_orders] == [ack.broker_order_id]
    oco_sim.exchange.set_price(SYMBOL, Decimal("4990"))
    await next_event(events, lambda e: isinstance(e, FillEvent) and e.client_order_id == "brk-1")
    sl_on = await next_event(
        events,
        lambda e: (
            isinstance(e, OrderEvent) and e.broker_order_id == sl.broker_order_id and e.status is OrderStatus.WORKING
        ),
    )
    tp_on = await next_event(
        events,
        lambda e: (
            isinstance(e, OrderEvent) and e.broker_order_id == tp.broker_order_id and e.status is OrderStatus.WORKING
        ),
    )
    assert (sl_on.stop_price, tp_on.limit_price) == (Decimal("4987.50"), Decimal("4995"))
    oco_sim.exchange.set_price(SYMBOL, Decimal("4995"))
    await next_event(
        events,
        lambda e: (
            isinstance(e, OrderEvent) and e.broker_order_id == tp.broker_order_id and e.status is OrderStatus.FILLED
        ),
    )
    await next_event(
        events,
        lambda e: (
            isinstance(e, OrderEvent) and e.broker_order_id == sl.broker_order_id and e.status is OrderStatus.CANCELLED
        ),
    )


async def test_children_of_an_unfilled_entry_are_cancelled_with_it(oco_adapter: ProjectXAdapter, oco_sim) -> None:  # type: ignore[no-untyped-def]
    events = oco_adapter.events()
    oco_sim.exchange.prices.set_price(SYMBOL, Decimal("5000"))
    await oco_adapter.place(
        _bracketed("brk-2", side=Side.SELL, order_type=OrderType.LIMIT, limit_price=Decimal("5010"))
    )
    sl = await next_event(events, lambda e: isinstance(e, OrderEvent) and e.client_order_id == "brk-2-SL")
    await oco_adapter.cancel(CancelOrder("f1", "brk-2"))
    gone = await next_event(
        events,
        lambda e: (
            isinstance(e, OrderEvent) and e.broker_order_id == sl.broker_order_id and e.status is OrderStatus.CANCELLED
        ),
    )
    assert gone.side is Side.BUY
