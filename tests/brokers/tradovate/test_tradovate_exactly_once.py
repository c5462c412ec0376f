"""Exactly once against Tradovate: lookup asks the broker, a lost answer is never resent blindly."""

from __future__ import annotations

from decimal import Decimal

import aiohttp
import pytest
from tradovate_helpers import next_event, session_config

from copytrader.brokers.errors import BrokerUnavailable
from copytrader.brokers.model import CancelOrder, ModifyOrder, OrderEvent, OrderStatus, OrderType, PlaceOrder, Side
from copytrader.brokers.tradovate.adapter import TradovateAdapter
from copytrader.brokers.tradovate.simulator import TradovateSimulator, create_simulator

ACCT = "DEMO1001"


def calls(sim: TradovateSimulator, endpoint: str) -> int:
    return sum(1 for ep, _ in sim.api.calls if ep == endpoint)


async def place_elsewhere(sim: TradovateSimulator, cl_ord_id: str) -> str:
    """Another client (web, mobile, a crashed earlier copier) places with this clOrdId."""
    creds = sim.demo_credentials()
    login = {k: creds[k] for k in ("name", "password", "appId", "appVersion", "cid", "sec", "deviceId")}
    async with aiohttp.ClientSession() as http:
        token = (await (await http.post(f"{sim.base_url}/auth/accesstokenrequest", json=login)).json())["accessToken"]
        body = {
            "accountSpec": ACCT,
            "accountId": sim.account_id(ACCT),
            "clOrdId": cl_ord_id,
            "action": "Buy",
            "symbol": "ESZ6",
            "orderQty": 1,
            "orderType": "Limit",
            "price": 4000,
            "isAutomated": True,
        }
        reply = await http.post(
            f"{sim.base_url}/order/placeorder", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        return str((await reply.json())["orderId"])


async def test_lookup_asks_the_broker_not_the_cache(adapter: TradovateAdapter, sim: TradovateSimulator) -> None:
    order_id = await place_elsewhere(sim, "look-1")
    adapter.cache.by_client.clear()  # whatever the pushes taught the cache must not matter
    before = calls(sim, "command/ldeps")
    found = await adapter.lookup("f1", "look-1")
    assert found is not None and found.duplicate and found.broker_order_id == order_id
    assert found.status is OrderStatus.WORKING and found.account_id == "f1"
    assert calls(sim, "order/deps") >= 1 and calls(sim, "command/ldeps") == before + 1
    assert await adapter.lookup("f1", "never-placed") is None
    assert await adapter.lookup("f2", "look-1") is None  # another account's books


async def test_lookup_with_repeated_client_id_answers_the_first_order(adapter: TradovateAdapter) -> None:
    command = PlaceOrder("f1", "rep-1", "ESZ6", Side.BUY, 1, OrderType.LIMIT, limit_price=Decimal("4000"))
    first = await adapter.place(command)
    await adapter.place(command)
    found = await adapter.lookup("f1", "rep-1")
    assert found is not None and found.broker_order_id == first.broker_order_id


async def test_lookup_that_cannot_tell_raises_broker_unavailable() -> None:
    simulator = create_simulator(tick_ms=20, heartbeat_s=0.5)
    await simulator.start()
    adapter = TradovateAdapter(session_config(simulator))
    try:
        await adapter.connect()
        await simulator.stop()
        with pytest.raises(BrokerUnavailable):
            await adapter.lookup("f1", "any")
        with pytest.raises(BrokerUnavailable) as refused:
            await adapter.place(PlaceOrder("f1", "refused-1", "ESZ6", Side.BUY, 1))
        assert refused.value.sent is False  # connection refused: the request surely never left
        await adapter.disconnect()
        with pytest.raises(BrokerUnavailable) as closed:
            await adapter.place(PlaceOrder("f1", "closed-1", "ESZ6", Side.BUY, 1))
        assert closed.value.sent is False  # not connected: nothing was sent
    finally:
        await adapter.disconnect()


async def test_lost_place_answer_is_not_resent_and_lookup_finds_one(
    adapter: TradovateAdapter, sim: TradovateSimulator
) -> None:
    sim.faults(ACCT).lose_response_next = 1
    with pytest.raises(BrokerUnavailable) as lost:
        await adapter.place(
            PlaceOrder("f1", "lost-1", "ESZ6", Side.BUY, 1, OrderType.LIMIT, limit_price=Decimal("4000"))
        )
    assert lost.value.sent is True and lost.value.outcome_unknown
    assert calls(sim, "order/placeorder") == 1  # the adapter never resent the place
    found = await adapter.lookup("f1", "lost-1")
    assert found is not None and found.duplicate
    assert [o.order_id for o in sim.exchange.orders_with_client_id(ACCT, "lost-1")] == [found.broker_order_id]


async def test_lost_place_answer_over_a_hanging_line_times_out_as_sent(make_adapter, sim: TradovateSimulator) -> None:  # type: ignore[no-untyped-def]
    adapter: TradovateAdapter = await make_adapter(request_timeout_s=0.3)
    sim.faults(ACCT).lose_response_next = 1
    sim.faults(ACCT).ack_delay_ms = 800  # the answer would come after the client gave up
    with pytest.raises(BrokerUnavailable) as lost:
        await adapter.place(PlaceOrder("f1", "slow-lost", "ESZ6", Side.BUY, 1))
    assert lost.value.sent is True
    assert len(sim.exchange.orders_with_client_id(ACCT, "slow-lost")) == 1


async def test_lost_cancel_answer_is_reported_and_a_repeat_reads_as_done(
    adapter: TradovateAdapter, sim: TradovateSimulator
) -> None:
    sub = adapter.events()
    await adapter.place(PlaceOrder("f1", "lc-1", "ESZ6", Side.BUY, 1, OrderType.LIMIT, limit_price=Decimal("4000")))
    await next_event(
        sub, lambda e: isinstance(e, OrderEvent) and e.client_order_id == "lc-1" and e.status is OrderStatus.WORKING
    )
    sim.faults(ACCT).lose_response_next = 1
    with pytest.raises(BrokerUnavailable) as lost:
        await adapter.cancel(CancelOrder("f1", "lc-1"))
    assert lost.value.sent is True and calls(sim, "order/cancelorder") == 1
    assert sim.exchange.orders_with_client_id(ACCT, "lc-1")[0].status is OrderStatus.CANCELLED
    adapter.cache.orders[int(sim.exchange.orders_with_client_id(ACCT, "lc-1")[0].order_id)].ord_status = "Working"
    again = await adapter.cancel(CancelOrder("f1", "lc-1"))  # even if the cache has not heard yet
    assert again.status is OrderStatus.CANCELLED and again.duplicate


async def test_lost_modify_answer_is_reported_and_a_repeat_changes_nothing_more(
    adapter: TradovateAdapter, sim: TradovateSimulator
) -> None:
    sub = adapter.events()
    await adapter.place(PlaceOrder("f1", "lm-1", "ESZ6", Side.BUY, 1, OrderType.LIMIT, limit_price=Decimal("4000")))
    await next_event(
        sub, lambda e: isinstance(e, OrderEvent) and e.client_order_id == "lm-1" and e.status is OrderStatus.WORKING
    )
    sim.faults(ACCT).lose_response_next = 1
    command = ModifyOrder("f1", "lm-1", quantity=2, limit_price=Decimal("4001"))
    with pytest.raises(BrokerUnavailable) as lost:
        await adapter.modify(command)
    assert lost.value.sent is True
    await adapter.modify(command)
    bodies = [b for ep, b in sim.api.calls if ep == "order/modifyorder"]
    assert len(bodies) == 2 and bodies[0] == bodies[1]  # absolute values: the repeat is the same request
    (order,) = sim.exchange.orders_with_client_id(ACCT, "lm-1")
    assert (order.quantity, order.limit_price) == (2, Decimal("4001"))


async def test_lost_answer_over_the_socket_is_never_sent(sim: TradovateSimulator) -> None:
    """The same order request over the WebSocket: carried out, and its reply never comes."""
    import asyncio

    from copytrader.brokers.tradovate import codec

    creds = sim.demo_credentials()
    login = {k: creds[k] for k in ("name", "password", "appId", "appVersion", "cid", "sec", "deviceId")}
    async with aiohttp.ClientSession() as http:
        token = (await (await http.post(f"{sim.base_url}/auth/accesstokenrequest", json=login)).json())["accessToken"]
        ws = await http.ws_connect(sim.ws_url)
        assert await ws.receive_str() == "o"
        await ws.send_str(f"authorize\n0\n\n{token}")
        await ws.receive_str()
        sim.faults(ACCT).lose_response_next = 1
        body = {
            "accountSpec": ACCT,
            "accountId": sim.account_id(ACCT),
            "clOrdId": "ws-lost",
            "action": "Buy",
            "symbol": "ESZ6",
            "orderQty": 1,
            "orderType": "Limit",
            "price": 4000,
            "isAutomated": True,
        }
        await ws.send_str(codec.encode_request("order/placeorder", 7, "", body))
        await ws.send_str(codec.encode_request("order/placeorder", 8, "", {**body, "clOrdId": "ws-kept"}))
        replies: list[int] = []
        while 8 not in replies:  # request 8 is answered; 7 must not be, before or after it
            frame = codec.decode_server_frame(await asyncio.wait_for(ws.receive_str(), 5))
            if isinstance(frame, codec.DataFrame):
                replies += [i.request_id for i in frame.items if isinstance(i, codec.Response)]
        await ws.close()
    assert 7 not in replies
    assert len(sim.exchange.orders_with_client_id(ACCT, "ws-lost")) == 1
