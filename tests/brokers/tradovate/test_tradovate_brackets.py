"""Brackets through order/placeOSO: one request, held exits linked OCO, re-anchored at the fill."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import aiohttp
import pytest
from tradovate_helpers import next_event, session_config

from copytrader.brokers.errors import BrokerUnavailable
from copytrader.brokers.model import Bracket, FillEvent, OrderEvent, OrderStatus, OrderType, PlaceOrder, Side
from copytrader.brokers.simkernel.exchange import SimExchange
from copytrader.brokers.simkernel.pricepath import PricePath
from copytrader.brokers.tradovate.adapter import TradovateAdapter
from copytrader.brokers.tradovate.simulator import TradovateSimulator, create_simulator

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
        token = (await (await http.post(f"{frozen.base_url}/auth/accesstokenrequest", json=login)).json())[
            "accessToken"
        ]
        body = {
            "accountSpec": ACCT,
            "accountId": frozen.account_id(ACCT),
            "clOrdId": "raw-oso",
            "action": "Buy",
            "symbol": "ESZ6",
            "orderQty": 1,
            "orderType": "Limit",
            "price": 4990,
            "isAutomated": True,
            "bracket1": {"action": "Sell", "clOrdId": "raw-tp", "orderType": "Limit", "price": 5000},
            "bracket2": {"action": "Sell", "clOrdId": "raw-sl", "orderType": "Stop", "stopPrice": 4980},
        }
        reply = await (
            await http.post(
                f"{frozen.base_url}/order/placeOSO", json=body, headers={"Authorization": f"Bearer {token}"}
            )
        ).json()
    assert set(reply) == OSO_RESULT
    tp, sl = kernel(frozen, "raw-tp"), kernel(frozen, "raw-sl")
    assert (int(tp.order_id), int(sl.order_id)) == (reply["oso1Id"], reply["oso2Id"])
    assert tp.status is OrderStatus.PENDING and sl.status is OrderStatus.PENDING  # held until the entry fills
    orders = {o["id"]: o for o in frozen.book.tables.of("order", {ACCT})}
    assert orders[reply["oso1Id"]]["parentId"] == reply["orderId"]
    assert orders[reply["oso1Id"]]["ocoId"] == orders[reply["oso2Id"]]["ocoId"] is not None


async def test_limit_entry_exits_wait_then_one_cancels_the_other(
    tv: TradovateAdapter, frozen: TradovateSimulator
) -> None:
    sub = tv.events()
    ack = await tv.place(
        PlaceOrder(
            "f1",
            "brk-1",
            "ESZ6",
            Side.BUY,
            1,
            OrderType.LIMIT,
            limit_price=D("4990"),
            bracket=Bracket(take_profit=D("10"), stop_loss=D("5")),
        )
    )
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
    await tv.place(
        PlaceOrder(
            "f1",
            "brk-2",
            "ESZ6",
            Side.SELL,
            2,
            bracket=Bracket(take_profit=D("10"), stop_loss=D("5"), reference_price=D("4998")),
        )
    )
    body = next(b for ep, b in frozen.api.calls if ep == "order/placeoso")
    assert (body["bracket1"]["price"], body["bracket2"]["stopPrice"]) == (4988.0, 5003.0)  # anchored at 4998
    moved = await next_event(
        sub, lambda e: isinstance(e, OrderEvent) and e.client_order_id == "brk-2SL" and e.stop_price == D("5005")
    )
    assert moved.status is OrderStatus.WORKING
    await next_event(
        tp, lambda e: isinstance(e, OrderEvent) and e.client_order_id == "brk-2TP" and e.limit_price == D("4990")
    )
    assert (kernel(frozen, "brk-2TP").limit_price, kernel(frozen, "brk-2SL").stop_price) == (D("4990"), D("5005"))


async def test_market_entry_without_reference_gets_its_exits_as_oco_after_the_fill(
    tv: TradovateAdapter, frozen: TradovateSimulator
) -> None:
    sub = tv.events()
    await tv.place(
        PlaceOrder("f1", "brk-3", "ESZ6", Side.BUY, 1, bracket=Bracket(take_profit=D("10"), stop_loss=D("5")))
    )
    await next_event(sub, by("brk-3SL", OrderStatus.WORKING))
    assert not any(ep == "order/placeoso" for ep, _ in frozen.api.calls)  # no anchor: entry alone first
    body = next(b for ep, b in frozen.api.calls if ep == "order/placeoco")
    assert (body["clOrdId"], body["price"], body["other"]["clOrdId"], body["other"]["stopPrice"]) == (
        "brk-3TP",
        5010.0,
        "brk-3SL",
        4995.0,
    )
    assert kernel(frozen, "brk-3TP").oco_group == kernel(frozen, "brk-3SL").oco_group is not None
    frozen.exchange.set_price("ESZ6", D("4995"))
    await next_event(sub, by("brk-3SL", OrderStatus.FILLED))
    await next_event(sub, by("brk-3TP", OrderStatus.CANCELLED))


async def test_lost_oso_answer_is_not_resent_and_lookup_finds_the_entry(
    tv: TradovateAdapter, frozen: TradovateSimulator
) -> None:
    frozen.faults(ACCT).lose_response_next = 1
    with pytest.raises(BrokerUnavailable) as lost:
        await tv.place(
            PlaceOrder(
                "f1",
                "brk-4",
                "ESZ6",
                Side.BUY,
                1,
                OrderType.LIMIT,
                limit_price=D("4990"),
                bracket=Bracket(take_profit=D("10"), stop_loss=D("5")),
            )
        )
    assert lost.value.sent is True
    assert sum(1 for ep, _ in frozen.api.calls if ep == "order/placeoso") == 1
    found = await tv.lookup("f1", "brk-4")
    assert found is not None and found.broker_order_id == kernel(frozen, "brk-4").order_id
    assert await tv.lookup("f1", "brk-4TP") is not None  # the exits carry derived ids too


class FakeRest:
    """A REST client whose first placeOCO answer is lost; ``placed`` says what reached the broker."""

    def __init__(self, landed: bool) -> None:
        self.landed, self.calls, self.placed = landed, [], 0  # type: ignore[var-annotated]

    async def call(self, endpoint: str, body=None, *, method: str = "POST", query=None, priority=None):  # type: ignore[no-untyped-def]
        self.calls.append(endpoint)
        if endpoint == "order/placeoco":
            first = self.calls.count("order/placeoco") == 1
            if first and not self.landed:
                raise BrokerUnavailable("reset before the server read it", sent=True)
            self.placed += 1
            if first:
                raise BrokerUnavailable("answer lost", sent=True)
            return {"orderId": 9, "ocoId": 10}
        if endpoint == "order/deps":
            return [{"id": 9, "accountId": 1, "ordStatus": "Working"}] if self.placed else []
        if endpoint == "command/ldeps":
            return [{"id": 1, "orderId": 9, "commandType": "New", "clOrdId": "x-1TP"}] if self.placed else []
        raise AssertionError(endpoint)


@pytest.mark.parametrize("landed", [True, False])
async def test_lost_exit_answer_is_looked_up_before_sending_again(landed: bool) -> None:
    from copytrader.brokers.tradovate.bracket_orders import BracketDesk

    rest, errors = FakeRest(landed), []  # type: ignore[var-annotated]
    desk = BracketDesk(lambda: rest, lambda reply: None, errors.append, lambda a, c: None)  # type: ignore[arg-type,return-value]
    plan = brackets_plan("x-1")
    await desk._place_exits(plan, D("5000"))
    assert rest.placed == 1  # found after the lost answer: not sent again; not found: sent once more
    assert "order/deps" in rest.calls and errors == []


def brackets_plan(cl: str):  # type: ignore[no-untyped-def]
    from copytrader.brokers.tradovate import brackets

    return brackets.plan(PlaceOrder("f1", cl, "ESZ6", Side.BUY, 1, bracket=Bracket(D("10"), D("5"))), "DEMO1001", 1)


async def test_exits_are_reanchored_even_when_the_oso_answer_was_lost(
    tv: TradovateAdapter, frozen: TradovateSimulator
) -> None:
    sub = tv.events()
    frozen.faults(ACCT).lose_response_next = 1
    with pytest.raises(BrokerUnavailable):
        await tv.place(
            PlaceOrder(
                "f1",
                "brk-5",
                "ESZ6",
                Side.BUY,
                1,
                bracket=Bracket(take_profit=D("10"), stop_loss=D("5"), reference_price=D("4998")),
            )
        )
    # the entry landed and filled at 5000: its fill names brk-5, so the exits still move to 5010/4995
    await next_event(
        sub, lambda e: isinstance(e, OrderEvent) and e.client_order_id == "brk-5SL" and e.stop_price == D("4995")
    )
    assert kernel(frozen, "brk-5TP").limit_price == D("5010")


async def test_entry_cancelled_unfilled_forgets_its_plan(tv: TradovateAdapter, frozen: TradovateSimulator) -> None:
    from copytrader.brokers.model import CancelOrder

    sub = tv.events()
    await tv.place(
        PlaceOrder(
            "f1",
            "brk-6",
            "ESZ6",
            Side.BUY,
            1,
            OrderType.LIMIT,
            limit_price=D("4990"),
            bracket=Bracket(take_profit=D("10"), stop_loss=D("5")),
        )
    )
    assert "brk-6" in tv.brackets.waiting
    await tv.cancel(CancelOrder("f1", "brk-6"))
    await next_event(sub, by("brk-6", OrderStatus.CANCELLED))
    assert "brk-6" not in tv.brackets.waiting
    assert kernel(frozen, "brk-6TP").status is OrderStatus.CANCELLED  # the broker cancels held exits too
