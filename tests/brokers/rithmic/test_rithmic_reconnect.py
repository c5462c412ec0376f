"""Lost links, resync and ForcedLogout: RithmicAdapter against the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from ci_skips import require_module

require_module("async_rithmic", "third-party client", "async-rithmic (install_requires in setup.cfg)")

from async_rithmic import SysInfraType  # noqa: E402
from rithmic_helpers import make_client, wait_until  # noqa: E402

from copytrader.brokers.base import SessionConfig  # noqa: E402
from copytrader.brokers.errors import BrokerUnavailable  # noqa: E402
from copytrader.brokers.model import (  # noqa: E402
    ConnectionEvent,
    ConnectionState,
    FillEvent,
    OrderEvent,
    OrderStatus,
    OrderType,
    PlaceOrder,
    PositionEvent,
    Side,
)
from copytrader.brokers.rithmic.adapter import RithmicAdapter  # noqa: E402
from copytrader.brokers.rithmic.simulator import RithmicSimulator, create_simulator  # noqa: E402
from copytrader.brokers.simkernel.exchange import SimExchange  # noqa: E402

LEADER = "RITHMIC-LEADER"


def config(sim: RithmicSimulator, session_id: str = "r1") -> SessionConfig:
    return SessionConfig(
        platform="rithmic",
        session_id=session_id,
        accounts={"lead": LEADER},
        endpoint=sim.url,
        username="sim-user",
        secret="sim-pass",
        options={
            "system_name": sim.system_name,
            "app_name": "sim:copytrader",
            "timeout_s": 3.0,
            "reconnect_min_s": 0.05,
            "reconnect_max_s": 0.2,
        },
    )


@pytest.fixture
async def fast_sim() -> AsyncIterator[RithmicSimulator]:
    """Heartbeats every 0.2 s, so silence is noticed quickly."""
    simulator = create_simulator(SimExchange(seed=5), tick_ms=0, heartbeat_interval=0.2)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


class Events:
    def __init__(self, adapter: RithmicAdapter) -> None:
        self.subscription = adapter.events()
        self.seen: list[Any] = []

    def __call__(self) -> list[Any]:
        while not self.subscription.queue.empty():
            self.seen.append(self.subscription.queue.get_nowait())
        return self.seen

    def states(self) -> list[ConnectionState]:
        return [e.state for e in self() if isinstance(e, ConnectionEvent)]


def deafen(sim: RithmicSimulator) -> None:
    """The link is dead but not yet closed: nothing the server sends reaches the client."""
    for session in sim.sessions:
        session.order_accounts.clear()
        session.pnl_accounts.clear()


async def test_fills_missed_while_down_are_reported_once_after_resync(sim: RithmicSimulator) -> None:
    adapter = RithmicAdapter(config(sim))
    await adapter.connect()
    events = Events(adapter)
    try:
        sim.exchange.set_price("ESZ6", Decimal(5000))
        sim.faults(LEADER).partial_fill_lot = 1
        placed = await adapter.place(PlaceOrder("lead", "p1", "ESZ6", Side.BUY, 3))
        basket = placed.broker_order_id
        fills = lambda: [e for e in events() if isinstance(e, FillEvent) and e.broker_order_id == basket]  # noqa: E731
        await wait_until(lambda: len(fills()) == 1, what="the first lot, live")
        deafen(sim)
        sim.exchange.set_price("ESZ6", Decimal("5001.50"))
        sim.exchange.advance()
        sim.exchange.advance()  # the other two lots fill while nothing reaches us
        assert sim.exchange.account(LEADER).orders[basket].status is OrderStatus.FILLED
        sim.faults(LEADER).drop_connection = True
        await wait_until(lambda: sum(f.quantity for f in fills()) == 3, what="the missed lots, from the resync")
        await wait_until(lambda: adapter.state is ConnectionState.CONNECTED, what="connected again")
        assert ConnectionState.DEGRADED in events.states()
        missed = fills()[1:]
        assert [(f.quantity, f.cumulative_quantity, f.leaves_quantity) for f in missed] == [(2, 3, 0)]
        assert missed[0].price == Decimal("5001.50") and missed[0].client_order_id == "p1"
        finished = [e for e in events() if isinstance(e, OrderEvent) and e.broker_order_id == basket]
        assert finished[-1].status is OrderStatus.FILLED
        positions = [e for e in events() if isinstance(e, PositionEvent)]
        assert positions[-1].net_quantity == 3
        # a second loss and resync finds nothing new: the fills are not reported again
        sim.faults(LEADER).drop_connection = True
        await wait_until(lambda: events.states().count(ConnectionState.CONNECTED) >= 2, what="second recovery")
        await adapter.place(PlaceOrder("lead", "p2", "ESZ6", Side.SELL, 3))
        await wait_until(lambda: any(isinstance(e, FillEvent) and e.client_order_id == "p2" for e in events()))
        assert sum(f.quantity for f in fills()) == 3
    finally:
        await adapter.disconnect()


async def test_order_that_finished_while_down_is_reported_and_open_ones_are_not_repeated(
    sim: RithmicSimulator,
) -> None:
    adapter = RithmicAdapter(config(sim))
    await adapter.connect()
    events = Events(adapter)
    try:
        sim.exchange.set_price("ESZ6", Decimal(5000))
        filled = await adapter.place(PlaceOrder("lead", "l1", "ESZ6", Side.BUY, 2, OrderType.LIMIT, Decimal("4990")))
        resting = await adapter.place(PlaceOrder("lead", "l2", "ESZ6", Side.SELL, 1, OrderType.LIMIT, Decimal("5050")))
        before = len([e for e in events() if isinstance(e, OrderEvent) and e.client_order_id == "l2"])
        deafen(sim)
        sim.exchange.set_price("ESZ6", Decimal("4990"))
        sim.faults(LEADER).drop_connection = True
        await wait_until(
            lambda: any(
                isinstance(e, FillEvent) and e.broker_order_id == filled.broker_order_id and e.quantity == 2
                for e in events()
            ),
            what="the fill of l1",
        )
        await wait_until(lambda: adapter.state is ConnectionState.CONNECTED)
        l2 = [e for e in events() if isinstance(e, OrderEvent) and e.broker_order_id == resting.broker_order_id]
        assert len(l2) == before  # unchanged while away: nothing re-reported
    finally:
        await adapter.disconnect()


async def test_a_silent_link_is_closed_and_restored(fast_sim: RithmicSimulator) -> None:
    adapter = RithmicAdapter(config(fast_sim))
    await adapter.connect()
    events = Events(adapter)
    try:
        for session in list(fast_sim.sessions):  # a stalled gateway: it reads, it never answers
            session.outbox = asyncio.Queue(maxsize=0)
            session.outbox.put_nowait = lambda frame: None  # type: ignore[method-assign]  # swallow every frame
        await wait_until(lambda: ConnectionState.DEGRADED in events.states(), what="the silence noticed")
        await wait_until(lambda: adapter.state is ConnectionState.CONNECTED, what="restored")
        assert "lost" in (adapter.health().last_error or "")
        fast_sim.exchange.set_price("ESZ6", Decimal(5000))
        await adapter.place(PlaceOrder("lead", "h1", "ESZ6", Side.BUY, 1))
        await wait_until(lambda: any(isinstance(e, FillEvent) and e.client_order_id == "h1" for e in events()))
    finally:
        await adapter.disconnect()


async def test_forced_logout_stops_the_session_instead_of_fighting(sim: RithmicSimulator) -> None:
    """Another login of the same user evicts ours (77); we report it and stay down, so the
    other session is never logged out in turn."""
    ours = RithmicAdapter(config(sim, "ours"))
    await ours.connect()
    events = Events(ours)
    other = RithmicAdapter(config(sim, "other"))
    try:
        await other.connect()
        await wait_until(lambda: ours.state is ConnectionState.DISCONNECTED, what="ours forced out")
        reason = [e.reason for e in events() if isinstance(e, ConnectionEvent)][-1] or ""
        assert "ForcedLogout" in reason and "not reconnecting" in reason
        forced = sim.book.forced_logouts  # the ORDER plant's, and the PNL plant's unless ours left first
        assert forced in (1, 2)
        logins = sim.book.logins["sim-user"]
        # the other session works on; ours neither logs in again nor accepts orders
        sim.exchange.set_price("ESZ6", Decimal(5000))
        await other.place(PlaceOrder("lead", "o1", "ESZ6", Side.BUY, 1))
        await wait_until(lambda: sim.exchange.account(LEADER).positions["ESZ6"].net_quantity == 1)
        with pytest.raises(BrokerUnavailable) as caught:
            await ours.place(PlaceOrder("lead", "o2", "ESZ6", Side.BUY, 1))
        assert caught.value.sent is False and "ForcedLogout" in str(caught.value)
        assert sim.book.logins["sim-user"] == logins and sim.book.forced_logouts == forced
        assert other.state is ConnectionState.CONNECTED
    finally:
        await other.disconnect()
        await ours.disconnect()


async def test_login_info_reports_the_session_limit_the_simulator_enforces(
    sim: RithmicSimulator,
) -> None:
    adapter = RithmicAdapter(config(sim))
    await adapter.connect()
    try:
        (info,) = [m for m in await adapter.plants.call(2, 300) if m.template_id == 301]
        assert (info.op_max_session_count, info.tp_max_session_count) == (1, 1)
    finally:
        await adapter.disconnect()


async def test_the_public_client_logging_in_evicts_our_session_once(sim: RithmicSimulator) -> None:
    """The trader opens another app (async-rithmic, unchanged) with the same user: ours gets 77
    and stays down; the other app works on."""
    ours = RithmicAdapter(config(sim, "ours"))
    await ours.connect()
    client = make_client(sim)
    try:
        await client.connect(plants=[SysInfraType.ORDER_PLANT])
        await wait_until(lambda: ours.state is ConnectionState.DISCONNECTED, what="ours forced out")
        assert "ForcedLogout" in (ours.health().last_error or "")
        assert [a.account_id for a in await client.list_accounts()] == ["RITHMIC-LEADER", "RITHMIC-FOLLOWER-1"]
        assert sim.book.logins["sim-user"] == 3  # ours on two plants, the app once: no fight
    finally:
        await client.disconnect()
        await ours.disconnect()


async def test_a_link_lost_again_during_the_resync_is_restored_too(sim: RithmicSimulator) -> None:
    adapter = RithmicAdapter(config(sim))
    await adapter.connect()
    real = adapter.plants._on_restored
    calls = 0

    async def restored_then_pnl_drops() -> None:
        nonlocal calls
        calls += 1
        await real()
        if calls == 1:  # the PNL plant's socket dies just as the first resync ends
            pnl = adapter.plants.plants[4]
            assert pnl._ws is not None
            await pnl._ws.close()
            await wait_until(lambda: not adapter.plants.up.is_set(), what="the loss noticed")

    adapter.plants._on_restored = restored_then_pnl_drops
    try:
        sim.faults(LEADER).drop_connection = True
        await wait_until(lambda: calls == 2 and adapter.state is ConnectionState.CONNECTED, what="second recovery")
        assert all(plant.connected for plant in adapter.plants.plants.values())
        assert set(adapter.plants.plants) == {2, 4}
    finally:
        await adapter.disconnect()
