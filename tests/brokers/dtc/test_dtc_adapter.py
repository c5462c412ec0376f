"""DtcAdapter against the DTC simulator, in both encodings: session, orders, events, lookup."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from decimal import Decimal

import pytest
from adapter_helpers import ACCOUNT, SYMBOL, Recorder, adapter_for, frozen, session_config, with_secret

from copytrader.brokers.dtc.adapter import DtcAdapter
from copytrader.brokers.dtc.config import parse_endpoint
from copytrader.brokers.dtc.messages import Encoding
from copytrader.brokers.dtc.simulator import DtcSimulator, create_simulator
from copytrader.brokers.errors import (
    AuthenticationFailed,
    BrokerUnavailable,
    OrderRejected,
    UnknownOrder,
    UnsupportedOperation,
)
from copytrader.brokers.model import (
    CancelOrder,
    ConnectionEvent,
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
    TimeInForce,
)
from copytrader.brokers.simkernel.logins import SimLogin


@dataclass
class Setup:
    sim: DtcSimulator
    adapter: DtcAdapter
    events: Recorder

    @property
    def account(self) -> str:
        return self.adapter.broker_account(ACCOUNT)

    def kernel_orders(self) -> list[object]:
        return list(self.sim.exchange.account(self.account).orders.values())


@pytest.fixture
async def setup(dsim: DtcSimulator, encoding: Encoding) -> AsyncIterator[Setup]:
    adapter = adapter_for(dsim, encoding)
    events = Recorder(adapter.events())
    await adapter.connect()
    try:
        yield Setup(dsim, adapter, events)
    finally:
        await adapter.disconnect()


def limit(ref: str, price: str, side: Side = Side.BUY, quantity: int = 1, **extra: object) -> PlaceOrder:
    return PlaceOrder(
        ACCOUNT,
        ref,
        SYMBOL,
        side,
        quantity,
        OrderType.LIMIT,
        limit_price=Decimal(price),
        **extra,  # type: ignore[arg-type]  # test options
    )


def market(ref: str, side: Side = Side.BUY, quantity: int = 1) -> PlaceOrder:
    return PlaceOrder(ACCOUNT, ref, SYMBOL, side, quantity)


# -- endpoint and session --------------------------------------------------------------------
def test_endpoint_forms() -> None:
    assert parse_endpoint("dtc://127.0.0.1:5000") == ("127.0.0.1", 5000)
    assert parse_endpoint("tcp://sc.example:11098") == ("sc.example", 11098)
    assert parse_endpoint("10.0.0.5:11099") == ("10.0.0.5", 11099)
    assert parse_endpoint("sierra.local") == ("sierra.local", 11099)
    for bad in ("http://h:1", "", "dtc://:1", "h:notaport"):
        with pytest.raises(ValueError):
            parse_endpoint(bad)


async def test_connect_reports_connected_and_uses_the_chosen_encoding(setup: Setup, encoding: Encoding) -> None:
    assert setup.adapter.state is ConnectionState.CONNECTED
    assert setup.adapter.connection is not None and setup.adapter.connection.encoding is encoding
    await setup.events.expect(lambda e: isinstance(e, ConnectionEvent) and e.state is ConnectionState.CONNECTED)


async def test_bad_password_is_authentication_failed(dsim: DtcSimulator, encoding: Encoding) -> None:
    adapter = DtcAdapter(with_secret(session_config(dsim, encoding), "wrong"))
    with pytest.raises(AuthenticationFailed) as failure:
        await adapter.connect()
    assert not failure.value.retriable and adapter.state is ConnectionState.DISCONNECTED


async def test_a_server_without_trading_is_refused_clearly(encoding: Encoding) -> None:
    simulator = create_simulator(exchange=frozen(), trading_supported=False)
    await simulator.start()
    try:
        adapter = adapter_for(simulator, encoding)
        with pytest.raises(UnsupportedOperation) as failure:
            await adapter.connect()
        assert failure.value.code == "TRADING_NOT_SUPPORTED" and "Allow Trading" in failure.value.message
        health = adapter.health()
        assert health.state is ConnectionState.DISCONNECTED and "trading is not supported" in (health.last_error or "")
        assert not simulator.sessions or all(s.closed for s in simulator.sessions)
    finally:
        await simulator.stop()


async def test_an_account_the_logon_does_not_see_is_refused(dsim: DtcSimulator) -> None:
    config = session_config(dsim)
    adapter = DtcAdapter(replace(config, accounts={ACCOUNT: "NOT-MINE"}))
    with pytest.raises(AuthenticationFailed, match="NOT-MINE"):
        await adapter.connect()


# -- orders ----------------------------------------------------------------------------------
async def test_market_order_acks_fills_and_moves_the_position(setup: Setup) -> None:
    ack = await setup.adapter.place(market("m1", quantity=2))
    assert ack.client_order_id == "m1" and ack.broker_order_id and not ack.duplicate
    fill = await setup.events.expect(lambda e: isinstance(e, FillEvent) and e.client_order_id == "m1")
    assert isinstance(fill, FillEvent) and fill.quantity == 2 and fill.price == Decimal("5000.00")
    assert fill.leaves_quantity == 0 and fill.broker_order_id == ack.broker_order_id
    await setup.events.expect(lambda e: isinstance(e, PositionEvent) and e.net_quantity == 2)
    (order,) = setup.kernel_orders()
    assert order.client_order_id == "m1"  # type: ignore[attr-defined]  # SimOrder


@pytest.mark.parametrize(
    ("order_type", "prices"),
    [
        (OrderType.LIMIT, {"limit_price": Decimal("4990.25")}),
        (OrderType.STOP, {"stop_price": Decimal("5010.50")}),
        (OrderType.STOP_LIMIT, {"stop_price": Decimal("5010.50"), "limit_price": Decimal("5011.00")}),
    ],
)
async def test_resting_order_types_keep_their_prices(
    setup: Setup, order_type: OrderType, prices: dict[str, Decimal]
) -> None:
    command = PlaceOrder(ACCOUNT, "r1", SYMBOL, Side.BUY, 1, order_type, time_in_force=TimeInForce.GTC, **prices)
    ack = await setup.adapter.place(command)
    assert ack.status is OrderStatus.WORKING
    working = await setup.events.expect(lambda e: isinstance(e, OrderEvent) and e.client_order_id == "r1")
    assert isinstance(working, OrderEvent) and working.order_type is order_type
    assert (working.limit_price, working.stop_price) == (prices.get("limit_price"), prices.get("stop_price"))


async def test_a_reject_arrives_with_its_text(setup: Setup) -> None:
    setup.sim.faults(setup.account).reject_next = "risk: max position exceeded"
    with pytest.raises(OrderRejected, match="max position") as failure:
        await setup.adapter.place(market("x1"))
    assert not failure.value.retriable
    event = await setup.events.expect(lambda e: isinstance(e, OrderEvent) and e.client_order_id == "x1")
    assert isinstance(event, OrderEvent) and event.status is OrderStatus.REJECTED
    assert "max position" in (event.reason or "")


async def test_a_refused_request_is_a_reject_event_with_the_servers_text(setup: Setup) -> None:
    bad_tick = limit("t1", "4990.10")  # the server refuses before the order exists: no ServerOrderID
    with pytest.raises(OrderRejected):
        await setup.adapter.place(bad_tick)
    event = await setup.events.expect(lambda e: isinstance(e, OrderEvent) and e.client_order_id == "t1")
    assert isinstance(event, OrderEvent) and event.status is OrderStatus.REJECTED and event.reason


async def test_a_repeated_client_order_id_is_answered_with_the_first_order(setup: Setup) -> None:
    first = await setup.adapter.place(limit("dup", "4990.00", time_in_force=TimeInForce.GTC))
    again = await setup.adapter.place(limit("dup", "4990.00", time_in_force=TimeInForce.GTC))
    assert again.duplicate and again.broker_order_id == first.broker_order_id
    assert len(setup.kernel_orders()) == 1
    rejected = [e for e in setup.events.of(OrderEvent) if e.status is OrderStatus.REJECTED]
    assert rejected == []  # the live order under the id was not reported rejected


async def test_partial_fills_once_each_with_cumulative_and_leaves(setup: Setup) -> None:
    faults = setup.sim.faults(setup.account)
    faults.partial_fill_lot = 1
    faults.duplicate_next_fill = True
    await setup.adapter.place(market("p1", quantity=3))
    for step in range(3):
        if step:
            setup.sim.exchange.advance()
        fill = await setup.events.expect(lambda e: isinstance(e, FillEvent) and e.client_order_id == "p1")
        assert isinstance(fill, FillEvent) and (fill.cumulative_quantity, fill.leaves_quantity) == (step + 1, 2 - step)
    await setup.events.expect(lambda e: isinstance(e, OrderEvent) and e.status is OrderStatus.FILLED)
    fills = setup.events.of(FillEvent)
    assert len(fills) == 3 and len({f.fill_id for f in fills}) == 3  # the repeated report counted once


async def test_modify_is_a_cancel_replace(setup: Setup) -> None:
    await setup.adapter.place(limit("l1", "4990.00", time_in_force=TimeInForce.GTC))
    ack = await setup.adapter.modify(ModifyOrder(ACCOUNT, "l1", quantity=3, limit_price=Decimal("4991.50")))
    assert ack.status is OrderStatus.WORKING
    (order,) = setup.kernel_orders()
    assert (order.quantity, order.limit_price) == (3, Decimal("4991.50"))  # type: ignore[attr-defined]  # SimOrder
    await setup.events.expect(lambda e: isinstance(e, OrderEvent) and e.quantity == 3)
    with pytest.raises(OrderRejected, match="tick"):
        await setup.adapter.modify(ModifyOrder(ACCOUNT, "l1", limit_price=Decimal("4991.10")))
    with pytest.raises(UnknownOrder):
        await setup.adapter.modify(ModifyOrder(ACCOUNT, "never", limit_price=Decimal("4991.00")))


async def test_modify_a_stop_limit_changes_both_prices(setup: Setup) -> None:
    command = PlaceOrder(
        ACCOUNT,
        "sl",
        SYMBOL,
        Side.SELL,
        1,
        OrderType.STOP_LIMIT,
        Decimal("4980.00"),
        Decimal("4981.00"),
        TimeInForce.GTC,
    )
    await setup.adapter.place(command)
    await setup.adapter.modify(
        ModifyOrder(ACCOUNT, "sl", limit_price=Decimal("4975.00"), stop_price=Decimal("4976.00"))
    )
    (order,) = setup.kernel_orders()
    assert (order.stop_price, order.limit_price) == (Decimal("4976.00"), Decimal("4975.00"))  # type: ignore[attr-defined]  # SimOrder


async def test_cancel_then_a_repeated_cancel_is_a_duplicate(setup: Setup) -> None:
    placed = await setup.adapter.place(limit("c1", "4990.00", time_in_force=TimeInForce.GTC))
    first = await setup.adapter.cancel(CancelOrder(ACCOUNT, "c1"))
    assert first.status is OrderStatus.CANCELLED and not first.duplicate
    again = await setup.adapter.cancel(CancelOrder(ACCOUNT, "c1"))
    assert again.duplicate and again.broker_order_id == placed.broker_order_id
    with pytest.raises(UnknownOrder):
        await setup.adapter.cancel(CancelOrder(ACCOUNT, "never"))


async def test_flatten_cancels_working_orders_and_closes_with_our_id(setup: Setup) -> None:
    await setup.adapter.place(market("m1", Side.SELL, 2))
    await setup.events.expect(lambda e: isinstance(e, PositionEvent) and e.net_quantity == -2)
    await setup.adapter.place(limit("l1", "4980.00", time_in_force=TimeInForce.GTC))
    ack = await setup.adapter.flatten(FlattenPosition(ACCOUNT, "fl"))
    assert ack.client_order_id == "fl" and ack.broker_order_id != "none"
    await setup.events.expect(lambda e: isinstance(e, PositionEvent) and e.net_quantity == 0)
    closing = [o for o in setup.kernel_orders() if o.client_order_id == "fl"]  # type: ignore[attr-defined]  # SimOrder
    assert len(closing) == 1 and closing[0].side is Side.BUY  # type: ignore[attr-defined]  # SimOrder
    snapshot = await setup.adapter.snapshot(ACCOUNT)
    assert snapshot.open_orders == () and snapshot.positions == ()
    flat = await setup.adapter.flatten(FlattenPosition(ACCOUNT, "fl2"))
    assert flat.broker_order_id == "none"  # nothing to close: nothing sent


async def test_snapshot_has_balance_orders_and_positions(setup: Setup) -> None:
    await setup.adapter.place(market("m1", quantity=1))
    await setup.adapter.place(limit("l1", "4990.00", time_in_force=TimeInForce.GTC))
    snapshot = await setup.adapter.snapshot(ACCOUNT)
    assert snapshot.balance == setup.sim.exchange.account(setup.account).balance > 0
    assert [o.client_order_id for o in snapshot.open_orders] == ["l1"]
    assert [(p.symbol, p.net_quantity) for p in snapshot.positions] == [(SYMBOL, 1)]


# -- lookup ----------------------------------------------------------------------------------
async def test_lookup_asks_the_server_for_open_and_filled_orders(setup: Setup) -> None:
    assert await setup.adapter.lookup(ACCOUNT, "never") is None
    resting = await setup.adapter.place(limit("l1", "4990.00", time_in_force=TimeInForce.GTC))
    found = await setup.adapter.lookup(ACCOUNT, "l1")
    assert found is not None and found.duplicate and found.broker_order_id == resting.broker_order_id
    filled = await setup.adapter.place(market("m1"))
    await setup.events.expect(lambda e: isinstance(e, FillEvent) and e.client_order_id == "m1")
    found = await setup.adapter.lookup(ACCOUNT, "m1")
    assert found is not None and found.broker_order_id == filled.broker_order_id
    assert found.status is OrderStatus.FILLED
    assert await setup.adapter.lookup(ACCOUNT, "never") is None


async def test_lookup_cannot_tell_when_a_fill_names_an_order_never_seen(setup: Setup, encoding: Encoding) -> None:
    await setup.adapter.place(market("m1"))
    await setup.events.expect(lambda e: isinstance(e, FillEvent))
    fresh = adapter_for(setup.sim, encoding)  # a new session: it never saw m1's ORDER_UPDATEs
    await fresh.connect()
    try:
        with pytest.raises(BrokerUnavailable, match="cannot tell"):
            await fresh.lookup(ACCOUNT, "other")
        resting = await fresh.place(limit("l1", "4990.00", time_in_force=TimeInForce.GTC))
        found = await fresh.lookup(ACCOUNT, "l1")  # open orders carry the ClientOrderID: found
        assert found is not None and found.broker_order_id == resting.broker_order_id
    finally:
        await fresh.disconnect()


async def test_requests_when_disconnected_were_not_sent(dsim: DtcSimulator) -> None:
    adapter = adapter_for(dsim)
    with pytest.raises(BrokerUnavailable) as failure:
        await adapter.place(market("m1"))
    assert failure.value.sent is False


async def test_a_password_too_long_for_the_logon_is_refused_before_sending(dsim: DtcSimulator) -> None:
    adapter = DtcAdapter(with_secret(session_config(dsim), "x" * 40))
    with pytest.raises(AuthenticationFailed, match="at most 31") as failure:
        await adapter.connect()
    assert failure.value.code == "LOGON_FIELD_TOO_LONG" and dsim.logons == 0


def test_the_simulator_serves_passwords_that_fit_the_logon() -> None:
    long = SimLogin("firm-a", "0f8fad5b-d9cb-469f-a165-70867728950e", ("F1",))
    simulator = create_simulator(exchange=frozen(), logins=[long])
    served = simulator.credentials_for("firm-a")
    assert served["password"] == "0f8fad5bd9cb469fa16570867728950"[:31] and len(served["password"]) == 31


async def test_flatten_all_closes_each_symbol_with_its_own_id(setup: Setup) -> None:
    await setup.adapter.place(market("es", Side.BUY, 1))
    await setup.adapter.place(PlaceOrder(ACCOUNT, "nq", "NQZ6", Side.SELL, 2))
    first = await setup.adapter.flatten(FlattenPosition(ACCOUNT, "all"))
    assert first.client_order_id == "all"
    closing = sorted(
        (o.client_order_id, o.symbol, o.side) for o in setup.kernel_orders() if o.client_order_id.startswith("all")
    )  # type: ignore[attr-defined]  # SimOrder
    assert closing == [("all", SYMBOL, Side.SELL), ("all.2", "NQZ6", Side.BUY)]
    assert (await setup.adapter.snapshot(ACCOUNT)).positions == ()


async def test_concurrent_requests_each_get_their_own_answer(setup: Setup) -> None:
    commands = [market(f"cc{n}", Side.BUY if n % 2 else Side.SELL) for n in range(20)]
    acks = await asyncio.gather(*(setup.adapter.place(c) for c in commands))
    assert [a.client_order_id for a in acks] == [c.client_order_id for c in commands]
    by_id = {o.client_order_id: o.order_id for o in setup.kernel_orders()}  # type: ignore[attr-defined]  # SimOrder
    assert all(by_id[a.client_order_id] == a.broker_order_id for a in acks)
    for command in commands:
        await setup.events.expect(
            lambda e, ref=command.client_order_id: isinstance(e, FillEvent) and e.client_order_id == ref
        )  # type: ignore[misc]  # default-bound ref
