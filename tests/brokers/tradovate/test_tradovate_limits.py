"""Request limits on their own (no fault switch): endpoint penalty tickets, the 10/min auth
limit per subnet, per-user 429 windows, captcha, and what the transport may resend."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from tradovate_helpers import session_config

from copytrader.brokers.deadline import copy_deadline
from copytrader.brokers.errors import AuthenticationFailed, BrokerUnavailable, RateLimited
from copytrader.brokers.model import PlaceOrder, Side
from copytrader.brokers.ratebudget import RateBudget
from copytrader.brokers.simkernel.logins import SimLogin
from copytrader.brokers.tradovate.adapter import TradovateAdapter
from copytrader.brokers.tradovate.config import TradovateConfig
from copytrader.brokers.tradovate.simulator import TradovateSimulator, create_simulator
from copytrader.brokers.tradovate.transport import RestClient

ACCT = "DEMO1001"
LOGIN_FIELDS = ("name", "password", "appId", "appVersion", "cid", "sec", "deviceId")


async def started(**options: Any) -> TradovateSimulator:
    simulator = create_simulator(tick_ms=20, **options)
    await simulator.start()
    return simulator


def login_body(sim: TradovateSimulator, name: str | None = None) -> dict[str, Any]:
    creds = sim.credentials_for(name) if name else sim.demo_credentials()
    return {k: creds[k] for k in LOGIN_FIELDS}


def kernel_orders(sim: TradovateSimulator, prefix: str, account: str = ACCT) -> list[str]:
    return [
        o.client_order_id or ""
        for o in sim.exchange.account(account).orders.values()
        if (o.client_order_id or "").startswith(prefix)
    ]


async def test_auth_limit_answers_a_penalty_ticket_that_a_resend_with_the_ticket_clears() -> None:
    sim = await started(penalty_seconds=1)
    try:
        async with aiohttp.ClientSession() as http:
            url = f"{sim.base_url}/auth/accesstokenrequest"
            for _ in range(10):  # docs: authentication 10 requests/minute
                assert "accessToken" in await (await http.post(url, json=login_body(sim))).json()
            penalty = await (await http.post(url, json=login_body(sim))).json()
            assert set(penalty) == {"p-ticket", "p-time", "p-captcha"} and penalty["p-time"] == 1
            early = await (await http.post(url, json={**login_body(sim), "p-ticket": penalty["p-ticket"]})).json()
            assert early["p-ticket"] == penalty["p-ticket"]  # resent before p-time: wait again
            await asyncio.sleep(float(early["p-time"]))  # the protocol itself says: wait p-time
            cleared = await (await http.post(url, json={**login_body(sim), "p-ticket": penalty["p-ticket"]})).json()
            assert cleared["accessToken"]
    finally:
        await sim.stop()


@pytest.mark.parametrize("scope, penalised", [("subnet", True), ("user", False)])
async def test_penalty_windows_are_per_subnet_by_default(scope: str, penalised: bool) -> None:
    logins = [SimLogin("firm-a", "pw-a", ("A-1",)), SimLogin("firm-b", "pw-b", ("B-1",))]
    sim = await started(logins=logins, penalty_scope=scope)
    try:
        async with aiohttp.ClientSession() as http:
            url = f"{sim.base_url}/auth/accesstokenrequest"
            for _ in range(10):
                await http.post(url, json=login_body(sim, "firm-a"))
            answer = await (await http.post(url, json=login_body(sim, "firm-b"))).json()
            assert ("p-ticket" in answer) is penalised and ("accessToken" in answer) is not penalised
    finally:
        await sim.stop()


async def test_order_penalties_are_waited_out_and_every_order_placed_once() -> None:
    sim = await started(penalty_seconds=1)
    adapter = TradovateAdapter(session_config(sim))
    try:
        await adapter.connect()
        sim.limits.set_endpoint_limit("order", (2, 60.0))
        commands = [PlaceOrder("f1", f"pt-{n}", "ESZ6", Side.BUY, 1) for n in range(4)]
        acks = await asyncio.gather(*(adapter.place(c) for c in commands))
        assert len({a.broker_order_id for a in acks}) == 4
        assert sorted(kernel_orders(sim, "pt-")) == [f"pt-{n}" for n in range(4)]
        assert sim.limits.penalties == 2
        resent = [b for ep, b in sim.api.calls if ep == "order/placeorder" and "p-ticket" in b]
        assert len(resent) == 2
    finally:
        await adapter.disconnect()
        await sim.stop()


async def test_penalty_longer_than_the_copy_deadline_is_reported_not_executed() -> None:
    sim = await started(penalty_seconds=5)
    adapter = TradovateAdapter(session_config(sim))
    try:
        await adapter.connect()
        sim.limits.set_endpoint_limit("order", (1, 60.0))
        await adapter.place(PlaceOrder("f1", "dl-0", "ESZ6", Side.BUY, 1))
        with copy_deadline(1.0), pytest.raises(RateLimited) as info:
            await adapter.place(PlaceOrder("f1", "dl-1", "ESZ6", Side.BUY, 1))
        assert info.value.code == "p-ticket" and info.value.retry_after == 5
        assert kernel_orders(sim, "dl-") == ["dl-0"]  # the refused one never ran
    finally:
        await adapter.disconnect()
        await sim.stop()


async def test_captcha_penalty_stops_with_a_clear_authentication_failure() -> None:
    sim = await started(captcha_after=0, endpoint_limits={"auth": [[1, 60]]})
    first = TradovateAdapter(session_config(sim))
    second = TradovateAdapter(session_config(sim))
    try:
        await first.connect()
        with pytest.raises(AuthenticationFailed, match="captcha") as info:
            await second.connect()
        assert info.value.code == "p-captcha" and info.value.retriable is False
    finally:
        await first.disconnect()
        await second.disconnect()
        await sim.stop()


async def test_user_windows_answer_429_per_user() -> None:
    logins = [SimLogin("firm-a", "pw-a", ("A-1",)), SimLogin("firm-b", "pw-b", ("B-1",))]
    sim = await started(logins=logins, rate_limits=[[4, 60]])
    configs = [session_config(sim, password=p) for p in ("pw-a", "pw-b")]
    a = TradovateAdapter(replace(configs[0], username="firm-a", accounts={"f1": "A-1"}))
    b = TradovateAdapter(
        replace(
            configs[1],
            username="firm-b",
            accounts={"f1": "B-1"},
            options={**configs[1].options, "deviceId": sim.credentials_for("firm-b")["deviceId"]},
        )
    )
    try:
        await a.connect()  # token + account/list + syncrequest: 3 of firm-a's 4
        await a.place(PlaceOrder("f1", "u-1", "ESZ6", Side.BUY, 1))
        with pytest.raises(RateLimited) as info:
            await a.place(PlaceOrder("f1", "u-2", "ESZ6", Side.BUY, 1))
        assert info.value.code == "429" and info.value.retry_after == 3600
        await b.connect()  # firm-b's own window is untouched
        await b.place(PlaceOrder("f1", "u-3", "ESZ6", Side.BUY, 1))
        assert kernel_orders(sim, "u-", "A-1") == ["u-1"] and kernel_orders(sim, "u-", "B-1") == ["u-3"]
    finally:
        await a.disconnect()
        await b.disconnect()
        await sim.stop()


async def test_an_order_whose_answer_is_lost_is_not_resent(adapter: TradovateAdapter, sim: TradovateSimulator) -> None:
    sim.faults(ACCT).ack_delay_ms = 1500
    assert adapter.rest is not None
    with copy_deadline(0.5), pytest.raises(BrokerUnavailable) as info:
        await adapter.place(PlaceOrder("f1", "lost-1", "ESZ6", Side.BUY, 1))
    assert info.value.sent is True  # it may exist: the caller looks it up, never resends blindly
    assert [ep for ep, _ in sim.api.calls].count("order/placeorder") == 1
    assert kernel_orders(sim, "lost-") == ["lost-1"]


async def test_a_refused_connection_is_reported_as_unsent() -> None:
    config = TradovateConfig(
        rest_url="http://127.0.0.1:9/v1", ws_url="ws://127.0.0.1:9/v1/websocket", name="n", password="p", max_attempts=2
    )
    async with aiohttp.ClientSession() as http:
        rest = RestClient(config, http, RateBudget([(100, 1.0)]))
        rest.token = "t"
        with pytest.raises(BrokerUnavailable) as info:
            await rest._request("account/list", None, method="GET", token="t", priority=0, read=True)  # type: ignore[arg-type]  # Priority is an IntEnum
        assert info.value.sent is False
