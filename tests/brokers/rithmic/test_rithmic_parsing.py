"""352 notifications → OrderEvent/FillEvent, from the simulator's own pushes and from edge frames."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from ci_skips import require_module

require_module("async_rithmic", "third-party client", "async-rithmic (install_requires in setup.cfg)")

from rithmic_helpers import wait_until  # noqa: E402

from copytrader.brokers.model import OrderStatus, OrderType, Side  # noqa: E402
from copytrader.brokers.rithmic import codec, parsing  # noqa: E402
from copytrader.brokers.rithmic.simulator import RithmicSimulator  # noqa: E402
from copytrader.brokers.rithmic.transport import PlantConnection  # noqa: E402

LEADER = "RITHMIC-LEADER"


@pytest.fixture
async def plant(sim: RithmicSimulator) -> AsyncIterator[tuple[PlantConnection, list[Any]]]:
    pushes: list[Any] = []
    connection = PlantConnection(sim.url, on_push=pushes.append, timeout_s=3.0)
    await connection.open()
    await connection.login("sim-user", "sim-pass", sim.system_name, "sim:copytrader", "0.1")
    await connection.request(308, account_id=LEADER)
    try:
        yield connection, pushes
    finally:
        await connection.close()


def _events(pushes: list[Any], tag: str) -> list[Any]:
    return [e for e in map(parsing.order_event, pushes) if e is not None and e.client_order_id == tag]


async def _place(connection: PlantConnection, tag: str, **fields: Any) -> str:
    order = dict(account_id=LEADER, exchange="CME", transaction_type=1, duration=2, trade_route="simulator")
    replies = await connection.request(312, user_tag=tag, **{**order, **fields})
    return str(replies[0].basket_id)


async def test_resting_limit_then_cancel(sim: RithmicSimulator, plant: tuple[PlantConnection, list[Any]]) -> None:
    connection, pushes = plant
    sim.exchange.set_price("ESZ6", Decimal(5000))
    basket = await _place(connection, "lim", symbol="ESZ6", quantity=3, price_type=1, price=4990.25)
    working = await wait_until(lambda: _events(pushes, "lim"), what="working")
    assert (working[0].status, working[0].broker_order_id) == (OrderStatus.WORKING, basket)
    assert (working[0].order_type, working[0].side, working[0].quantity) == (OrderType.LIMIT, Side.BUY, 3)
    assert working[0].limit_price == Decimal("4990.25") and working[0].stop_price is None
    await connection.request(316, account_id=LEADER, basket_id=basket)
    done = await wait_until(lambda: [e for e in _events(pushes, "lim") if e.status is OrderStatus.CANCELLED])
    assert done[0].filled_quantity == 0


async def test_partial_fills_become_fill_events(
    sim: RithmicSimulator, plant: tuple[PlantConnection, list[Any]]
) -> None:
    connection, pushes = plant
    sim.faults(LEADER).partial_fill_lot = 1
    last = sim.exchange.set_price("CLZ6", Decimal("75.37"))
    await _place(connection, "mkt", symbol="CLZ6", exchange="NYMEX", quantity=2, price_type=2, transaction_type=2)
    sim.exchange.set_price("CLZ6", last)

    def fills_of() -> list[Any]:
        return [f for f in map(parsing.fill_event, pushes) if f is not None and f.client_order_id == "mkt"]

    await wait_until(lambda: len(fills_of()) >= 2, what="two partial fills")
    fills = fills_of()
    assert [(f.quantity, f.cumulative_quantity, f.leaves_quantity) for f in fills] == [(1, 1, 1), (1, 2, 0)]
    assert all(f.price == Decimal("75.37") and f.side is Side.SELL for f in fills)
    statuses = [e.status for e in _events(pushes, "mkt")]
    assert statuses == [OrderStatus.WORKING, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED]


async def test_reject_carries_its_text(sim: RithmicSimulator, plant: tuple[PlantConnection, list[Any]]) -> None:
    connection, pushes = plant
    sim.faults(LEADER).reject_next = "insufficient margin"
    await _place(connection, "rej", symbol="ESZ6", quantity=1, price_type=2)
    (rejected,) = await wait_until(lambda: _events(pushes, "rej"), what="reject")
    assert (rejected.status, rejected.reason) == (OrderStatus.REJECTED, "insufficient margin")


def test_prices_are_tick_exact_decimals() -> None:
    assert parsing.price(5000.25, "ESZ6") == Decimal("5000.25")
    assert parsing.price(1.0850000000000002, "6EZ6") == Decimal("1.08500")
    assert parsing.price(12.345, "ZZZ") == Decimal("12.345")  # no tick known: the wire's value


@pytest.mark.parametrize("notify_type", [7, 8, 9, 42])  # NOT_MODIFIED, NOT_CANCELLED, GENERIC, a newer type
def test_notifications_without_a_state_we_trust_are_skipped(notify_type: int) -> None:
    message = codec.build(
        352, notify_type=notify_type, basket_id="1", account_id="A", symbol="ESZ6", transaction_type=1, price_type=2
    )
    assert parsing.order_event(message) is None
    assert parsing.fill_event(message) is None


def test_unknown_price_type_and_non_352_are_skipped() -> None:
    mit = codec.build(352, notify_type=1, basket_id="1", symbol="ESZ6", transaction_type=1, price_type=5)
    assert parsing.order_event(mit) is None
    assert (
        parsing.order_event(codec.build(351, notify_type=13, basket_id="1", transaction_type=1, price_type=2)) is None
    )
