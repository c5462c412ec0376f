"""Bad input from a DTC server: every malformed frame, unknown type or out-of-range value becomes
a clear error event with its raw bytes (truncated); nothing crashes and no fill goes unreported.
And the simulator's connection handler survives any bytes a client sends."""

from __future__ import annotations

import asyncio
import math
import struct
from collections.abc import AsyncIterator

import pytest
from adapter_helpers import Recorder, frozen
from dtc_client import DtcClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scripted_server import ACCOUNT, ScriptedServer

from copytrader.brokers.base import SessionConfig
from copytrader.brokers.dtc.adapter import DtcAdapter
from copytrader.brokers.dtc.codec import DecodeError, Message, StreamDecoder, encode, make
from copytrader.brokers.dtc.messages import MESSAGES, Encoding, MsgType, OrderUpdateReason
from copytrader.brokers.dtc.orders import UnreadableAnswer
from copytrader.brokers.dtc.simulator import create_simulator
from copytrader.brokers.errors import BrokerUnavailable
from copytrader.brokers.model import ConnectionEvent, ConnectionState, FillEvent, PlaceOrder, Side

FILLED = int(OrderUpdateReason.ORDER_FILLED)


def config(endpoint: str, encoding: Encoding) -> SessionConfig:
    return SessionConfig(
        platform="dtc",
        session_id="bad-input",
        accounts={"A": ACCOUNT},
        endpoint=endpoint,
        username="u",
        secret="p",
        options={"encoding": encoding.name.lower(), "reconnect_min_s": 0.02, "reconnect_max_s": 0.1},
    )


def good_fill(execution_id: str, **values: object) -> Message:
    fields: dict[str, object] = {
        "Symbol": "ESZ6",
        "ServerOrderID": "7",
        "ClientOrderID": "c7",
        "TradeAccount": ACCOUNT,
        "OrderStatus": 7,
        "OrderUpdateReason": FILLED,
        "OrderType": 1,
        "BuySell": 1,
        "OrderQuantity": 1.0,
        "FilledQuantity": 1.0,
        "RemainingQuantity": 0.0,
        "LastFillPrice": 5000.25,
        "LastFillQuantity": 1.0,
        "LastFillExecutionID": execution_id,
    }
    fields.update(values)
    return make(MsgType.ORDER_UPDATE, **fields)  # type: ignore[arg-type]  # field values


def is_error(event: object) -> bool:
    return isinstance(event, ConnectionEvent) and "raw[:64]=" in (event.reason or "")


@pytest.fixture
async def scripted() -> AsyncIterator[ScriptedServer]:
    server = await ScriptedServer().start()
    try:
        yield server
    finally:
        await server.stop()


GARBAGE = {
    Encoding.BINARY: [
        (struct.pack("<HH", 8, 9999) + b"\x01\x02\x03\x04", "unknown_type", "08000f27"),
        (encode(good_fill("x", OrderStatus=99), Encoding.BINARY), "order status 99", "b002"),
        (encode(good_fill("y", LastFillQuantity=1.5, FilledQuantity=1.5), Encoding.BINARY), "1.5", "b002"),
        (encode(good_fill("z", LastFillPrice=math.inf), Encoding.BINARY), "without a fill price", "b002"),
    ],
    Encoding.JSON: [
        (b'{"Type": 301, "OrderStatus": \0', "bad_json", "7b2254797065"),
        (b'{"Type": 9999}\0', "unknown_type", "7b2254797065"),
        (b'{"Type": 301, "TradeAccount": "SCRIPTED-1", "OrderStatus": "open"}\0', "bad_field", "7b2254797065"),
        (encode(good_fill("x", OrderStatus=99), Encoding.JSON), "order status 99", "7b2254797065"),
    ],
}


