"""PlantConnection (our own R|Protocol client) against the simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from ci_skips import require_module

require_module("async_rithmic", "third-party client", "async-rithmic (install_requires in setup.cfg)")

from rithmic_helpers import wait_until  # noqa: E402

from copytrader.brokers.errors import AuthenticationFailed, BrokerUnavailable  # noqa: E402
from copytrader.brokers.rithmic import codec  # noqa: E402
from copytrader.brokers.rithmic.simulator import RithmicSimulator, create_simulator  # noqa: E402
from copytrader.brokers.rithmic.transport import PlantConnection, RequestRefused  # noqa: E402
from copytrader.brokers.simkernel.exchange import SimExchange  # noqa: E402

LEADER = "RITHMIC-LEADER"
APP = ("sim:copytrader", "0.1")


@pytest.fixture
async def plant(sim: RithmicSimulator) -> AsyncIterator[tuple[PlantConnection, list[Any]]]:
    pushes: list[Any] = []
    connection = PlantConnection(sim.url, on_push=pushes.append, timeout_s=3.0)
    await connection.open()
    await connection.login("sim-user", "sim-pass", sim.system_name, *APP)
    try:
        yield connection, pushes
    finally:
        await connection.close()


async def test_login_then_multi_part_request(plant: tuple[PlantConnection, list[Any]]) -> None:
    connection, _ = plant
    assert connection.heartbeat_interval == 60.0
    replies = await connection.request(302, fcm_id="SIMFCM", ib_id="SIMIB")
    assert [m.account_id for m in replies[:-1]] == [LEADER, "RITHMIC-FOLLOWER-1"]
    assert list(replies[-1].rp_code) == ["0"]


async def test_refused_login_is_authentication_failed(sim: RithmicSimulator) -> None:
    connection = PlantConnection(sim.url, timeout_s=3.0)
    await connection.open()
    try:
        with pytest.raises(AuthenticationFailed) as caught:
            await connection.login("sim-user", "bad", sim.system_name, *APP)
        assert caught.value.code == "13"
    finally:
        await connection.close()


async def test_error_rp_code_raises_with_code_and_text(plant: tuple[PlantConnection, list[Any]]) -> None:
    connection, _ = plant
    with pytest.raises(RequestRefused) as caught:
        await connection.request(316, account_id=LEADER, basket_id="nope")
    assert caught.value.code == "3" and "unknown basket_id" in caught.value.text


async def test_order_pushes_reach_on_push(sim: RithmicSimulator, plant: tuple[PlantConnection, list[Any]]) -> None:
    connection, pushes = plant
    await connection.request(308, account_id=LEADER)
    sim.exchange.set_price("ESZ6", Decimal(5000))
    order = dict(account_id=LEADER, symbol="ESZ6", exchange="CME", quantity=1, transaction_type=1, duration=1)
    replies = await connection.request(312, user_tag="t1", price_type=2, trade_route="simulator", **order)
    basket = replies[0].basket_id
    await wait_until(lambda: any(codec.template_of(m) == 352 and m.notify_type == 5 for m in pushes), what="fill")
    assert all(m.basket_id == basket for m in pushes if codec.template_of(m) in (351, 352))
    assert not any(codec.template_of(m) == 19 for m in pushes)  # heartbeat replies are not pushes


async def test_heartbeats_keep_a_quiet_session_alive() -> None:
    async with create_simulator(SimExchange(seed=3), tick_ms=0, heartbeat_interval=0.2) as sim:
        connection = PlantConnection(sim.url, timeout_s=3.0)
        await connection.open()
        await connection.login("sim-user", "sim-pass", sim.system_name, *APP)
        try:
            # 8 heartbeats (every 0.1 s) span twice the 0.4 s drop threshold with no other traffic
            await wait_until(lambda: sim.heartbeats >= 8, what="heartbeats")
            assert connection.connected and len(sim.sessions) == 1
            replies = await connection.request(302)
            assert list(replies[-1].rp_code) == ["0"]
        finally:
            await connection.close()


async def test_dropped_link_fails_pending_and_later_requests(
    sim: RithmicSimulator, plant: tuple[PlantConnection, list[Any]]
) -> None:
    connection, _ = plant
    sim.faults(LEADER).drop_connection = True
    await wait_until(lambda: not connection.connected, what="link dropped")
    with pytest.raises(BrokerUnavailable) as caught:
        await connection.request(302)
    assert caught.value.sent is False


async def test_unreachable_server_is_unavailable_not_sent() -> None:
    connection = PlantConnection("ws://127.0.0.1:9", timeout_s=1.0)
    with pytest.raises(BrokerUnavailable) as caught:
        await connection.open()
    assert caught.value.sent is False
