"""Bad input from the broker: reported with the raw bytes, never a crashed reader or a silent drop.

The adapter's side is fuzzed sans-I/O through ``PlantConnection.receive`` (what the socket reader
calls for every binary frame); the simulator's connection handler is fuzzed over a real socket.
"""

from __future__ import annotations

import asyncio
import math
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from ci_skips import require_module
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

require_module("async_rithmic", "third-party client", "async-rithmic (install_requires in setup.cfg)")

from google.protobuf.descriptor import FieldDescriptor  # noqa: E402
from rithmic_helpers import wait_until  # noqa: E402

from copytrader.brokers.base import SessionConfig  # noqa: E402
from copytrader.brokers.model import ConnectionEvent, ConnectionState, FillEvent, PlaceOrder, Side  # noqa: E402
from copytrader.brokers.rithmic import codec, parsing  # noqa: E402
from copytrader.brokers.rithmic.adapter import RithmicAdapter  # noqa: E402
from copytrader.brokers.rithmic.fields import RAW_LIMIT  # noqa: E402
from copytrader.brokers.rithmic.simulator import RithmicSimulator, create_simulator  # noqa: E402
from copytrader.brokers.rithmic.transport import PlantConnection  # noqa: E402
from copytrader.brokers.simkernel.exchange import SimExchange  # noqa: E402

LEADER = "RITHMIC-LEADER"
FILL = 5


def _config(url: str = "ws://127.0.0.1:1") -> SessionConfig:
    return SessionConfig(
        platform="rithmic",
        session_id="bad",
        accounts={"lead": LEADER},
        endpoint=url,
        username="sim-user",
        secret="sim-pass",
        options={"system_name": "Rithmic Test", "timeout_s": 3.0, "reconnect_min_s": 0.05},
    )


class Wired:
    """An adapter whose ORDER plant reads frames handed to it (no socket)."""

    def __init__(self) -> None:
        self.adapter = RithmicAdapter(_config())
        self.events = self.adapter.events()
        self.plant = PlantConnection(
            "ws://unused",
            on_push=lambda message: self.adapter._on_push(2, message),
            on_bad_frame=lambda why, raw: self.adapter._bad_frame("ORDER", why, raw),
        )

    def drain(self) -> list[Any]:
        seen = []
        while not self.events.queue.empty():
            seen.append(self.events.queue.get_nowait())
        return seen


def _reports(events: list[Any]) -> list[str]:
    return [e.reason for e in events if isinstance(e, ConnectionEvent) and e.reason and "raw=" in e.reason]


# -- the adapter ------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_any_frame_is_read_or_reported_with_its_raw_bytes(frame: bytes) -> None:
    wired = Wired()
    wired.plant.receive(frame)  # never raises
    events = wired.drain()
    try:
        codec.decode(frame)
    except codec.FrameError:
        (report,) = _reports(events)
        raw = report.split("raw=", 1)[1]
        assert raw.startswith(frame[:RAW_LIMIT].hex())
        assert len(raw) <= 2 * RAW_LIMIT + 30  # truncated, with the frame's length after it


def _unknown_template_frames() -> st.SearchStrategy[bytes]:
    ids = st.integers(min_value=1, max_value=2**31 - 1).filter(lambda t: t not in codec.TEMPLATES)
    return ids.map(_with_template)


def _with_template(template_id: int) -> bytes:
    """A well-formed frame whose template id no one maps (a newer server's push)."""
    message = codec.build(19)
    message.template_id = template_id
    data = message.SerializeToString()
    return len(data).to_bytes(4, "big") + data


@settings(max_examples=100, deadline=None)
@given(_unknown_template_frames())
def test_fuzz_unknown_template_ids_are_reported_by_id(frame: bytes) -> None:
    wired = Wired()
    wired.plant.receive(frame)
    (report,) = _reports(wired.drain())
    assert "unknown template id" in report


