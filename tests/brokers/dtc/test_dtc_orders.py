"""Order entry on the simulated DTC server: every outcome is an ORDER_UPDATE, in both encodings."""

from __future__ import annotations

from decimal import Decimal

from dtc_client import ClientFactory, DtcClient

from copytrader.brokers.dtc.codec import Message, make
from copytrader.brokers.dtc.messages import DBL_MAX, BuySell, MsgType, OrderStatus, OrderType, TimeInForce, Value
from copytrader.brokers.dtc.messages import OrderUpdateReason as Reason
from copytrader.brokers.dtc.simulator import DtcSimulator
from copytrader.brokers.simkernel.logins import SimLogin

SYMBOL = "ESZ6"
ACCOUNT = "DTC-LEADER"


def order(client_id: str, **values: Value) -> Message:
    terms: dict[str, Value] = {
        "Symbol": SYMBOL,
        "TradeAccount": ACCOUNT,
        "ClientOrderID": client_id,
        "OrderType": int(OrderType.MARKET),
        "BuySell": int(BuySell.BUY),
        "Quantity": 1.0,
        "TimeInForce": int(TimeInForce.DAY),
    }
    terms.update(values)
    return make(MsgType.SUBMIT_NEW_SINGLE_ORDER, **terms)


def limit(client_id: str, price: float, **values: Value) -> Message:
    return order(client_id, OrderType=int(OrderType.LIMIT), Price1=price, **values)


async def update(client: DtcClient, client_id: str, reason: Reason) -> Message:
    return await client.expect_type(MsgType.ORDER_UPDATE, ClientOrderID=client_id, OrderUpdateReason=int(reason))


async def test_market_order_is_acknowledged_then_filled(connect: ClientFactory, sim: DtcSimulator) -> None:
    price = sim.exchange.set_price(SYMBOL, Decimal("5000.25"))
    client = await connect()
    client.send(order("c1", Quantity=2.0))
    ack = await update(client, "c1", Reason.NEW_ORDER_ACCEPTED)
    assert ack["OrderStatus"] == OrderStatus.OPEN and ack["ServerOrderID"]
    assert ack["OrderQuantity"] == 2.0 and ack["BuySell"] == BuySell.BUY and ack["TradeAccount"] == ACCOUNT
    fill = await update(client, "c1", Reason.ORDER_FILLED)
    assert fill["ServerOrderID"] == ack["ServerOrderID"] and fill["OrderStatus"] == OrderStatus.FILLED
    assert fill["LastFillPrice"] == float(price) and fill["LastFillQuantity"] == 2.0
    assert fill["FilledQuantity"] == 2.0 and fill["RemainingQuantity"] == 0.0 and fill["LastFillExecutionID"]
    position = await client.expect_type(MsgType.POSITION_UPDATE, Unsolicited=1)
    assert position["Quantity"] == 2.0 and position["AveragePrice"] == float(price)


async def test_partial_fills_carry_cumulative_and_last_fill(connect: ClientFactory, sim: DtcSimulator) -> None:
    sim.exchange.set_price(SYMBOL, Decimal("5000.00"))
    sim.exchange.account(ACCOUNT).faults.partial_fill_lot = 1
    client = await connect()
    client.send(order("p1", Quantity=3.0))
    first = await update(client, "p1", Reason.ORDER_FILLED_PARTIALLY)
    assert first["OrderStatus"] == OrderStatus.PARTIALLY_FILLED
    assert (first["LastFillQuantity"], first["FilledQuantity"], first["RemainingQuantity"]) == (1.0, 1.0, 2.0)
    sim.exchange.advance(2)
    second = await update(client, "p1", Reason.ORDER_FILLED_PARTIALLY)
    last = await update(client, "p1", Reason.ORDER_FILLED)
    assert (second["FilledQuantity"], last["FilledQuantity"], last["RemainingQuantity"]) == (2.0, 3.0, 0.0)
    assert len({first["LastFillExecutionID"], second["LastFillExecutionID"], last["LastFillExecutionID"]}) == 3


async def test_kernel_rejects_arrive_as_order_updates_with_text(connect: ClientFactory) -> None:
    client = await connect()
    client.send(order("r1", Symbol="ZZZZ6"))
    reject = await update(client, "r1", Reason.NEW_ORDER_REJECTED)
    assert reject["OrderStatus"] == OrderStatus.REJECTED and "unknown" in str(reject["InfoText"])


