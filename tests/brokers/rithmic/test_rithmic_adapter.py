"""RithmicAdapter (our own, over codec + transport) against the simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from ci_skips import require_module

require_module("async_rithmic", "third-party client", "async-rithmic (install_requires in setup.cfg)")

from rithmic_helpers import wait_until  # noqa: E402

from copytrader.brokers.base import SessionConfig  # noqa: E402
from copytrader.brokers.errors import AuthenticationFailed, BrokerUnavailable, OrderRejected, UnknownOrder  # noqa: E402
from copytrader.brokers.model import (  # noqa: E402
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
)
from copytrader.brokers.rithmic.adapter import RithmicAdapter  # noqa: E402
from copytrader.brokers.rithmic.simulator import RithmicSimulator  # noqa: E402

LEADER = "RITHMIC-LEADER"


def config(sim: RithmicSimulator, secret: str = "sim-pass") -> SessionConfig:
    return SessionConfig(
        platform="rithmic",
        session_id="r1",
        accounts={"lead": LEADER},
        endpoint=sim.url,
        username="sim-user",
        secret=secret,
        options={"system_name": sim.system_name, "app_name": "sim:copytrader", "timeout_s": 3.0},
    )


@pytest.fixture
async def adapter(sim: RithmicSimulator) -> AsyncIterator[RithmicAdapter]:
    made = RithmicAdapter(config(sim))
    await made.connect()
    try:
        yield made
    finally:
        await made.disconnect()


class Drain:
    """Everything an adapter subscription delivered so far (read without waiting)."""

    def __init__(self, adapter: RithmicAdapter) -> None:
        self.subscription = adapter.events()
        self.seen: list[Any] = []

    def __call__(self) -> list[Any]:
        while not self.subscription.queue.empty():
            self.seen.append(self.subscription.queue.get_nowait())
        return self.seen


def _of(events: Any, kind: type, tag: str) -> list[Any]:
    return [e for e in events if isinstance(e, kind) and getattr(e, "client_order_id", None) == tag]


async def test_place_fill_events_position_and_snapshot(sim: RithmicSimulator, adapter: RithmicAdapter) -> None:
    assert adapter.state is ConnectionState.CONNECTED
    drain = Drain(adapter)
    sim.exchange.set_price("ESZ6", Decimal("5000.25"))
    ack = await adapter.place(PlaceOrder("lead", "c1", "ESZ6", Side.BUY, 2))
    assert ack.broker_order_id and ack.account_id == "lead"
    await wait_until(lambda: _of(drain(), FillEvent, "c1"), what="fill")
    (fill,) = _of(drain.seen, FillEvent, "c1")
    assert (fill.account_id, fill.quantity, fill.price, fill.leaves_quantity) == ("lead", 2, Decimal("5000.25"), 0)
    await wait_until(lambda: [e for e in drain() if isinstance(e, PositionEvent) and e.net_quantity == 2])
    snap = await adapter.snapshot("lead")
    assert [(p.symbol, p.net_quantity, p.average_price) for p in snap.positions] == [("ESZ6", 2, Decimal("5000.25"))]
    assert snap.balance == sim.exchange.account(LEADER).balance
    assert snap.open_orders == ()


async def test_modify_cancel_and_lookup(sim: RithmicSimulator, adapter: RithmicAdapter) -> None:
    sim.exchange.set_price("NQZ6", Decimal(18000))
    placed = await adapter.place(PlaceOrder("lead", "c2", "NQZ6", Side.SELL, 1, OrderType.LIMIT, Decimal("18010")))
    await adapter.modify(ModifyOrder("lead", "c2", limit_price=Decimal("18005.25")))
    assert sim.exchange.account(LEADER).orders[placed.broker_order_id].limit_price == Decimal("18005.25")
    (working,) = (await adapter.snapshot("lead")).open_orders
    assert (working.client_order_id, working.limit_price, working.account_id) == ("c2", Decimal("18005.25"), "lead")
    await adapter.cancel(CancelOrder("lead", "c2"))
    found = await adapter.lookup("lead", "c2")
    assert found is not None and found.duplicate and found.broker_order_id == placed.broker_order_id
    assert found.status is OrderStatus.CANCELLED
    assert await adapter.lookup("lead", "never-sent") is None
    again = await adapter.cancel(CancelOrder("lead", "c2"))  # a redelivered cancel: already done
    assert again.duplicate and again.broker_order_id == placed.broker_order_id
    with pytest.raises(UnknownOrder):
        await adapter.cancel(CancelOrder("lead", "never-sent"))


async def test_reject_and_refusal(sim: RithmicSimulator, adapter: RithmicAdapter) -> None:
    drain = Drain(adapter)
    sim.faults(LEADER).reject_next = "margin"
    with pytest.raises(OrderRejected, match="margin"):  # 313 took it, the 352 REJECT that follows refuses it
        await adapter.place(PlaceOrder("lead", "c3", "ESZ6", Side.BUY, 1))
    (event,) = await wait_until(
        lambda: [e for e in _of(drain(), OrderEvent, "c3") if e.status is OrderStatus.REJECTED], what="rejected"
    )
    assert (event.client_order_id, event.reason) == ("c3", "margin")
    with pytest.raises(OrderRejected, match="no exchange known"):
        await adapter.place(PlaceOrder("lead", "c4", "ZZZZ6", Side.BUY, 1))


async def test_flatten_cancels_and_closes_with_a_tagged_order(sim: RithmicSimulator, adapter: RithmicAdapter) -> None:
    sim.exchange.set_price("ESZ6", Decimal(5000))
    await adapter.place(PlaceOrder("lead", "c5", "ESZ6", Side.BUY, 3))
    await wait_until(
        lambda: (
            sim.exchange.account(LEADER).positions.get("ESZ6")
            and sim.exchange.account(LEADER).positions["ESZ6"].net_quantity == 3
        )
    )
    await adapter.place(PlaceOrder("lead", "c6", "ESZ6", Side.BUY, 1, OrderType.LIMIT, Decimal("4900")))
    ack = await adapter.flatten(FlattenPosition("lead", "flat-1", "ESZ6"))
    assert sim.exchange.account(LEADER).positions["ESZ6"].net_quantity == 0
    assert sim.exchange.open_orders(LEADER) == []
    found = await adapter.lookup("lead", "flat-1")
    assert found is not None and found.broker_order_id == ack.broker_order_id and found.status is OrderStatus.FILLED


async def test_bad_password_is_authentication_failed(sim: RithmicSimulator) -> None:
    made = RithmicAdapter(config(sim, secret="wrong"))
    with pytest.raises(AuthenticationFailed):
        await made.connect()
    assert made.state is ConnectionState.DISCONNECTED
    assert not sim.sessions or all(s.user is None for s in sim.sessions)


async def test_dropped_link_degrades_then_reconnects(sim: RithmicSimulator, adapter: RithmicAdapter) -> None:
    drain = Drain(adapter)
    sim.faults(LEADER).drop_connection = True
    await wait_until(
        lambda: (
            [e.state for e in drain() if isinstance(e, ConnectionEvent)][-2:]
            == [ConnectionState.DEGRADED, ConnectionState.CONNECTED]
        ),
        what="degraded, then connected again",
    )


async def test_own_disconnect_is_not_a_lost_link(sim: RithmicSimulator) -> None:
    made = RithmicAdapter(config(sim))
    await made.connect()
    drain = Drain(made)
    await made.disconnect()
    states = [e.state for e in drain() if isinstance(e, ConnectionEvent)]
    assert states == [ConnectionState.DISCONNECTED]


async def test_lost_answer_is_outcome_unknown_and_lookup_finds_the_order(
    sim: RithmicSimulator, adapter: RithmicAdapter
) -> None:
    """The order lands, the 313 never arrives: place must not claim "not sent", and after
    reconnecting the broker is asked for the tag and answers the order (no second place)."""
    sim.exchange.set_price("ESZ6", Decimal(5000))
    sim.faults(LEADER).lose_response_next = 1
    with pytest.raises(BrokerUnavailable) as caught:
        await adapter.place(PlaceOrder("lead", "c7", "ESZ6", Side.BUY, 1))
    assert caught.value.sent is True
    await adapter.disconnect()
    await adapter.connect()
    found = await adapter.lookup("lead", "c7")
    assert found is not None and found.duplicate and found.status is OrderStatus.FILLED
    assert len(sim.exchange.orders_with_client_id(LEADER, "c7")) == 1
