"""SUBMIT_NEW_OCO_ORDER on the simulator (both encodings): standalone pairs and bracket exits."""

from __future__ import annotations

from decimal import Decimal

from dtc_client import ClientFactory, DtcClient
from test_dtc_orders import ACCOUNT, SYMBOL, limit, order, update

from copytrader.brokers.dtc.codec import Message, make
from copytrader.brokers.dtc.messages import BuySell, MsgType, OrderStatus, OrderType, TimeInForce, Value
from copytrader.brokers.dtc.messages import OrderUpdateReason as Reason
from copytrader.brokers.dtc.simulator import DtcSimulator


def oco(first: str, second: str, **values: Value) -> Message:
    """A sell-limit / sell-stop pair (a long's exits) unless ``values`` say otherwise."""
    terms: dict[str, Value] = {
        "Symbol": SYMBOL,
        "TradeAccount": ACCOUNT,
        "ClientOrderID_1": first,
        "OrderType_1": int(OrderType.LIMIT),
        "BuySell_1": int(BuySell.SELL),
        "Price1_1": 5010.0,
        "Quantity_1": 1.0,
        "ClientOrderID_2": second,
        "OrderType_2": int(OrderType.STOP),
        "BuySell_2": int(BuySell.SELL),
        "Price1_2": 4990.0,
        "Quantity_2": 1.0,
        "TimeInForce": int(TimeInForce.GOOD_TILL_CANCELED),
    }
    terms.update(values)
    return make(MsgType.SUBMIT_NEW_OCO_ORDER, **terms)


async def status(client: DtcClient, client_id: str, wanted: OrderStatus) -> Message:
    return await client.expect(
        lambda m: m.type is MsgType.ORDER_UPDATE and m["ClientOrderID"] == client_id and m["OrderStatus"] == wanted
    )


async def test_a_standalone_pair_one_fill_cancels_the_other(connect: ClientFactory, sim: DtcSimulator) -> None:
    sim.exchange.set_price(SYMBOL, Decimal("5000.00"))
    client = await connect()
    client.send(oco("a", "b", BuySell_1=int(BuySell.BUY), Price1_1=4995.0, BuySell_2=int(BuySell.BUY), Price1_2=5005.0))
    for leg in ("a", "b"):
        accepted = await update(client, leg, Reason.NEW_ORDER_ACCEPTED)
        assert accepted["OrderStatus"] == OrderStatus.OPEN
    sim.exchange.set_price(SYMBOL, Decimal("4995.00"))
    await update(client, "a", Reason.ORDER_FILLED)
    canceled = await update(client, "b", Reason.ORDER_CANCELED)
    assert canceled["OrderStatus"] == OrderStatus.CANCELED


async def test_bracket_exits_wait_for_the_parent_and_take_its_fill_price(
    connect: ClientFactory, sim: DtcSimulator
) -> None:
    sim.exchange.set_price(SYMBOL, Decimal("5000.00"))
    client = await connect()
    client.send(limit("entry", 4990.0, IsParentOrder=1, TimeInForce=int(TimeInForce.GOOD_TILL_CANCELED)))
    await update(client, "entry", Reason.NEW_ORDER_ACCEPTED)
    exits = oco("tp", "sl", ParentTriggerClientOrderID="entry", UseOffsets=1, OffsetFromParent1=6.0)
    client.send(make(MsgType.SUBMIT_NEW_OCO_ORDER, **{**exits.values, "OffsetFromParent2": 2.5}))
    for leg in ("tp", "sl"):
        held = await update(client, leg, Reason.NEW_ORDER_ACCEPTED)
        assert held["OrderStatus"] == OrderStatus.PENDING_CHILD
    sim.exchange.set_price(SYMBOL, Decimal("4989.00"))  # the entry fills at its limit, 4990
    await update(client, "entry", Reason.ORDER_FILLED)
    take_profit = await status(client, "tp", OrderStatus.OPEN)
    stop_loss = await status(client, "sl", OrderStatus.OPEN)
    assert (take_profit["Price1"], stop_loss["Price1"]) == (4996.0, 4987.5)
    sim.exchange.set_price(SYMBOL, Decimal("4987.50"))
    await update(client, "sl", Reason.ORDER_FILLED)
    await update(client, "tp", Reason.ORDER_CANCELED)
    assert sim.exchange.account(ACCOUNT).positions[SYMBOL].net_quantity == 0


async def test_exits_of_an_entry_that_already_filled_start_at_once(connect: ClientFactory, sim: DtcSimulator) -> None:
    sim.exchange.set_price(SYMBOL, Decimal("5000.00"))
    client = await connect()
    client.send(order("entry", IsParentOrder=1, BuySell=int(BuySell.SELL)))
    await update(client, "entry", Reason.ORDER_FILLED)
    exits = {"BuySell_1": int(BuySell.BUY), "BuySell_2": int(BuySell.BUY), "UseOffsets": 1}
    client.send(
        oco("tp", "sl", ParentTriggerClientOrderID="entry", OffsetFromParent1=4.0, OffsetFromParent2=6.0, **exits)
    )
    take_profit = await status(client, "tp", OrderStatus.OPEN)
    stop_loss = await status(client, "sl", OrderStatus.OPEN)
    assert (take_profit["Price1"], stop_loss["Price1"]) == (4996.0, 5006.0)  # a short's exits: below, above


async def test_refused_ocos_answer_each_leg_with_the_reason(connect: ClientFactory, sim: DtcSimulator) -> None:
    sim.exchange.set_price(SYMBOL, Decimal("5000.00"))
    client = await connect()
    client.send(limit("plain", 4990.0))  # not sent as a parent
    await update(client, "plain", Reason.NEW_ORDER_ACCEPTED)
    cases = [
        (oco("a1", "a2", ParentTriggerClientOrderID="plain"), "IsParentOrder"),
        (oco("b1", "b2", UseOffsets=1, OffsetFromParent1=1.0, OffsetFromParent2=1.0), "ParentTriggerClientOrderID"),
        (oco("c1", "c1"), "different"),
        (oco("d1", "d2", Price1_2=-5.0), "positive"),
    ]
    for message, reason in cases:
        client.send(message)
        for leg in (message["ClientOrderID_1"], message["ClientOrderID_2"]):
            refused = await update(client, str(leg), Reason.NEW_ORDER_REJECTED)
            assert reason in str(refused["InfoText"]) and refused["OrderStatus"] == OrderStatus.REJECTED
    assert [o.client_order_id for o in sim.exchange.account(ACCOUNT).orders.values()] == ["plain"]