@pytest.mark.parametrize("encoding", [Encoding.BINARY, Encoding.JSON], ids=["binary", "json"])
async def test_bad_frames_are_error_events_with_raw_bytes_and_the_next_fill_arrives(
    scripted: ScriptedServer, encoding: Encoding
) -> None:
    adapter = DtcAdapter(config(scripted.endpoint, encoding))
    events = Recorder(adapter.events())
    await adapter.connect()
    try:
        for raw, says, starts in GARBAGE[encoding]:
            scripted.send_raw(raw)
            error = await events.expect(lambda e, says=says: is_error(e) and says in (e.reason or ""))  # type: ignore[attr-defined]  # ConnectionEvent
            assert f"raw[:64]={starts}" in (error.reason or "")  # type: ignore[union-attr]  # ConnectionEvent
        # An unreadable order state does not cost the fill it came with: "x" was still reported.
        await events.expect(lambda e: isinstance(e, FillEvent) and e.fill_id == "x")
        scripted.send(good_fill("good-1"))
        fill = await events.expect(lambda e: isinstance(e, FillEvent) and e.fill_id == "good-1")
        assert isinstance(fill, FillEvent) and fill.client_order_id == "c7"
        assert adapter.state is ConnectionState.CONNECTED and "raw[:64]=" in (adapter.health().last_error or "")
    finally:
        await adapter.disconnect()


async def test_a_broken_stream_is_reported_then_the_session_reconnects(scripted: ScriptedServer) -> None:
    adapter = DtcAdapter(config(scripted.endpoint, Encoding.BINARY))
    events = Recorder(adapter.events())
    await adapter.connect()
    await events.expect(lambda e: isinstance(e, ConnectionEvent) and e.state is ConnectionState.CONNECTED)
    try:
        scripted.send_raw(struct.pack("<HH", 2, 301) + b"junk")  # Size below the header: framing is lost
        error = await events.expect(is_error)
        assert "cannot be read further" in (error.reason or "")  # type: ignore[union-attr]  # ConnectionEvent
        await events.expect(lambda e: isinstance(e, ConnectionEvent) and e.state is ConnectionState.DEGRADED)
        await events.expect(lambda e: isinstance(e, ConnectionEvent) and e.state is ConnectionState.CONNECTED)
        assert len(scripted.connections) == 2
        scripted.send(good_fill("after"))
        await events.expect(lambda e: isinstance(e, FillEvent) and e.fill_id == "after")
    finally:
        await adapter.disconnect()


async def test_a_server_without_fill_history_still_connects_and_lookup_cannot_tell(scripted: ScriptedServer) -> None:
    scripted.refuse.add(MsgType.HISTORICAL_ORDER_FILLS_REQUEST)
    adapter = DtcAdapter(config(scripted.endpoint, Encoding.BINARY))
    events = Recorder(adapter.events())
    await adapter.connect()
    try:
        refused = await events.expect(lambda e: isinstance(e, ConnectionEvent) and "no history" in (e.reason or ""))
        assert "fill history" in (refused.reason or "")  # type: ignore[union-attr]  # ConnectionEvent
        with pytest.raises(BrokerUnavailable, match="cannot tell"):
            await adapter.lookup("A", "anything")
    finally:
        await adapter.disconnect()


async def test_an_unreadable_answer_is_a_bad_answer_with_its_raw_bytes(scripted: ScriptedServer) -> None:
    adapter = DtcAdapter(config(scripted.endpoint, Encoding.BINARY))
    await adapter.connect()
    try:
        scripted.order_answer = {"OrderUpdateReason": 2, "OrderStatus": 99, "ServerOrderID": "9"}
        with pytest.raises(UnreadableAnswer) as failure:
            await adapter.place(PlaceOrder("A", "q1", "ESZ6", Side.BUY, 1))
        assert failure.value.code == "BAD_ANSWER" and not failure.value.retriable
        assert failure.value.raw.startswith("b0022d01")  # Size 688, Type 301: what the executor shows
        scripted.order_answer = {"OrderUpdateReason": 2, "OrderStatus": 4, "ServerOrderID": ""}
        with pytest.raises(UnreadableAnswer, match="without a ServerOrderID"):
            await adapter.place(PlaceOrder("A", "q2", "ESZ6", Side.BUY, 1))
    finally:
        await adapter.disconnect()


# -- the adapter's read path, fuzzed (codec → adapter handlers, no socket) ----------------------
def feed(adapter: DtcAdapter, data: bytes, encoding: Encoding) -> int:
    """Run ``data`` through the decoder into the adapter's handlers; returns the errors decoded."""
    decoder = StreamDecoder(encoding, exact_size=False)
    decoder.feed(data)
    errors = 0
    for item in decoder:
        if isinstance(item, DecodeError):
            errors += 1
            adapter._on_decode_error(item)
        else:
            adapter._on_message(item)
    return errors