async def test_malformed_orders_are_rejected_with_a_reason(connect: ClientFactory) -> None:
    client = await connect()
    cases = {
        "q": (order("q", Quantity=1.5), "whole number"),
        "t": (order("t", OrderType=int(OrderType.MARKET_IF_TOUCHED)), "order type"),
        "f": (order("f", TimeInForce=int(TimeInForce.ALL_OR_NONE)), "time in force"),
        "s": (order("s", BuySell=0), "BuySell"),
        "l": (limit("l", DBL_MAX), "Price1"),
        "a": (order("a", TradeAccount="NOT-MINE"), "not available"),
    }
    for message, _ in cases.values():
        client.send(message)
    for client_id, (_, text) in cases.items():
        reject = await update(client, client_id, Reason.NEW_ORDER_REJECTED)
        assert text in str(reject["InfoText"]) and reject["ServerOrderID"] == ""
    client.send(order(""))
    reject = await update(client, "", Reason.NEW_ORDER_REJECTED)
    assert "required" in str(reject["InfoText"])


async def test_a_used_client_order_id_is_rejected_not_deduplicated(connect: ClientFactory, sim: DtcSimulator) -> None:
    sim.exchange.set_price(SYMBOL, Decimal("5000.00"))
    client = await connect()
    client.send(limit("dup", 4990.0))
    ack = await update(client, "dup", Reason.NEW_ORDER_ACCEPTED)
    client.send(limit("dup", 4990.0))  # still open
    reject = await update(client, "dup", Reason.NEW_ORDER_REJECTED)
    assert reject["ServerOrderID"] == "" and "already used" in str(reject["InfoText"])
    client.send(make(MsgType.CANCEL_ORDER, ServerOrderID=str(ack["ServerOrderID"])))
    await update(client, "dup", Reason.ORDER_CANCELED)
    client.send(limit("dup", 4990.0))  # no longer open, but used in this session
    await update(client, "dup", Reason.NEW_ORDER_REJECTED)
    assert len(sim.exchange.orders_with_client_id(ACCOUNT, "dup")) == 1


async def test_reuse_is_refused_across_connections(connect: ClientFactory, sim: DtcSimulator) -> None:
    first = await connect()
    first.send(order("once"))
    await update(first, "once", Reason.NEW_ORDER_ACCEPTED)
    await first.close()
    second = await connect()
    second.send(order("once"))
    await update(second, "once", Reason.NEW_ORDER_REJECTED)


async def test_a_kinder_server_option_accepts_reuse(sim: DtcSimulator) -> None:
    sim.desk.client_id_reuse = "new_order"
    client = await DtcClient.connect(sim.port)
    try:
        await client.logon()
        for _ in range(2):
            client.send(order("again"))
            await update(client, "again", Reason.NEW_ORDER_ACCEPTED)
        assert len(sim.exchange.orders_with_client_id(ACCOUNT, "again")) == 2
    finally:
        await client.close()


async def test_cancel_by_server_id_and_by_client_id(connect: ClientFactory, sim: DtcSimulator) -> None:
    sim.exchange.set_price(SYMBOL, Decimal("5000.00"))
    client = await connect()
    client.send(limit("k1", 4990.0))
    client.send(limit("k2", 4990.0))
    ack = await update(client, "k1", Reason.NEW_ORDER_ACCEPTED)
    await update(client, "k2", Reason.NEW_ORDER_ACCEPTED)
    client.send(make(MsgType.CANCEL_ORDER, ServerOrderID=str(ack["ServerOrderID"])))
    client.send(make(MsgType.CANCEL_ORDER, ClientOrderID="k2"))
    for client_id in ("k1", "k2"):
        canceled = await update(client, client_id, Reason.ORDER_CANCELED)
        assert canceled["OrderStatus"] == OrderStatus.CANCELED


async def test_cancel_rejections(connect: ClientFactory, sim: DtcSimulator) -> None:
    sim.exchange.set_price(SYMBOL, Decimal("5000.00"))
    client = await connect()
    client.send(make(MsgType.CANCEL_ORDER, ServerOrderID="nope", ClientOrderID="x"))
    reject = await update(client, "x", Reason.ORDER_CANCEL_REJECTED)
    assert "not found" in str(reject["InfoText"])
    client.send(order("done"))
    filled = await update(client, "done", Reason.ORDER_FILLED)
    client.send(make(MsgType.CANCEL_ORDER, ServerOrderID=str(filled["ServerOrderID"])))
    late = await update(client, "done", Reason.ORDER_CANCEL_REJECTED)
    assert late["OrderStatus"] == OrderStatus.FILLED and late["InfoText"]


