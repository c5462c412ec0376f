"""Logins as the gateway has them: each user sees its own accounts and has its own request window;
tokens are renewed, and a session the gateway no longer knows is logged in again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from copytrader.brokers.base import SessionConfig
from copytrader.brokers.errors import BrokerError, BrokerUnavailable
from copytrader.brokers.model import OrderType, PlaceOrder, Side
from copytrader.brokers.projectx.adapter import ProjectXAdapter
from copytrader.brokers.projectx.simulator import ProjectXSimulator, create_simulator
from copytrader.brokers.projectx.simulator.auth import TokenService
from copytrader.brokers.projectx.simulator.state import front_monthly
from copytrader.brokers.simkernel.exchange import SimExchange
from copytrader.brokers.simkernel.logins import SimLogin

ONE = SimLogin("trader001", "key-one", ("ACC-A1", "ACC-A2"))
TWO = SimLogin("trader002", "key-two", ("ACC-B1",))


@pytest.fixture
async def two_logins() -> AsyncIterator[ProjectXSimulator]:
    sim = create_simulator(SimExchange(seed=3), tick_ms=10, logins=[ONE, TWO], rate_limit=(6, 60))
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


class Client:
    """A bare REST client: one login, its token, raw answers (status, body)."""

    def __init__(self, http: aiohttp.ClientSession, login: SimLogin) -> None:
        self.http, self.login, self.token = http, login, ""

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with self.http.post(path, json=body, headers=headers) as response:
            return response.status, (await response.json() if response.status == 200 else None)

    async def log_in(self) -> None:
        _, body = await self.post("/api/Auth/loginKey", {"userName": self.login.username, "apiKey": self.login.secret})
        self.token = body["token"]


async def test_each_login_sees_only_its_accounts(two_logins: ProjectXSimulator) -> None:
    async with aiohttp.ClientSession(base_url=two_logins.base_url) as http:
        one, two = Client(http, ONE), Client(http, TWO)
        await one.log_in()
        await two.log_in()
        _, found = await one.post("/api/Account/search", {"onlyActiveAccounts": True})
        assert sorted(a["name"] for a in found["accounts"]) == ["ACC-A1", "ACC-A2"]
        other = two_logins.account_id("ACC-B1")
        _, refused = await one.post(
            "/api/Order/place",
            {
                "accountId": other,
                "contractId": two_logins.state.front["ES"].contract_id,
                "type": 2,
                "side": 0,
                "size": 1,
            },
        )
        assert (refused["success"], refused["errorCode"]) == (False, 1)
        assert two_logins.exchange.account("ACC-B1").orders == {}


async def test_rate_windows_are_counted_per_user(two_logins: ProjectXSimulator) -> None:
    """Twenty followers sharing a server no longer spend the leader's window."""
    async with aiohttp.ClientSession(base_url=two_logins.base_url) as http:
        one, two = Client(http, ONE), Client(http, TWO)
        await one.log_in()  # the login is one of the user's 6
        statuses = [(await one.post("/api/Account/search", {}))[0] for _ in range(6)]
        assert statuses == [200] * 5 + [429]
        await two.log_in()
        assert (await two.post("/api/Account/search", {}))[0] == 200


async def test_an_adapter_sees_only_its_login(two_logins: ProjectXSimulator) -> None:
    creds = two_logins.demo_credentials()
    assert [entry["userName"] for entry in creds["logins"]] == ["trader001", "trader002"]
    config = SessionConfig(
        platform="projectx",
        session_id="px-two",
        accounts={"b1": "ACC-B1"},
        endpoint=two_logins.base_url,
        username="trader002",
        secret="key-two",
        options={"request_timeout_s": 5.0},
    )
    adapter = ProjectXAdapter(config)
    await adapter.connect()
    try:
        ack = await adapter.place(PlaceOrder("b1", "own-1", "ESZ6", Side.BUY, 1))
        assert ack.broker_order_id in two_logins.exchange.account("ACC-B1").orders
        assert adapter.hub is not None
        with pytest.raises(BrokerUnavailable):  # the hub refuses another user's account too
            await adapter.hub.invoke("SubscribeOrders", two_logins.account_id("ACC-A1"))
    finally:
        await adapter.disconnect()
    stranger = ProjectXAdapter(replace(config, accounts={"a1": "ACC-A1"}))
    with pytest.raises(BrokerError) as info:
        await stranger.connect()
    assert info.value.code == "ACCOUNT"


async def test_a_session_the_gateway_forgot_is_logged_in_again_once(adapter: ProjectXAdapter, sim) -> None:  # type: ignore[no-untyped-def]
    """401, renewal refused (the token is unknown now) → one fresh login; the order goes once."""
    logins = adapter.session.logins
    sim.tokens = TokenService()  # a restarted gateway: every token it issued is forged now
    await adapter.place(PlaceOrder("f1", "relog-1", "ESZ6", Side.BUY, 1))
    assert adapter.session.logins == logins + 1
    assert len(sim.exchange.orders_with_client_id("PX-FOLLOWER-1", "relog-1")) == 1


async def test_contract_months_follow_the_real_listing(sim) -> None:  # type: ignore[no-untyped-def]
    assert front_monthly(date(2026, 11, 30)) == ("F", 27)  # late November: January's contract is the front
    assert front_monthly(date(2026, 11, 5)) == ("Z", 26)
    assert front_monthly(date(2026, 12, 28)) == ("G", 27)
    assert sim.state.front["CL"].month == front_monthly()[0] and sim.state.front["GC"].month == front_monthly()[0]
    assert sim.state.front["ES"].month in "HMUZ"
    assert sim.state.contract("CON.F.US.CLE.H27") is not None  # crude lists every month
    assert sim.state.contract("CON.F.US.EP.F27") is None  # ES has no January contract


async def test_trail_price_is_a_level_on_the_stops_side_then_trails() -> None:
    sim = create_simulator(SimExchange(seed=3), tick_ms=0)  # the market moves only when told
    await sim.start()
    try:
        await _trailing_stop_round(sim)
    finally:
        await sim.stop()


async def _trailing_stop_round(sim: ProjectXSimulator) -> None:
    sim.exchange.prices.set_price("ESZ6", Decimal("5000"))
    async with aiohttp.ClientSession(base_url=sim.base_url) as http:
        client = Client(http, SimLogin(sim.username, sim.api_key, ()))
        await client.log_in()
        base = {
            "accountId": sim.account_id("PX-FOLLOWER-1"),
            "contractId": sim.state.front["ES"].contract_id,
            "type": 5,
            "side": 1,
            "size": 1,
        }
        _, wrong = await client.post("/api/Order/place", {**base, "trailPrice": 5010})
        assert (wrong["success"], wrong["errorCode"]) == (False, 2)
        _, placed = await client.post("/api/Order/place", {**base, "trailPrice": 4990.25})
    order = sim.exchange.account("PX-FOLLOWER-1").orders[str(placed["orderId"])]
    assert order.order_type is OrderType.STOP and order.stop_price == Decimal("4990.25")
    sim.exchange.prices.set_price("ESZ6", Decimal("5010"))
    sim.state.follow_trailing()  # one clock step: the stop keeps its 9.75 distance below the market
    assert order.stop_price == Decimal("5000.25")
    sim.exchange.prices.set_price("ESZ6", Decimal("5005"))
    sim.state.follow_trailing()  # never back
    assert order.stop_price == Decimal("5000.25")