_FILL_FIELDS = st.fixed_dictionaries(
    {
        "notify_type": st.just(FILL),
        "account_id": st.just(LEADER),
        "basket_id": st.text(min_size=0, max_size=6),
        "user_tag": st.text(max_size=6),
        "symbol": st.sampled_from(["ESZ6", "NQZ6", "", "??", "ZZZZ9"]),
        "transaction_type": st.integers(min_value=0, max_value=9),
        "price_type": st.integers(min_value=0, max_value=9),
        "quantity": st.integers(min_value=-(2**31), max_value=2**31 - 1),
        "fill_size": st.integers(min_value=-(2**31), max_value=2**31 - 1),
        "total_fill_size": st.integers(min_value=-(2**31), max_value=2**31 - 1),
        "total_unfilled_size": st.integers(min_value=-(2**31), max_value=2**31 - 1),
        "fill_price": st.floats(allow_nan=True, allow_infinity=True),
        "price": st.floats(allow_nan=True, allow_infinity=True),
        "fill_id": st.text(max_size=6),
        "ssboe": st.integers(min_value=-(2**31), max_value=2**31 - 1),
        "usecs": st.integers(min_value=-(2**31), max_value=2**31 - 1),
    }
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_FILL_FIELDS)
def test_fuzz_a_fill_is_emitted_or_reported_never_dropped(fields: dict[str, Any]) -> None:
    """Any 352 FILL for our account, however out of range its fields, becomes a FillEvent or a
    report carrying the raw message: never an exception, never silence."""
    wired = Wired()
    wired.plant.receive(codec.encode(codec.build(352, **fields)))
    events = wired.drain()
    fills = [e for e in events if isinstance(e, FillEvent)]
    assert fills or _reports(events)
    for fill in fills:
        assert fill.quantity > 0 and fill.price.is_finite() and fill.fill_id
        assert not math.isnan(float(fill.price))


async def test_garbage_from_the_server_is_reported_and_the_session_goes_on(sim: RithmicSimulator) -> None:
    adapter = RithmicAdapter(_config(sim.url))
    await adapter.connect()
    events = adapter.events()
    try:
        junk = [b"\x00\x00", b"\x00\x00\x00\x09abc", _with_template(99_999), b"\x7f\xff\xff\xff" + b"x" * 500]
        for session in sim.sessions:
            if session.infra_type == 2:
                for frame in junk:
                    session.outbox.put_nowait(frame)
        seen: list[Any] = []

        def drained() -> list[Any]:
            while not events.queue.empty():
                seen.append(events.queue.get_nowait())
            return seen

        await wait_until(lambda: len(_reports(drained())) == len(junk), what="one report per bad frame")
        assert adapter.state is ConnectionState.CONNECTED
        assert "raw=" in (adapter.health().last_error or "")
        sim.exchange.set_price("ESZ6", Decimal(5000))
        await adapter.place(PlaceOrder("lead", "g1", "ESZ6", Side.BUY, 1))
        await wait_until(lambda: any(isinstance(e, FillEvent) and e.client_order_id == "g1" for e in drained()))
    finally:
        await adapter.disconnect()


# -- the simulator ------------------------------------------------------------------------------


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    kinds: dict[int, st.SearchStrategy[Any]] = {
        FieldDescriptor.TYPE_INT32: st.integers(-(2**31), 2**31 - 1),
        FieldDescriptor.TYPE_INT64: st.integers(-(2**63), 2**63 - 1),
        FieldDescriptor.TYPE_UINT32: st.integers(0, 2**32 - 1),
        FieldDescriptor.TYPE_UINT64: st.integers(0, 2**64 - 1),
        FieldDescriptor.TYPE_DOUBLE: st.floats(allow_nan=True, allow_infinity=True),
        FieldDescriptor.TYPE_FLOAT: st.floats(width=32, allow_nan=True, allow_infinity=True),
        FieldDescriptor.TYPE_BOOL: st.booleans(),
        FieldDescriptor.TYPE_STRING: st.text(max_size=12),
        FieldDescriptor.TYPE_ENUM: st.integers(-5, 40),
    }
    return kinds.get(field.type, st.none())


