"""An adapter's event subscriptions: a subscriber may ask for some event classes only, and then
gets exactly those, in order, while the other subscribers still get every event."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from copytrader.brokers.base import SessionConfig, Subscription
from copytrader.brokers.model import (
    BrokerEvent,
    ConnectionEvent,
    ConnectionState,
    FillEvent,
    OrderEvent,
    PlaceOrder,
    PositionEvent,
    Side,
)
from copytrader.brokers.paper.adapter import PaperAdapter, reset_venues


@pytest.fixture(autouse=True)
def fresh_venues() -> Iterator[None]:
    reset_venues()
    yield
    reset_venues()


def drained(subscription: Subscription) -> list[BrokerEvent]:
    found = []
    while not subscription.queue.empty():
        found.append(subscription.queue.get_nowait())
    return found


async def connected_adapter() -> PaperAdapter:
    adapter = PaperAdapter(SessionConfig("paper", "s", {"A": "A"}, options={"tick_ms": 0, "venue": "subscriptions"}))
    await adapter.connect()
    adapter.exchange.set_price("ESZ6", Decimal(5000))
    return adapter


async def test_a_subscription_of_some_kinds_gets_only_those_and_the_others_get_everything() -> None:
    adapter = await connected_adapter()
    everything = adapter.events()
    connections = adapter.events(ConnectionEvent)
    fills_and_positions = adapter.events(FillEvent, PositionEvent)

    await adapter.place(PlaceOrder("A", "c1", "ESZ6", Side.BUY, 2))
    await adapter.disconnect()

    seen = drained(everything)
    assert [type(e) for e in seen] == [OrderEvent, OrderEvent, FillEvent, PositionEvent, ConnectionEvent]
    assert drained(fills_and_positions) == [e for e in seen if isinstance(e, FillEvent | PositionEvent)]
    (change,) = drained(connections)
    assert isinstance(change, ConnectionEvent) and change.state is ConnectionState.DISCONNECTED


async def test_a_closed_subscription_of_some_kinds_gets_nothing_more() -> None:
    adapter = await connected_adapter()
    connections = adapter.events(ConnectionEvent)
    connections.close()

    await adapter.disconnect()

    assert drained(connections) == []