def offline_adapter(encoding: Encoding) -> tuple[DtcAdapter, Recorder]:
    adapter = DtcAdapter(config("127.0.0.1:1", encoding))
    return adapter, Recorder(adapter.events())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=1500), st.sampled_from([Encoding.BINARY, Encoding.JSON]))
def test_any_bytes_through_the_read_path_never_raise(data: bytes, encoding: Encoding) -> None:
    adapter, events = offline_adapter(encoding)
    errors = feed(adapter, data, encoding)
    assert len([e for e in events.drain() if is_error(e)]) >= errors


@st.composite
def framed(draw: st.DrawFn) -> bytes:
    """A frame of a known type and the right size whose body is arbitrary bytes: every field
    takes any value its width allows (out-of-range enums, NaN, huge times, broken UTF-8)."""
    spec = draw(st.sampled_from(list(MESSAGES.values())))
    return struct.pack("<HH", spec.size, int(spec.type)) + draw(
        st.binary(min_size=spec.size - 4, max_size=spec.size - 4)
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(framed(), min_size=1, max_size=8))
def test_any_field_values_never_raise(frames: list[bytes]) -> None:
    adapter, _ = offline_adapter(Encoding.BINARY)
    feed(adapter, b"".join(frames), Encoding.BINARY)


finite_or_not = st.floats(allow_nan=True, allow_infinity=True)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "OrderStatus": st.integers(-3, 14),
            "OrderType": st.integers(-1, 8),
            "BuySell": st.integers(-1, 3),
            "LastFillPrice": finite_or_not,
            "LastFillQuantity": finite_or_not,
            "FilledQuantity": finite_or_not,
            "RemainingQuantity": finite_or_not,
            "OrderQuantity": finite_or_not,
            "LastFillDateTime": st.integers(-(2**63), 2**63 - 1),
            "LastFillExecutionID": st.text(max_size=15),
        }
    ),
    st.sampled_from([Encoding.BINARY, Encoding.JSON]),
)
def test_a_fill_update_is_never_dropped_silently(values: dict[str, object], encoding: Encoding) -> None:
    """Each fill update for our account is a FillEvent or an error event, whatever its values."""
    adapter, events = offline_adapter(encoding)
    feed(adapter, encode(good_fill("unused", **values), encoding), encoding)
    seen = events.drain()
    assert any(isinstance(e, FillEvent) for e in seen) or any(is_error(e) for e in seen), seen


# -- the simulator's connection handler, fuzzed ---------------------------------------------------
async def _garbage_then_a_good_client(data: bytes, logon_first: bool, encoding: Encoding) -> None:
    simulator = create_simulator(exchange=frozen())
    await simulator.start()
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", simulator.port)
        if logon_first:
            writer.write(encode(make(MsgType.LOGON_REQUEST, Username="sim-trader", Password="sim"), Encoding.BINARY))
        writer.write(data)
        await writer.drain()
        writer.close()
        client = await DtcClient.connect(simulator.port, encoding)
        try:
            assert (await client.logon())["Result"] == 1
            client.send(
                make(
                    MsgType.SUBMIT_NEW_SINGLE_ORDER,
                    Symbol="ESZ6",
                    TradeAccount="DTC-LEADER",
                    ClientOrderID="after-garbage",
                    OrderType=1,
                    BuySell=1,
                    Quantity=1.0,
                    TimeInForce=1,
                )
            )
            await client.expect_type(MsgType.ORDER_UPDATE, ClientOrderID="after-garbage", OrderUpdateReason=FILLED)
        finally:
            await client.close()
    finally:
        await simulator.stop()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(st.binary(max_size=2000), st.lists(framed(), max_size=6).map(b"".join)),
    st.booleans(),
    st.sampled_from([Encoding.BINARY, Encoding.JSON]),
)
def test_garbage_never_kills_the_simulator(data: bytes, logon_first: bool, encoding: Encoding) -> None:
    asyncio.run(_garbage_then_a_good_client(data, logon_first, encoding))
