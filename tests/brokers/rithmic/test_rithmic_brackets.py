"""Bracket orders (330 → 331, 353) and cancel-all (346 → 347): the unchanged async-rithmic client
against the simulator, then our adapter."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from ci_skips import require_module

require_module("async_rithmic", "third-party client", "async-rithmic (install_requires in setup.cfg)")

from async_rithmic import OrderType as ClientOrderType  # noqa: E402
from async_rithmic import SysInfraType, TransactionType  # noqa: E402
from rithmic_helpers import make_client, wait_until  # noqa: E402

from copytrader.brokers.base import SessionConfig  # noqa: E402
from copytrader.brokers.errors import OrderRejected  # noqa: E402
from copytrader.brokers.model import Bracket, OrderStatus, OrderType, PlaceOrder, Side  # noqa: E402
from copytrader.brokers.rithmic.adapter import RithmicAdapter  # noqa: E402
from copytrader.brokers.rithmic.simulator import RithmicSimulator  # noqa: E402

LEADER = "RITHMIC-LEADER"
CANCEL, STATUS = 3, 1


@pytest.fixture
async def client(sim: RithmicSimulator) -> Any:
    made = make_client(sim)
    await made.connect(plants=[SysInfraType.ORDER_PLANT])
    try:
        yield made
    finally:
        await made.disconnect()


async def test_bracket_exits_at_tick_distances_then_cancel_all(sim: RithmicSimulator, client: Any) -> None:
    exchange_notes: list[Any] = []
    bracket_notes: list[Any] = []

    async def on_exchange(message: Any) -> None:
        exchange_notes.append(message)

    async def on_bracket(message: Any) -> None:
        bracket_notes.append(message)

    client.on_exchange_order_notification += on_exchange
    client.on_bracket_update += on_bracket
    sim.exchange.set_price("ESZ6", Decimal(5000))
    replies = await client.submit_order(
        "br-1",
        "ESZ6",
        "CME",
        1,
        TransactionType.BUY,
        ClientOrderType.MARKET,
        account_id=LEADER,
        stop_ticks=8,  # 2.00 below the fill on ES (tick 0.25)
        target_ticks=20,  # 5.00 above
    )
    basket = next(r.basket_id for r in replies if r.basket_id)
    (update,) = await wait_until(lambda: bracket_notes, what="353 BracketUpdates")
    assert (update.basket_id, update.stop_ticks, update.target_ticks) == (basket, 8, 20)
    exits = await wait_until(
        lambda: (
            [m for m in exchange_notes if m.notify_type == STATUS and not m.user_tag and m.basket_id != basket][:2]
            if len([m for m in exchange_notes if m.notify_type == STATUS and m.basket_id != basket]) >= 2
            else None
        ),
        what="the two exits",
    )
    prices = sorted((m.price_type, Decimal(repr(m.price or m.trigger_price))) for m in exits)
    assert prices == [(1, Decimal("5005.0")), (4, Decimal("4998.0"))]  # LIMIT target, STOP_MARKET stop
    assert all(m.transaction_type == TransactionType.SELL for m in exits)

    await client.cancel_all_orders(account_id=LEADER)
    cancelled = await wait_until(
        lambda: {m.basket_id for m in exchange_notes if m.notify_type == CANCEL} >= {m.basket_id for m in exits},
        what="both exits cancelled",
    )
    assert cancelled and sim.exchange.open_orders(LEADER) == []


async def test_non_positive_ticks_are_refused_on_331(
    sim: RithmicSimulator, client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The client reports the 331 rp_code in its log (it does not raise); nothing is placed."""
    await client.submit_order(
        "br-2", "ESZ6", "CME", 1, TransactionType.BUY, ClientOrderType.MARKET, account_id=LEADER, stop_ticks=-8
    )
    await wait_until(lambda: "stop_ticks must be a positive number of ticks" in caplog.text, what="the refusal")
    assert "'templateId': 331" in caplog.text
    assert sim.exchange.orders_with_client_id(LEADER, "br-2") == []


async def test_adapter_places_brackets_in_whole_ticks_and_cancels_all(sim: RithmicSimulator) -> None:
    adapter = RithmicAdapter(
        SessionConfig(
            platform="rithmic",
            session_id="b1",
            accounts={"lead": LEADER},
            endpoint=sim.url,
            username="sim-user",
            secret="sim-pass",
            options={"system_name": sim.system_name, "timeout_s": 3.0},
        )
    )
    await adapter.connect()
    try:
        sim.exchange.set_price("ESZ6", Decimal(5000))
        with pytest.raises(OrderRejected, match="whole number of ticks"):
            await adapter.place(PlaceOrder("lead", "b0", "ESZ6", Side.BUY, 1, bracket=Bracket(Decimal("1.1"))))
        assert sim.exchange.orders_with_client_id(LEADER, "b0") == []
        short = PlaceOrder("lead", "b1", "ESZ6", Side.SELL, 2, bracket=Bracket(Decimal("4"), Decimal("6")))
        await adapter.place(short)
        await wait_until(lambda: len(sim.exchange.open_orders(LEADER)) == 2, what="the exits")
        exits = {o.order_type: o for o in sim.exchange.open_orders(LEADER)}
        assert exits[OrderType.LIMIT].limit_price == Decimal("4996") and exits[OrderType.STOP].stop_price == Decimal(
            "5006"
        )
        assert {o.side for o in exits.values()} == {Side.BUY} and {o.quantity for o in exits.values()} == {2}
        await adapter.cancel_all("lead")
        await wait_until(lambda: sim.exchange.open_orders(LEADER) == [], what="cancel all")
        assert all(o.status is OrderStatus.CANCELLED for o in exits.values())
    finally:
        await adapter.disconnect()
