"""The simulated DTC server's connection lifecycle, in both encodings."""

from __future__ import annotations

import asyncio
import struct

from dtc_client import FAST, ClientFactory, DtcClient

from copytrader.brokers.dtc.codec import encode_binary, encode_json, make
from copytrader.brokers.dtc.messages import Encoding, MsgType
from copytrader.brokers.dtc.simulator import DtcSimulator


async def test_encoding_request_is_answered_in_binary_and_granted(sim: DtcSimulator, encoding: Encoding) -> None:
    client = await DtcClient.connect(sim.port, encoding)
    try:
        assert client.granted is not None and client.granted["Encoding"] == int(encoding)
        assert client.granted["ProtocolType"] == "DTC" and client.granted["ProtocolVersion"] == 8
        response = await client.logon()  # sent and read in the granted encoding
        assert response["Result"] == 1
    finally:
        await client.close()


async def test_unsupported_encoding_falls_back_to_binary(sim: DtcSimulator) -> None:
    client = await DtcClient.connect(sim.port, Encoding.PROTOCOL_BUFFERS)
    try:
        assert client.encoding is Encoding.BINARY
        assert (await client.logon())["Result"] == 1
    finally:
        await client.close()


async def test_binary_is_the_default_without_a_handshake(sim: DtcSimulator) -> None:
    client = await DtcClient.connect(sim.port, Encoding.BINARY, negotiate=False)
    try:
        assert (await client.logon())["Result"] == 1
    finally:
        await client.close()


async def test_a_server_pinned_to_json_takes_json_first() -> None:
    simulator = await DtcSimulator(initial_encoding=Encoding.JSON).start()
    client = await DtcClient.connect(simulator.port, Encoding.JSON, negotiate=False)
    try:
        assert (await client.logon())["Result"] == 1
    finally:
        await client.close()
        await simulator.stop()


async def test_logon_reports_the_trading_flags(connect: ClientFactory, sim: DtcSimulator) -> None:
    client = await connect(logon=False)
    response = await client.logon()
    assert response["Result"] == 1 and response["TradingIsSupported"] == 1
    assert response["OrderCancelReplaceSupported"] == 1
    assert response["OCOOrdersSupported"] == 1 and response["BracketOrdersSupported"] == 1
    assert response["MarketDataSupported"] == 0
    sim.oco.supported, sim.trading_supported = False, False  # a server without them says so
    other = await connect(logon=False)
    response = await other.logon()
    assert response["OCOOrdersSupported"] == 0 and response["BracketOrdersSupported"] == 0
    assert response["TradingIsSupported"] == 0


async def test_bad_password_is_refused_and_the_socket_closed(connect: ClientFactory) -> None:
    client = await connect(logon=False)
    response = await client.logon(password="wrong")
    assert response["Result"] == 2 and "password" in str(response["ResultText"])
    await asyncio.wait_for(client.closed.wait(), 5)


async def test_logon_to_a_foreign_trade_account_is_refused(connect: ClientFactory) -> None:
    client = await connect(logon=False)
    response = await client.logon(TradeAccount="SOMEONE-ELSE")
    assert response["Result"] == 2
    await asyncio.wait_for(client.closed.wait(), 5)


async def test_requests_before_logon_get_a_logoff(connect: ClientFactory) -> None:
    client = await connect(logon=False)
    client.request(MsgType.TRADE_ACCOUNTS_REQUEST)
    logoff = await client.expect_type(MsgType.LOGOFF)
    assert "logon" in str(logoff["Reason"])
    await asyncio.wait_for(client.closed.wait(), 5)


async def test_server_heartbeats_at_the_negotiated_interval(connect: ClientFactory, sim: DtcSimulator) -> None:
    sim.time_scale = FAST
    client = await connect()
    first = await client.expect_type(MsgType.HEARTBEAT)
    second = await client.expect_type(MsgType.HEARTBEAT)
    assert first["CurrentDateTime"] and second["CurrentDateTime"]
    assert not client.closed.is_set()


async def test_a_silent_client_is_dropped_after_two_intervals(connect: ClientFactory, sim: DtcSimulator) -> None:
    sim.time_scale = FAST
    client = await connect(heartbeats=False)
    logoff = await client.expect_type(MsgType.LOGOFF)
    assert "heartbeat" in str(logoff["Reason"])
    await asyncio.wait_for(client.closed.wait(), 5)


