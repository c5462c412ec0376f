"""The simulator's R|Protocol on the wire, frame by frame (no client library in between)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from ci_skips import require_module

require_module("async_rithmic", "third-party client", "async-rithmic (install_requires in setup.cfg)")

from rithmic_helpers import wait_until  # noqa: E402

from copytrader.brokers.rithmic import codec  # noqa: E402
from copytrader.brokers.rithmic.simulator import RithmicSimulator, create_simulator  # noqa: E402
from copytrader.brokers.simkernel.exchange import SimExchange  # noqa: E402
from copytrader.brokers.simkernel.logins import SimLogin  # noqa: E402

LEADER = "RITHMIC-LEADER"


class Raw:
    """One WebSocket to the simulator, speaking frames."""

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.http, self.ws = http, ws

    async def send(self, template_id: int, **fields: Any) -> None:
        await self.ws.send_bytes(codec.encode(codec.build(template_id, **fields)))

    async def recv(self) -> Any:
        frame = await self.ws.receive(timeout=5)
        assert frame.type is aiohttp.WSMsgType.BINARY, frame
        return codec.decode(frame.data)

    async def reply(self, template_id: int, tag: str, **fields: Any) -> list[Any]:
        """Send a request with ``user_msg [tag]``; collect its reply up to the rp_code message."""
        await self.send(template_id, user_msg=[tag], **fields)
        got = []
        while True:
            message = await self.recv()
            if "user_msg" in message.DESCRIPTOR.fields_by_name and list(message.user_msg) == [tag]:
                got.append(message)
                if list(message.rp_code):
                    return got

    async def login(self, user: str = "sim-user", password: str = "sim-pass", infra_type: int = 2) -> Any:
        (answer,) = await self.reply(
            10,
            "login",
            user=user,
            password=password,
            system_name="Rithmic Test",
            infra_type=infra_type,
            template_version="3.9",
        )
        return answer


@pytest.fixture
async def raw(sim: RithmicSimulator) -> AsyncIterator[Any]:
    async def open_() -> Raw:
        http = aiohttp.ClientSession()
        opened.append(http)
        return Raw(http, await http.ws_connect(sim.url))

    opened: list[aiohttp.ClientSession] = []
    yield open_
    for http in opened:
        await http.close()


async def test_system_info_names_the_system(raw: Any) -> None:
    link = await raw()
    (info,) = await link.reply(16, "si")
    assert codec.template_of(info) == 17 and list(info.rp_code) == ["0"]
    assert list(info.system_name) == ["Rithmic Test"]


async def test_requests_before_login_get_reject_1034_with_user_msg(raw: Any) -> None:
    link = await raw()
    (reject,) = await link.reply(302, "early")
    assert codec.template_of(reject) == 75
    assert list(reject.rp_code) == ["1034", "invalid operation before login."]


async def test_bad_credentials_and_wrong_plant_are_refused_on_11(raw: Any) -> None:
    link = await raw()
    answer = await link.login(password="nope")
    assert codec.template_of(answer) == 11 and list(answer.rp_code) == ["13", "permission denied"]
    answer = await link.login(infra_type=1)  # ticker plant: not simulated
    assert list(answer.rp_code)[0] == "13"
    answer = await link.login()
    assert list(answer.rp_code) == ["0"]
    assert (answer.fcm_id, answer.ib_id, answer.heartbeat_interval) == ("SIMFCM", "SIMIB", 60)
    assert answer.template_version == "3.9"  # an old template version is accepted (async-rithmic sends 3.9)


async def test_malformed_frames_get_reject_75_and_the_link_survives(raw: Any) -> None:
    link = await raw()
    body = codec.build(18).SerializeToString()
    await link.ws.send_bytes(body)  # no length prefix
    reject = await link.recv()
    assert codec.template_of(reject) == 75 and "message length is invalid" in list(reject.rp_code)[1]
    await link.ws.send_str("hello")  # text frames are not R|Protocol
    assert codec.template_of(await link.recv()) == 75
    unknown = codec.build(18)
    unknown.template_id = 358
    await link.ws.send_bytes(codec.encode(unknown))
    reject = await link.recv()
    assert codec.template_of(reject) == 75 and "358" in list(reject.rp_code)[1]
    (info,) = await link.reply(16, "still-up")
    assert list(info.rp_code) == ["0"]


async def test_account_list_is_parts_then_an_empty_closer(raw: Any) -> None:
    link = await raw()
    await link.login()
    messages = await link.reply(302, "acc", fcm_id="SIMFCM", ib_id="SIMIB")
    *parts, closer = messages
    assert [p.account_id for p in parts] == ["RITHMIC-LEADER", "RITHMIC-FOLLOWER-1"]
    assert all(list(p.rq_handler_rp_code) == ["0"] and not list(p.rp_code) for p in parts)
    assert list(closer.rp_code) == ["0"] and closer.account_id == ""
    routes = await link.reply(310, "routes", subscribe_for_updates=True)
    assert {r.exchange for r in routes[:-1]} == {"CME", "CBOT", "NYMEX", "COMEX"}
    assert all(r.trade_route == "simulator" for r in routes[:-1])


async def test_order_refusals_are_rp_code_pairs_on_the_reply(raw: Any, sim: RithmicSimulator) -> None:
    link = await raw()
    await link.login()
    order = dict(account_id=LEADER, symbol="ESZ6", quantity=1, transaction_type=1, duration=1, trade_route="simulator")
    (answer,) = await link.reply(312, "cbot", exchange="CBOT", price_type=2, **order)
    assert list(answer.rp_code)[0] == "3" and "not traded on CBOT" in list(answer.rp_code)[1]
    (answer,) = await link.reply(312, "noprice", exchange="CME", price_type=1, **order)
    assert "price is required" in list(answer.rp_code)[1]
    (answer,) = await link.reply(312, "route", exchange="CME", price_type=2, **{**order, "trade_route": "x"})
    assert "invalid trade route" in list(answer.rp_code)[1]
    (answer,) = await link.reply(312, "mit", exchange="CME", price_type=5, **order)  # if-touched: not simulated
    assert "not supported" in list(answer.rp_code)[1]
    (answer,) = await link.reply(316, "cancel", account_id=LEADER, basket_id="424242")
    assert codec.template_of(answer) == 317 and "unknown basket_id" in list(answer.rp_code)[1]
    assert sim.exchange.account(LEADER).orders == {}


async def test_new_order_reply_is_basket_part_then_closer_before_pushes(raw: Any, sim: RithmicSimulator) -> None:
    link = await raw()
    await link.login()
    (subscribed,) = await link.reply(308, "sub", account_id=LEADER)
    assert list(subscribed.rp_code) == ["0"]
    sim.exchange.set_price("ESZ6", Decimal(5000))
    order = dict(account_id=LEADER, symbol="ESZ6", exchange="CME", quantity=1, transaction_type=1, duration=1)
    await link.send(312, user_msg=["n1"], user_tag="tag", price_type=2, trade_route="simulator", **order)
    first, second = await link.recv(), await link.recv()
    assert codec.template_of(first) == 313 and list(first.rq_handler_rp_code) == ["0"] and first.basket_id
    assert first.user_tag == "tag"
    assert codec.template_of(second) == 313 and list(second.rp_code) == ["0"]
    pushes = [await link.recv() for _ in range(5)]  # 351 received, 352 status, 351 open, 352 fill, 351 complete
    assert [(codec.template_of(m), m.notify_type) for m in pushes] == [
        (351, 1),
        (352, 1),
        (351, 13),
        (352, 5),
        (351, 15),
    ]
    assert all(m.basket_id == first.basket_id and m.user_tag == "tag" for m in pushes)


async def test_repeated_user_tag_is_a_second_order(raw: Any, sim: RithmicSimulator) -> None:
    link = await raw()
    await link.login()
    order = dict(account_id=LEADER, symbol="ESZ6", exchange="CME", quantity=1, transaction_type=1, duration=2)
    baskets = []
    for n in range(2):
        replies = await link.reply(
            312, f"dup{n}", user_tag="same", price_type=1, price=4000.0, trade_route="simulator", **order
        )
        baskets.append(replies[0].basket_id)
    assert baskets[0] != baskets[1]
    assert len(sim.exchange.orders_with_client_id(LEADER, "same")) == 2


async def test_another_logins_account_is_permission_denied() -> None:
    logins = [SimLogin("alice", "pa", ("A-1",)), SimLogin("bob", "pb", ("B-1",))]
    async with create_simulator(SimExchange(seed=3), tick_ms=0, logins=logins) as sim, aiohttp.ClientSession() as http:
        link = Raw(http, await http.ws_connect(sim.url))
        await link.login("alice", "pa")
        (answer,) = await link.reply(308, "sub", account_id="B-1")
        assert list(answer.rp_code)[0] == "13"
        accounts = await link.reply(302, "acc")
        assert [a.account_id for a in accounts[:-1]] == ["A-1"]
        order = dict(symbol="ESZ6", exchange="CME", quantity=1, transaction_type=1, duration=1, price_type=2)
        (answer,) = await link.reply(312, "steal", account_id="B-1", trade_route="simulator", **order)
        assert list(answer.rp_code)[0] == "13"
        assert sim.exchange.account("B-1").orders == {}


async def test_logout_ends_the_login(raw: Any) -> None:
    link = await raw()
    await link.login()
    (bye,) = await link.reply(12, "bye")
    assert codec.template_of(bye) == 13 and list(bye.rp_code) == ["0"]
    (reject,) = await link.reply(302, "after")
    assert codec.template_of(reject) == 75 and list(reject.rp_code)[0] == "1034"


async def test_drop_fault_closes_the_accounts_sessions(raw: Any, sim: RithmicSimulator) -> None:
    link = await raw()
    await link.login()
    sim.faults(LEADER).drop_connection = True
    frame = await link.ws.receive(timeout=5)
    assert frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_silent_session_is_closed_after_twice_the_heartbeat_interval() -> None:
    async with (
        create_simulator(SimExchange(seed=3), tick_ms=0, heartbeat_interval=0.3) as sim,
        aiohttp.ClientSession() as http,
    ):
        link = Raw(http, await http.ws_connect(sim.url))
        await link.login()
        for n in range(4):  # heartbeats every 0.2 s keep it open past 0.6 s
            (beat,) = await link.reply(18, f"hb{n}")
            assert codec.template_of(beat) == 19
            await asyncio.sleep(0.2)  # pacing the client's heartbeats, not gating an assertion
        frame = await link.ws.receive(timeout=5)
        assert frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        await wait_until(lambda: not sim.sessions, what="session dropped")


async def test_each_plant_answers_only_its_templates(raw: Any) -> None:
    pnl = await raw()
    assert list((await pnl.login(infra_type=4)).rp_code) == ["0"]
    (answer,) = await pnl.reply(402, "snap", account_id=LEADER)
    assert codec.template_of(answer) == 403 and list(answer.rp_code) == ["0"]  # after the 451 snapshot
    (reject,) = await pnl.reply(302, "accounts-on-pnl")
    assert codec.template_of(reject) == 75 and "302" in list(reject.rp_code)[1]
    order = await raw()
    await order.login()
    (reject,) = await order.reply(402, "pnl-on-order", account_id=LEADER)
    assert codec.template_of(reject) == 75