async def test_cancel_that_loses_the_race_to_a_fill(connect: ClientFactory, sim: DtcSimulator) -> None:
    sim.exchange.set_price(SYMBOL, Decimal("5000.00"))
    client = await connect()
    client.send(limit("race", 4990.0))
    ack = await update(client, "race", Reason.NEW_ORDER_ACCEPTED)
    sim.exchange.account(ACCOUNT).faults.fill_before_cancel = True
    client.send(make(MsgType.CANCEL_ORDER, ServerOrderID=str(ack["ServerOrderID"])))
    await update(client, "race", Reason.ORDER_FILLED)
    reject = await update(client, "race", Reason.ORDER_CANCEL_REJECTED)
    assert "too late" in str(reject["InfoText"])


async def test_cancel_replace_changes_price_and_quantity(connect: ClientFactory, sim: DtcSimulator) -> None:
    sim.exchange.set_price(SYMBOL, Decimal("5000.00"))
    client = await connect()
    client.send(limit("m1", 4990.0, Quantity=2.0))
    ack = await update(client, "m1", Reason.NEW_ORDER_ACCEPTED)
    server_id = str(ack["ServerOrderID"])
    client.send(make(MsgType.CANCEL_REPLACE_ORDER, ServerOrderID=server_id, Price1=4985.5, Quantity=3.0))
    done = await update(client, "m1", Reason.ORDER_CANCEL_REPLACE_COMPLETE)
    assert (done["Price1"], done["OrderQuantity"], done["ServerOrderID"]) == (4985.5, 3.0, server_id)
    assert done["PreviousServerOrderID"] == server_id
    client.send(make(MsgType.CANCEL_REPLACE_ORDER, ServerOrderID=server_id, Price1IsSet=0, Price2IsSet=0, Quantity=1))
    done = await update(client, "m1", Reason.ORDER_CANCEL_REPLACE_COMPLETE)
    assert (done["Price1"], done["OrderQuantity"]) == (4985.5, 1.0)


async def test_cancel_replace_rejections(connect: ClientFactory, sim: DtcSimulator) -> None:
    sim.exchange.set_price(SYMBOL, Decimal("5000.00"))
    client = await connect()
    client.send(limit("m2", 4990.0))
    ack = await update(client, "m2", Reason.NEW_ORDER_ACCEPTED)
    server_id = str(ack["ServerOrderID"])
    bad = {
        "tick": make(MsgType.CANCEL_REPLACE_ORDER, ServerOrderID=server_id, Price1=4990.1),
        "zero price": make(MsgType.CANCEL_REPLACE_ORDER, ServerOrderID=server_id, Quantity=2.0),
        "tif": make(MsgType.CANCEL_REPLACE_ORDER, ServerOrderID=server_id, Price1IsSet=0, Quantity=2.0, TimeInForce=2),
    }
    for message in bad.values():
        client.send(message)
        reject = await update(client, "m2", Reason.ORDER_CANCEL_REPLACE_REJECTED)
        assert reject["InfoText"] and reject["OrderStatus"] == OrderStatus.OPEN
    client.send(make(MsgType.CANCEL_REPLACE_ORDER, ServerOrderID="missing", ClientOrderID="zz", Price1=4990.0))
    await update(client, "zz", Reason.ORDER_CANCEL_REPLACE_REJECTED)


async def test_oco_is_refused_as_the_logon_flags_say(connect: ClientFactory, sim: DtcSimulator) -> None:
    sim.oco.supported = False
    client = await connect()
    client.send(
        make(
            MsgType.SUBMIT_NEW_OCO_ORDER,
            Symbol=SYMBOL,
            TradeAccount=ACCOUNT,
            ClientOrderID_1="o1",
            ClientOrderID_2="o2",
        )
    )
    for client_id in ("o1", "o2"):
        reject = await update(client, client_id, Reason.NEW_ORDER_REJECTED)
        assert "OCO" in str(reject["InfoText"])


async def test_open_orders_request_lists_working_orders_only(connect: ClientFactory, sim: DtcSimulator) -> None:
    sim.exchange.set_price(SYMBOL, Decimal("5000.00"))
    client = await connect()
    request_id = client.request(MsgType.OPEN_ORDERS_REQUEST)
    none = await client.expect_type(MsgType.ORDER_UPDATE, RequestID=request_id)
    assert none["NoOrders"] == 1 and none["OrderUpdateReason"] == Reason.OPEN_ORDERS_REQUEST_RESPONSE
    client.send(limit("w1", 4990.0))
    client.send(limit("w2", 4980.0))
    client.send(order("gone"))
    await update(client, "gone", Reason.ORDER_FILLED)
    request_id = client.request(MsgType.OPEN_ORDERS_REQUEST)
    listed = [await client.expect_type(MsgType.ORDER_UPDATE, RequestID=request_id) for _ in range(2)]
    assert sorted(str(m["ClientOrderID"]) for m in listed) == ["w1", "w2"]
    assert {(m["MessageNumber"], m["TotalNumMessages"]) for m in listed} == {(1, 2), (2, 2)}
    assert all(m["OrderUpdateReason"] == Reason.OPEN_ORDERS_REQUEST_RESPONSE and m["NoOrders"] == 0 for m in listed)
    request_id = client.request(MsgType.OPEN_ORDERS_REQUEST, TradeAccount="NOT-MINE")
    assert (await client.expect_type(MsgType.OPEN_ORDERS_REJECT, RequestID=request_id))["RejectText"]


