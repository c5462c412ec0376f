"""The DTC client connection (transport) against the simulator and against scripted servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from dtc_client import FAST

from copytrader.brokers.dtc.codec import Message, StreamDecoder, encode, make
from copytrader.brokers.dtc.messages import BuySell, Encoding, MsgType, OrderType, OrderUpdateReason
from copytrader.brokers.dtc.simulator import DtcSimulator
from copytrader.brokers.dtc.transport import DtcConnection, DtcEndpoint, logon_error
from copytrader.brokers.errors import AuthenticationFailed, BrokerUnavailable


def endpoint(port: int, encoding: Encoding = Encoding.BINARY, **values: object) -> DtcEndpoint:
    return DtcEndpoint("127.0.0.1", port, "sim-trader", "sim", encoding, **values)  # type: ignore[arg-type]  # test options


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


async def test_open_logs_on_and_delivers_order_updates(sim: DtcSimulator, encoding: Encoding) -> None:
    received: list[Message] = []
    connection = await DtcConnection.open(endpoint(sim.port, encoding), received.append)
    try:
        assert connection.encoding is encoding and connection.flag("TradingIsSupported")
        assert connection.flag("OCOOrdersSupported") and not connection.flag("MarketDataSupported")
        connection.send(
            make(
                MsgType.SUBMIT_NEW_SINGLE_ORDER,
                Symbol="ESZ6",
                TradeAccount="DTC-LEADER",
                ClientOrderID="t1",
                OrderType=int(OrderType.MARKET),
                BuySell=int(BuySell.BUY),
                Quantity=1.0,
                TimeInForce=1,
            )
        )
        await until(lambda: any(m["OrderUpdateReason"] == OrderUpdateReason.ORDER_FILLED for m in received))
        assert received[0]["ClientOrderID"] == "t1"
    finally:
        await connection.close()
    assert connection.closed.is_set() and connection.close_reason == "client logoff"


async def test_bad_credentials_raise_authentication_failed(sim: DtcSimulator) -> None:
    bad = DtcEndpoint("127.0.0.1", sim.port, "sim-trader", "wrong")
    with pytest.raises(AuthenticationFailed) as failure:
        await DtcConnection.open(bad, lambda _: None)
    assert failure.value.code == "LOGON_ERROR" and not failure.value.retriable


def test_logon_results_map_to_errors() -> None:
    no_reconnect = logon_error(make(MsgType.LOGON_RESPONSE, Result=3, ResultText="disabled"))
    assert isinstance(no_reconnect, AuthenticationFailed) and no_reconnect.code == "LOGON_ERROR_NO_RECONNECT"
    moved = logon_error(make(MsgType.LOGON_RESPONSE, Result=4, ReconnectAddress="10.0.0.2:11099"))
    assert isinstance(moved, BrokerUnavailable) and moved.retriable and "10.0.0.2:11099" in moved.message


async def test_connection_refused_is_unavailable_and_not_sent() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(BrokerUnavailable) as failure:
        await DtcConnection.open(endpoint(port), lambda _: None)
    assert failure.value.sent is False


async def test_heartbeats_keep_both_sides_alive(sim: DtcSimulator) -> None:
    sim.time_scale = FAST
    connection = await DtcConnection.open(endpoint(sim.port, heartbeat_s=5, time_scale=FAST), lambda _: None)
    try:
        await until(lambda: connection.heartbeats_received >= 4)  # 4 intervals: twice the timeout
        assert not connection.closed.is_set() and len(sim.sessions) == 1
    finally:
        await connection.close()


async def test_server_logoff_is_recorded_with_do_not_reconnect(sim: DtcSimulator) -> None:
    connection = await DtcConnection.open(endpoint(sim.port), lambda _: None)
    (session,) = sim.sessions
    sim.logoff(session, "account disabled", do_not_reconnect=True)
    await asyncio.wait_for(connection.closed.wait(), 5)
    assert connection.do_not_reconnect and "account disabled" in str(connection.close_reason)
    await connection.close()


Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def scripted() -> AsyncIterator[Callable[[Script], Awaitable[int]]]:
    servers: list[asyncio.Server] = []

    async def serve(script: Script) -> int:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await script(reader, writer)
            finally:
                writer.close()

        server = await asyncio.start_server(run, "127.0.0.1", 0)
        servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    yield serve
    for server in servers:
        server.close()
        await server.wait_closed()


async def read_message(reader: asyncio.StreamReader, decoder: StreamDecoder) -> Message:
    while (item := decoder.next()) is None:
        decoder.feed(await reader.read(65536))
    assert isinstance(item, Message)
    return item


async def test_a_silent_server_is_given_up_after_two_intervals(scripted: Callable[[Script], Awaitable[int]]) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = StreamDecoder()
        await read_message(reader, decoder)
        writer.write(encode(make(MsgType.ENCODING_RESPONSE), Encoding.BINARY))
        await read_message(reader, decoder)
        writer.write(encode(make(MsgType.LOGON_RESPONSE, Result=1, TradingIsSupported=1), Encoding.BINARY))
        await reader.read()  # then never a heartbeat

    port = await scripted(silent)
    connection = await DtcConnection.open(endpoint(port, heartbeat_s=5, time_scale=FAST), lambda _: None)
    await asyncio.wait_for(connection.closed.wait(), 5)
    assert "heartbeat timeout" in str(connection.close_reason)
    await connection.close()


async def test_an_unimplemented_granted_encoding_is_refused(scripted: Callable[[Script], Awaitable[int]]) -> None:
    async def protobuf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_message(reader, StreamDecoder())
        writer.write(encode(make(MsgType.ENCODING_RESPONSE, Encoding=int(Encoding.PROTOCOL_BUFFERS)), Encoding.BINARY))
        await reader.read()

    port = await scripted(protobuf)
    with pytest.raises(BrokerUnavailable, match="not implemented"):
        await DtcConnection.open(endpoint(port, Encoding.PROTOCOL_BUFFERS), lambda _: None)


async def test_a_mute_server_times_out_the_handshake(scripted: Callable[[Script], Awaitable[int]]) -> None:
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    port = await scripted(mute)
    with pytest.raises(BrokerUnavailable, match="no ENCODING_RESPONSE"):
        await DtcConnection.open(endpoint(port, handshake_timeout_s=0.2), lambda _: None)