@st.composite
def _messages(draw: st.DrawFn) -> bytes:
    """A well-formed frame of a random known template with random values in random fields."""
    template_id = draw(st.sampled_from(sorted(codec.TEMPLATES)))
    message = codec.TEMPLATES[template_id]()
    message.template_id = template_id
    fields = [f for f in message.DESCRIPTOR.fields if f.name != "template_id"]
    for field in draw(st.lists(st.sampled_from(fields), max_size=6, unique_by=lambda f: f.name)) if fields else []:
        value = draw(_scalar(field))
        if value is None:
            continue
        if field.is_repeated:
            getattr(message, field.name).append(value)
        else:
            setattr(message, field.name, value)
    data: bytes = message.SerializeToString()
    return len(data).to_bytes(4, "big") + data


_JUNK = st.one_of(st.binary(max_size=80), _messages(), _messages(), st.text(max_size=20))


async def _login(ws: aiohttp.ClientWebSocketResponse) -> None:
    fields = dict(user="sim-user", password="sim-pass", system_name="Rithmic Test", infra_type=2)
    await ws.send_bytes(codec.encode(codec.build(10, user_msg=["login"], template_version="3.9", **fields)))
    while True:
        frame = await ws.receive(timeout=5)
        message = codec.decode(frame.data)
        if codec.template_of(message) == 11:
            assert list(message.rp_code) == ["0"]
            return


async def _heartbeat_answered(ws: aiohttp.ClientWebSocketResponse) -> bool:
    """A good request after the junk is answered on the same connection (19, or 75 if the junk
    logged the session out), matched by its user_msg."""
    await ws.send_bytes(codec.encode(codec.build(18, user_msg=["after-junk"])))
    while True:
        frame = await ws.receive(timeout=5)
        if frame.type is not aiohttp.WSMsgType.BINARY:
            return False
        message = codec.decode(frame.data)
        if "user_msg" in message.DESCRIPTOR.fields_by_name and list(message.user_msg) == ["after-junk"]:
            return codec.template_of(message) in (19, 75)


async def _junk_scenario(frames: list[bytes | str], logged_in: bool) -> None:
    sim = create_simulator(SimExchange(seed=3), tick_ms=0)
    await sim.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(sim.url) as ws:
                if logged_in:
                    await _login(ws)
                for frame in frames:
                    if isinstance(frame, str):
                        await ws.send_str(frame)
                    else:
                        await ws.send_bytes(frame)
                assert await _heartbeat_answered(ws), "the connection died on junk"
            async with http.ws_connect(sim.url) as fresh:  # and the server still takes new links
                await _login(fresh)
                assert await _heartbeat_answered(fresh)
    finally:
        await sim.stop()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_JUNK, max_size=12), st.booleans())
def test_fuzz_junk_never_kills_the_simulator_or_the_connection(frames: list[bytes | str], logged_in: bool) -> None:
    asyncio.run(_junk_scenario(frames, logged_in))


@pytest.mark.parametrize("template_id", [312, 314, 316, 330, 346, 3504, 320, 324, 402])
def test_out_of_range_order_fields_are_refused_not_fatal(template_id: int) -> None:
    """NaN prices, negative and huge sizes in every order request: a refusal, the link stays up."""
    junk = {"quantity": -(2**31), "price": float("nan"), "account_id": LEADER, "symbol": "ESZ6"}
    names = codec.TEMPLATES[template_id].DESCRIPTOR.fields_by_name
    frame = codec.encode(codec.build(template_id, user_msg=["x"], **{k: v for k, v in junk.items() if k in names}))
    asyncio.run(_junk_scenario([frame, frame.replace(b"ESZ6", b"\xff\xfe\xfd\xfc")], True))


_ORDER_NUMBERS = st.fixed_dictionaries(
    {
        "quantity": st.integers(-(2**31), 2**31 - 1),
        "price": st.floats(allow_nan=True, allow_infinity=True),
        "trigger_price": st.floats(allow_nan=True, allow_infinity=True),
        "price_type": st.integers(-3, 9),
        "duration": st.integers(-3, 9),
        "transaction_type": st.integers(-3, 5),
    }
)