async def test_current_positions_request(connect: ClientFactory, sim: DtcSimulator) -> None:
    sim.exchange.set_price(SYMBOL, Decimal("5000.00"))
    client = await connect()
    request_id = client.request(MsgType.CURRENT_POSITIONS_REQUEST)
    none = await client.expect_type(MsgType.POSITION_UPDATE, RequestID=request_id)
    assert none["NoPositions"] == 1
    client.send(order("pos", BuySell=int(BuySell.SELL), Quantity=2.0))
    await update(client, "pos", Reason.ORDER_FILLED)
    request_id = client.request(MsgType.CURRENT_POSITIONS_REQUEST, TradeAccount=ACCOUNT)
    position = await client.expect_type(MsgType.POSITION_UPDATE, RequestID=request_id)
    assert (position["Quantity"], position["AveragePrice"], position["Unsolicited"]) == (-2.0, 5000.0, 0)
    assert (position["Symbol"], position["TradeAccount"], position["NoPositions"]) == (SYMBOL, ACCOUNT, 0)
    request_id = client.request(MsgType.CURRENT_POSITIONS_REQUEST, TradeAccount="NOT-MINE")
    assert (await client.expect_type(MsgType.CURRENT_POSITIONS_REJECT, RequestID=request_id))["RejectText"]


async def test_updates_reach_only_sessions_that_own_the_account() -> None:
    logins = [SimLogin("alice", "a", ("A-1",)), SimLogin("bob", "b", ("B-1",))]
    simulator = await DtcSimulator(logins=logins).start()
    alice, alice_too, bob = [await DtcClient.connect(simulator.port) for _ in range(3)]
    try:
        assert (await alice.logon("alice", "a"))["Result"] == 1
        assert (await alice_too.logon("alice", "a"))["Result"] == 1
        assert (await bob.logon("bob", "b"))["Result"] == 1
        alice.send(order("mine", TradeAccount="A-1"))
        bob.send(order("his", TradeAccount="B-1"))
        bob.send(order("theft", TradeAccount="A-1"))
        await update(alice_too, "mine", Reason.NEW_ORDER_ACCEPTED)  # same login, other socket: sees it
        await update(bob, "his", Reason.NEW_ORDER_ACCEPTED)
        await update(bob, "theft", Reason.NEW_ORDER_REJECTED)
        request_id = alice.request(MsgType.TRADE_ACCOUNTS_REQUEST)
        assert (await alice.expect_type(MsgType.TRADE_ACCOUNT_RESPONSE, RequestID=request_id))["TradeAccount"] == "A-1"
        seen_by_bob = {m["ClientOrderID"] for m in bob.inbox if m.type is MsgType.ORDER_UPDATE}
        seen_by_alice = {m["ClientOrderID"] for m in alice.inbox if m.type is MsgType.ORDER_UPDATE}
        assert "mine" not in seen_by_bob and not {"his", "theft"} & seen_by_alice
    finally:
        for client in (alice, alice_too, bob):
            await client.close()
        await simulator.stop()


async def test_a_duplicated_fill_repeats_its_execution_id(connect: ClientFactory, sim: DtcSimulator) -> None:
    sim.exchange.set_price(SYMBOL, Decimal("5000.00"))
    sim.exchange.account(ACCOUNT).faults.duplicate_next_fill = True
    client = await connect()
    client.send(order("twice"))
    first = await update(client, "twice", Reason.ORDER_FILLED)
    again = await update(client, "twice", Reason.ORDER_FILLED)
    assert first["LastFillExecutionID"] == again["LastFillExecutionID"] != ""


async def test_reject_next_fault_is_an_order_update_with_its_text(connect: ClientFactory, sim: DtcSimulator) -> None:
    sim.exchange.account(ACCOUNT).faults.reject_next = "risk limit exceeded"
    client = await connect()
    client.send(order("risky"))
    reject = await update(client, "risky", Reason.NEW_ORDER_REJECTED)
    assert reject["InfoText"] == "risk limit exceeded" and reject["OrderStatus"] == OrderStatus.REJECTED