async def test_a_heartbeating_client_stays(connect: ClientFactory, sim: DtcSimulator) -> None:
    sim.time_scale = FAST
    client = await connect()
    for _ in range(4):  # four server heartbeats = 4 intervals: past the 2-interval timeout
        await client.expect_type(MsgType.HEARTBEAT)
    assert not client.closed.is_set()


async def test_client_logoff_closes_the_connection(connect: ClientFactory, sim: DtcSimulator) -> None:
    client = await connect()
    client.send(make(MsgType.LOGOFF, Reason="done", DoNotReconnect=1))
    await asyncio.wait_for(client.closed.wait(), 5)


async def test_server_shutdown_sends_a_logoff_that_allows_reconnecting(sim: DtcSimulator, encoding: Encoding) -> None:
    client = await DtcClient.connect(sim.port, encoding)
    try:
        await client.logon()
        await sim.stop()
        logoff = await client.expect_type(MsgType.LOGOFF)
        assert logoff["DoNotReconnect"] == 0
    finally:
        await client.close()


async def test_an_unknown_message_type_is_skipped(connect: ClientFactory, encoding: Encoding) -> None:
    client = await connect()
    garbage = struct.pack("<HH", 8, 999) + b"\0\0\0\0" if encoding is Encoding.BINARY else b'{"Type":999}\0'
    client.writer.write(garbage)
    request_id = client.request(MsgType.TRADE_ACCOUNTS_REQUEST)
    assert (await client.expect_type(MsgType.TRADE_ACCOUNT_RESPONSE, RequestID=request_id))["MessageNumber"] == 1


async def test_a_broken_frame_drops_the_connection(connect: ClientFactory) -> None:
    client = await connect()
    if client.encoding is Encoding.BINARY:
        client.writer.write(struct.pack("<HH", 2, 3))
    else:
        client.writer.write(b"{" * 70000)
    await asyncio.wait_for(client.closed.wait(), 5)


async def test_trade_accounts_are_listed_one_per_message(connect: ClientFactory, sim: DtcSimulator) -> None:
    client = await connect()
    request_id = client.request(MsgType.TRADE_ACCOUNTS_REQUEST)
    got = [await client.expect_type(MsgType.TRADE_ACCOUNT_RESPONSE, RequestID=request_id) for _ in range(3)]
    assert [m["TradeAccount"] for m in got] == list(next(iter(sim.logins.values())).accounts)
    assert [(m["MessageNumber"], m["TotalNumberMessages"]) for m in got] == [(1, 3), (2, 3), (3, 3)]


def test_wire_examples_for_the_record() -> None:
    # The same heartbeat in both encodings, as the server sends it.
    beat = make(MsgType.HEARTBEAT, CurrentDateTime=1)
    assert encode_binary(beat) == bytes.fromhex("10000300 00000000 01000000 00000000")
    assert encode_json(beat) == b'{"Type":3,"NumDroppedMessages":0,"CurrentDateTime":1}\0'


async def test_heartbeat_interval_zero_takes_the_server_default(connect: ClientFactory, sim: DtcSimulator) -> None:
    await connect(HeartbeatIntervalInSeconds=0)
    (session,) = sim.sessions
    assert session.heartbeat_s == sim.default_heartbeat_s * sim.time_scale


async def test_lost_client_heartbeats_get_the_client_dropped(connect: ClientFactory, sim: DtcSimulator) -> None:
    sim.time_scale = FAST
    client = await connect()  # heartbeating every 0.05 s
    sim.exchange.account("DTC-LEADER").faults.lose_heartbeats = True
    logoff = await client.expect_type(MsgType.LOGOFF)
    assert "heartbeat" in str(logoff["Reason"])


async def test_drop_connection_fault_closes_the_socket(connect: ClientFactory, sim: DtcSimulator) -> None:
    client = await connect()
    sim.exchange.account("DTC-LEADER").faults.drop_connection = True
    sim.exchange.faults_changed("DTC-LEADER")
    await asyncio.wait_for(client.closed.wait(), 5)