async def _order_scenario(orders: list[dict[str, Any]]) -> list[list[str]]:
    """Well-shaped 312s with random numbers: each gets its 313 closer, then the link still works."""
    sim = create_simulator(SimExchange(seed=3), tick_ms=0)
    await sim.start()
    answers = []
    try:
        async with aiohttp.ClientSession() as http, http.ws_connect(sim.url) as ws:
            await _login(ws)
            base = dict(account_id=LEADER, symbol="ESZ6", exchange="CME", trade_route="simulator")
            for n, numbers in enumerate(orders):
                await ws.send_bytes(codec.encode(codec.build(312, user_msg=[f"o{n}"], **base, **numbers)))
                while True:
                    message = codec.decode((await ws.receive(timeout=5)).data)
                    fields = message.DESCRIPTOR.fields_by_name
                    if "user_msg" in fields and list(message.user_msg) == [f"o{n}"] and list(message.rp_code):
                        answers.append(list(message.rp_code))
                        break
            assert await _heartbeat_answered(ws)
        for order in sim.exchange.account(LEADER).orders.values():  # what it took is a real order
            assert order.quantity > 0
            assert order.limit_price is None or (order.limit_price.is_finite() and order.limit_price > 0)
    finally:
        await sim.stop()
    return answers


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ORDER_NUMBERS, min_size=1, max_size=8))
def test_fuzz_order_numbers_out_of_range_are_refused_on_the_reply(orders: list[dict[str, Any]]) -> None:
    answers = asyncio.run(_order_scenario(orders))
    assert len(answers) == len(orders)
    for numbers, rp_code in zip(orders, answers, strict=True):
        if numbers["quantity"] <= 0 or numbers["price_type"] not in (1, 2, 3, 4):
            assert rp_code[0] != "0", (numbers, rp_code)


@pytest.mark.parametrize("average", [0.0, float("nan"), float("inf")])
async def test_resync_that_cannot_price_missed_fills_reports_them(average: float) -> None:
    """A snapshot shows fills we never reported but no usable average: a report, not silence
    and not a fill at a made-up price."""
    wired = Wired()
    adapter = wired.adapter
    fields = dict(
        notify_type=FILL,
        account_id=LEADER,
        basket_id="77",
        user_tag="t1",
        symbol="ESZ6",
        transaction_type=1,
        price_type=2,
        quantity=2,
        total_fill_size=2,
        total_unfilled_size=0,
        avg_fill_price=average,
        is_snapshot=True,
    )
    message = codec.build(352, **fields)
    order = parsing.order_event(message)
    assert order is not None

    async def orders(account: str, template_id: int) -> list[tuple[Any, Any]]:
        return [(adapter._as_ours(order), message)]

    async def positions(account: str) -> tuple[Decimal, list[Any]]:
        return Decimal(0), []

    adapter._orders = orders  # type: ignore[method-assign]  # the broker's answers, without a socket
    adapter._pnl_snapshot = positions  # type: ignore[method-assign]
    await adapter._resync()
    events = wired.drain()
    assert not [e for e in events if isinstance(e, FillEvent)]
    (report,) = _reports(events)
    assert "no avg_fill_price" in report


async def test_a_failing_handler_closes_only_its_link(sim: RithmicSimulator) -> None:
    """A request the simulator fails on may be half done, so it is not answered "not done"
    (Reject 75): that link closes, and the server serves the next connection."""

    async def broken(session: Any, request: Any) -> None:
        raise RuntimeError("simulator bug")

    sim.handlers[302] = broken
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(sim.url) as ws:
            await _login(ws)
            await ws.send_bytes(codec.encode(codec.build(302, user_msg=["accounts"])))
            while (frame := await ws.receive(timeout=5)).type is aiohttp.WSMsgType.BINARY:
                assert list(getattr(codec.decode(frame.data), "user_msg", [])) != ["accounts"]
            assert frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
        async with http.ws_connect(sim.url) as fresh:
            await _login(fresh)
            assert await _heartbeat_answered(fresh)