def flatten(client_id: str, **values: Value) -> Message:
    return make(
        MsgType.SUBMIT_FLATTEN_POSITION_ORDER, Symbol=SYMBOL, TradeAccount=ACCOUNT, ClientOrderID=client_id, **values
    )


async def test_flatten_closes_the_position_and_leaves_working_orders(connect: ClientFactory, sim: DtcSimulator) -> None:
    sim.exchange.set_price(SYMBOL, Decimal("5000.00"))
    client = await connect()
    client.send(order("long", Quantity=3.0))
    await update(client, "long", Reason.ORDER_FILLED)
    client.send(limit("resting", 4900.0))
    await update(client, "resting", Reason.NEW_ORDER_ACCEPTED)
    client.send(flatten("flat"))
    closing = await update(client, "flat", Reason.ORDER_FILLED)
    assert (closing["BuySell"], closing["FilledQuantity"]) == (BuySell.SELL, 3.0)
    assert sim.exchange.account(ACCOUNT).positions[SYMBOL].net_quantity == 0
    assert [o.client_order_id for o in sim.exchange.open_orders(ACCOUNT)] == ["resting"]
    client.send(flatten("flat-again"))
    reject = await update(client, "flat-again", Reason.NEW_ORDER_REJECTED)
    assert "no ESZ6 position" in str(reject["InfoText"])
    client.send(flatten("flat"))  # a used ClientOrderID, as for any order
    assert "already used" in str((await update(client, "flat", Reason.NEW_ORDER_REJECTED))["InfoText"])


async def test_flatten_option_that_also_cancels_working_orders(sim: DtcSimulator) -> None:
    sim.desk.flatten_cancels_orders = True
    sim.exchange.set_price(SYMBOL, Decimal("5000.00"))
    client = await DtcClient.connect(sim.port)
    try:
        await client.logon()
        client.send(order("short", BuySell=int(BuySell.SELL)))
        await update(client, "short", Reason.ORDER_FILLED)
        client.send(limit("resting", 4900.0))
        await update(client, "resting", Reason.NEW_ORDER_ACCEPTED)
        client.send(flatten("flat"))
        await update(client, "resting", Reason.ORDER_CANCELED)
        closing = await update(client, "flat", Reason.ORDER_FILLED)
        assert closing["BuySell"] == BuySell.BUY and not sim.exchange.open_orders(ACCOUNT)
    finally:
        await client.close()


async def test_historical_fills_list_each_fill_once(connect: ClientFactory, sim: DtcSimulator) -> None:
    sim.exchange.set_price(SYMBOL, Decimal("5000.00"))
    client = await connect()
    request_id = client.request(MsgType.HISTORICAL_ORDER_FILLS_REQUEST, NumberOfDays=1)
    assert (await client.expect_type(MsgType.HISTORICAL_ORDER_FILL_RESPONSE, RequestID=request_id))["NoOrderFills"] == 1
    sim.exchange.account(ACCOUNT).faults.partial_fill_lot = 1
    sim.exchange.account(ACCOUNT).faults.duplicate_next_fill = True
    client.send(order("h1", Quantity=2.0))
    first = await update(client, "h1", Reason.ORDER_FILLED_PARTIALLY)
    sim.exchange.advance()
    await update(client, "h1", Reason.ORDER_FILLED)
    request_id = client.request(MsgType.HISTORICAL_ORDER_FILLS_REQUEST, ServerOrderID=str(first["ServerOrderID"]))
    fills = [await client.expect_type(MsgType.HISTORICAL_ORDER_FILL_RESPONSE, RequestID=request_id) for _ in range(2)]
    assert {(f["MessageNumber"], f["TotalNumberMessages"]) for f in fills} == {(1, 2), (2, 2)}
    assert len({f["UniqueExecutionID"] for f in fills}) == 2 and all(f["Quantity"] == 1.0 for f in fills)
    assert first["LastFillExecutionID"] in {f["UniqueExecutionID"] for f in fills}
    assert all(f["BuySell"] == BuySell.BUY and f["TradeAccount"] == ACCOUNT for f in fills)
    request_id = client.request(MsgType.HISTORICAL_ORDER_FILLS_REQUEST, TradeAccount="NOT-MINE")
    assert (await client.expect_type(MsgType.HISTORICAL_ORDER_FILLS_REJECT, RequestID=request_id))["RejectText"]
