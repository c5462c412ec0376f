"""DtcAdapter sessions: heartbeats, server logoffs (DoNotReconnect honoured), reconnect + resync."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from adapter_helpers import ACCOUNT, SYMBOL, Recorder, adapter_for, session_config
from dtc_client import FAST
from scripted_server import ScriptedServer
from waiting import wait_until

from copytrader.brokers.dtc.adapter import DtcAdapter
from copytrader.brokers.dtc.messages import Encoding
from copytrader.brokers.dtc.simulator import DtcSimulator
from copytrader.brokers.errors import BrokerUnavailable
from copytrader.brokers.model import (
    ConnectionEvent,
    ConnectionState,
    FillEvent,
    OrderEvent,
    OrderStatus,
    OrderType,
    PlaceOrder,
    PositionEvent,
    Side,
    TimeInForce,
)
from copytrader.brokers.simkernel.logins import SimLogin


def state_is(*states: ConnectionState) -> object:
    return lambda e: isinstance(e, ConnectionEvent) and e.state in states


async def connected(
    sim: DtcSimulator, encoding: Encoding = Encoding.BINARY, **options: object
) -> tuple[DtcAdapter, Recorder]:
    adapter = adapter_for(sim, encoding, **options)
    events = Recorder(adapter.events())
    await adapter.connect()
    await events.expect(state_is(ConnectionState.CONNECTED))  # the connect itself: later waits are for news
    return adapter, events


def only_session(sim: DtcSimulator) -> object:
    (session,) = [s for s in sim.sessions if not s.closed]
    return session


async def test_heartbeats_go_out_at_the_negotiated_interval(dsim: DtcSimulator, encoding: Encoding) -> None:
    dsim.time_scale = FAST  # the server runs the logon's 10 s as 0.5 s, and drops a client silent for two
    adapter, _ = await connected(dsim, encoding, heartbeat_s=10, heartbeat_time_scale=FAST)
    try:
        session = only_session(dsim)
        assert session.heartbeat_s == pytest.approx(10 * FAST)  # type: ignore[attr-defined]  # Session
        connection = adapter.connection
        assert connection is not None
        # Six server heartbeats span more than two intervals: only our own heartbeats kept us on.
        await wait_until(lambda: connection.heartbeats_received >= 6, timeout_s=10, what="server heartbeats")
        assert not session.closed and adapter.state is ConnectionState.CONNECTED  # type: ignore[attr-defined]  # Session
        assert dsim.logons == 1
    finally:
        await adapter.disconnect()


async def test_lost_heartbeats_get_us_dropped_and_we_come_back(dsim: DtcSimulator) -> None:
    dsim.time_scale = FAST
    adapter, events = await connected(dsim, heartbeat_s=10, heartbeat_time_scale=FAST)
    try:
        faults = dsim.faults(adapter.broker_account(ACCOUNT))
        faults.lose_heartbeats = True
        await events.expect(state_is(ConnectionState.DEGRADED), timeout=10)
        faults.lose_heartbeats = False
        await events.expect(state_is(ConnectionState.CONNECTED), timeout=10)
        assert dsim.logons >= 2
    finally:
        await adapter.disconnect()


async def test_do_not_reconnect_is_honoured(dsim: DtcSimulator) -> None:
    adapter, events = await connected(dsim)
    try:
        dsim.logoff(only_session(dsim), "account disabled by the broker", do_not_reconnect=True)  # type: ignore[arg-type]  # Session
        event = await events.expect(state_is(ConnectionState.DISCONNECTED))
        assert isinstance(event, ConnectionEvent) and "DoNotReconnect" in (event.reason or "")
        assert "account disabled by the broker" in (event.reason or "")
        assert adapter._supervisor is not None and adapter._supervisor.done()  # no reconnect loop runs
        assert dsim.logons == 1 and adapter.health().last_error == event.reason
    finally:
        await adapter.disconnect()


async def test_a_plain_logoff_reconnects(dsim: DtcSimulator) -> None:
    adapter, events = await connected(dsim)
    try:
        dsim.logoff(only_session(dsim), "maintenance")  # type: ignore[arg-type]  # Session
        degraded = await events.expect(state_is(ConnectionState.DEGRADED))
        assert "maintenance" in (degraded.reason or "")  # type: ignore[union-attr]  # ConnectionEvent
        await events.expect(state_is(ConnectionState.CONNECTED))
        assert dsim.logons == 2 and adapter.reconnects == 1
    finally:
        await adapter.disconnect()


async def test_credentials_refused_on_reconnect_stop_the_loop(dsim: DtcSimulator) -> None:
    adapter, events = await connected(dsim)
    try:
        login = next(iter(dsim.logins.values()))
        dsim.logins[login.username] = SimLogin(login.username, "rotated", login.accounts)
        dsim.logoff(only_session(dsim), "password changed")  # type: ignore[arg-type]  # Session
        event = await events.expect(state_is(ConnectionState.DISCONNECTED))
        assert "reconnect refused" in (event.reason or "")  # type: ignore[union-attr]  # ConnectionEvent
        assert adapter._supervisor is not None and adapter._supervisor.done()
    finally:
        await adapter.disconnect()


async def test_what_happened_while_away_is_emitted_once(dsim: DtcSimulator, encoding: Encoding) -> None:
    adapter, events = await connected(dsim, encoding)
    account = adapter.broker_account(ACCOUNT)
    try:
        limit = PlaceOrder(
            ACCOUNT, "l1", SYMBOL, Side.BUY, 2, OrderType.LIMIT, Decimal("4990.00"), time_in_force=TimeInForce.GTC
        )
        await adapter.place(limit)
        await events.expect(lambda e: isinstance(e, OrderEvent) and e.status is OrderStatus.WORKING)
        dsim.hold_connections = True
        dsim.faults(account).drop_connection = True
        dsim.exchange.faults_changed(account)
        await events.expect(state_is(ConnectionState.DEGRADED))
        dsim.exchange.set_price(SYMBOL, Decimal("4990.00"))  # l1 fills while nobody listens
        assert dsim.exchange.account(account).positions[SYMBOL].net_quantity == 2
        dsim.hold_connections = False
        await events.expect(state_is(ConnectionState.CONNECTED), timeout=10)
        fill = await events.expect(lambda e: isinstance(e, FillEvent) and e.client_order_id == "l1")
        assert isinstance(fill, FillEvent) and (fill.quantity, fill.price) == (2, Decimal("4990.00"))
        await events.expect(lambda e: isinstance(e, OrderEvent) and e.status is OrderStatus.FILLED)
        await events.expect(lambda e: isinstance(e, PositionEvent) and e.net_quantity == 2)
        # A second reconnect finds nothing new: the fill is not reported again.
        dsim.faults(account).drop_connection = True
        dsim.exchange.faults_changed(account)
        await events.expect(state_is(ConnectionState.DEGRADED))
        await events.expect(state_is(ConnectionState.CONNECTED), timeout=10)
        assert len(events.of(FillEvent)) == 1
        assert adapter.reconnects == 2
    finally:
        await adapter.disconnect()


async def test_connect_during_a_reconnect_loop_takes_over(dsim: DtcSimulator) -> None:
    adapter, events = await connected(dsim)
    account = adapter.broker_account(ACCOUNT)
    try:
        dsim.hold_connections = True  # the server is unreachable: the loop keeps retrying
        dsim.faults(account).drop_connection = True
        dsim.exchange.faults_changed(account)
        await events.expect(state_is(ConnectionState.DEGRADED))
        dsim.hold_connections = False
        await adapter.connect()
        assert adapter.state is ConnectionState.CONNECTED
        assert adapter._supervisor is not None and not adapter._supervisor.done()
        assert len([s for s in dsim.sessions if not s.closed]) == 1  # one session, not two
    finally:
        await adapter.disconnect()


async def test_a_logon_sent_elsewhere_is_followed_once(dsim: DtcSimulator) -> None:
    relay = await ScriptedServer().start()
    relay.redirect_to = f"127.0.0.1:{dsim.port}"
    try:
        adapter = DtcAdapter(replace(session_config(dsim), endpoint=relay.endpoint))
        await adapter.connect()
        try:
            assert adapter.state is ConnectionState.CONNECTED and dsim.logons == 1
            assert adapter.connection is not None and adapter.connection.endpoint.port == dsim.port
        finally:
            await adapter.disconnect()
        relay.redirect_to = f"127.0.0.1:{relay.port}"  # sent back to itself: given up, not looped
        looping = DtcAdapter(replace(session_config(dsim), endpoint=relay.endpoint))
        with pytest.raises(BrokerUnavailable, match="reconnect to"):
            await looping.connect()
    finally:
        await relay.stop()
