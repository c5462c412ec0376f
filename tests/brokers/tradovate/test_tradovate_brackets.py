"""Brackets through order/placeOSO: one request, held exits linked OCO, re-anchored at the fill."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import aiohttp
import pytest

from copytrader.brokers.errors import BrokerUnavailable, UnsupportedOperation
from copytrader.brokers.model import Bracket, FillEvent, OrderEvent, OrderStatus, OrderType, PlaceOrder, Side
from copytrader.brokers.simkernel.exchange import SimExchange
from copytrader.brokers.simkernel.pricepath import PricePath
from copytrader.brokers.tradovate.adapter import TradovateAdapter
from copytrader.brokers.tradovate.simulator import TradovateSimulator, create_simulator
from tradovate_helpers import next_event, session_config

ACCT = "DEMO1001"
D = Decimal
#: PlaceOsoResult fields (services-api docs PlaceOsoResult.md).
OSO_RESULT = {"orderId", "oso1Id", "oso2Id"}


@pytest.fixture
async def frozen() -> AsyncIterator[TradovateSimulator]:
    simulator = create_simulator(SimExchange(prices=PricePath(7, max_step_ticks=0)), tick_ms=20, heartbeat_s=0.5)
    await simulator.start()
    simulator.exchange.set_price("ESZ6", D("5000"))
    yield simulator
    await simulator.stop()


@pytest.fixture
async def tv(frozen: TradovateSimulator) -> AsyncIterator[TradovateAdapter]:
    adapter = TradovateAdapter(session_config(frozen))
    await adapter.connect()
    yield adapter
    await adapter.disconnect()


def kernel(sim: TradovateSimulator, cl_ord_id: str):  # type: ignore[no-untyped-def]
    (order,) = sim.exchange.orders_with_client_id(ACCT, cl_ord_id)
    return order


def by(cl: str, status: OrderStatus):  # type: ignore[no-untyped-def]
    return lambda e: isinstance(e, OrderEvent) and e.client_order_id == cl and e.status is status


async def test_oso_request_and_answer_have_the_documented_shape(frozen: TradovateSimulator) -> None:
    creds = frozen.demo_credentials()
    login = {k: creds[k] for k in ("name", "password", "appId", "appVersion", "cid", "sec", "deviceId")}
    async with aiohttp.ClientSession() as http:
        token = (await (await http.post(f"{frozen.base_url}/auth/accesstokenrequest", json=login)).json())["accessToken"]
        body = {"accountSpec": ACCT, "accountId": frozen.account_id(ACCT), "clOrdId": "raw-oso", "action": "Buy",
                "symbol": "ESZ6", "orderQty": 1, "orderType": "Limit", "price": 4990, "isAutomated": True,
                "bracket1": {"action": "Sell", "clOrdId": "raw-tp", "orderType": "Limit", "price": 5000},
                "bracket2": {"action": "Sell", "clOrdId": "raw-sl", "orderType": "Stop", "stopPrice": 4980}}
        reply = await (await http.post(f"{frozen.base_url}/order/placeOSO", json=body,
                                       headers={"Authorization": f"Bearer {token}"})).json()
    assert set(reply) == OSO_RESULT
    tp, sl = kernel(frozen, "raw-tp"), kernel(frozen, "raw-sl")
    assert (int(tp.order_id), int(sl.order_id)) == (reply["oso1Id"], reply["oso2Id"])
    assert tp.status is OrderStatus.PENDING and sl.status is OrderStatus.PENDING  # held until the entry fills
    orders = {o["id"]: o for o in frozen.book.tables.of("order", {ACCT})}
    assert orders[reply["oso1Id"]]["parentId"] == reply["orderId"]
    assert orders[reply["oso1Id"]]["ocoId"] == orders[reply["oso2Id"]]["ocoId"] is not None


async def test_limit_entry_exits_wait_then_one_cancels_the_other(tv: TradovateAdapter, frozen: TradovateSimulator) -> None:
    sub = tv.events()
    ack = await tv.place(PlaceOrder("f1", "brk-1", "ESZ6", Side.BUY, 1, OrderType.LIMIT, limit_price=D("4990"),
                                    bracket=Bracket(take_profit=D("10"), stop_loss=D("5"))))
    body = next(b for ep, b in frozen.api.calls if ep == "order/placeoso")
    assert body["clOrdId"] == "brk-1" and body["bracket1"]["clOrdId"] == "brk-1TP"
    assert (body["bracket1"]["price"], body["bracket2"]["stopPrice"]) == (5000.0, 4985.0)
    held = await next_event(sub, by("brk-1TP", OrderStatus.PENDING))
    assert held.limit_price == D("5000") and held.side is Side.SELL
    frozen.exchange.set_price("ESZ6", D("4990"))
    await next_event(sub, lambda e: isinstance(e, FillEvent) and e.broker_order_id == ack.broker_order_id)
    await next_event(sub, by("brk-1SL", OrderStatus.WORKING))
    frozen.exchange.set_price("ESZ6", D("5000"))
    await next_event(sub, by("brk-1TP", OrderStatus.FILLED))
    await next_event(sub, by("brk-1SL", OrderStatus.CANCELLED))
    assert frozen.exchange.account(ACCT).positions["ESZ6"].net_quantity == 0


async def test_market_entry_exits_are_reanchored_at_the_fill(tv: TradovateAdapter, frozen: TradovateSimulator) -> None:
    sub, tp = tv.events(), tv.events()
    await tv.place(PlaceOrder("f1", "brk-2", "ESZ6", Side.SELL, 2,
                              bracket=Bracket(take_profit=D("10"), stop_loss=D("5"), reference_price=D("4998"))))
    body = next(b for ep, b in frozen.api.calls if ep == "order/placeoso")
    assert (body["bracket1"]["price"], body["bracket2"]["stopPrice"]) == (4988.0, 5003.0)  # anchored at 4998
    moved = await next_event(sub, lambda e: isinstance(e, OrderEvent) and e.client_order_id == "brk-2SL"
                             and e.stop_price == D("5005"))
    assert moved.status is OrderStatus.WORKING
    await next_event(tp, lambda e: isinstance(e, OrderEvent) and e.client_order_id == "brk-2TP"
                     and e.limit_price == D("4990"))
    assert (kernel(frozen, "brk-2TP").limit_price, kernel(frozen, "brk-2SL").stop_price) == (D("4990"), D("5005"))


async def test_market_entry_without_reference_is_refused_before_sending(tv: TradovateAdapter, frozen: TradovateSimulator) -> None:
    with pytest.raises(UnsupportedOperation):
        await tv.place(PlaceOrder("f1", "brk-3", "ESZ6", Side.BUY, 1, bracket=Bracket(take_profit=D("10"))))
    assert not any(ep == "order/placeoso" for ep, _ in frozen.api.calls)


async def test_lost_oso_answer_is_not_resent_and_lookup_finds_the_entry(
    tv: TradovateAdapter, frozen: TradovateSimulator
) -> None:
    frozen.faults(ACCT).lose_response_next = 1
    with pytest.raises(BrokerUnavailable) as lost:
        await tv.place(PlaceOrder("f1", "brk-4", "ESZ6", Side.BUY, 1, OrderType.LIMIT, limit_price=D("4990"),
                                  bracket=Bracket(take_profit=D("10"), stop_loss=D("5"))))
    assert lost.value.sent is True
    assert sum(1 for ep, _ in frozen.api.calls if ep == "order/placeoso") == 1
    found = await tv.lookup("f1", "brk-4")
    assert found is not None and found.broker_order_id == kernel(frozen, "brk-4").order_id
    assert await tv.lookup("f1", "brk-4TP") is not None  # the exits carry derived ids too
