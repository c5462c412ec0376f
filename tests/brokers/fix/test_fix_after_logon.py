"""After a logon the counterparty may ask for a resend (it lost our last messages with the line):
nothing of ours may go out before the engine has answered it, or the engine's gap fill would
cover it and the counterparty would skip it (F-X12)."""

from __future__ import annotations

import threading

import pytest
import quickfix as fix
from fix_helpers import SYMBOL, Recorder
from test_fix_adapter import PRICE, market

from copytrader.brokers.fix.adapter import FixAdapter
from copytrader.brokers.fix.application import Bridge
from copytrader.brokers.fix.settings import initiator_session_id
from copytrader.brokers.fix.simulator import FixSimulator
from copytrader.brokers.model import ConnectionEvent, ConnectionState, FillEvent

#: How long the engine's reading of the ResendRequest is held back at most (it goes on as soon
#: as an order of ours has been handed to the engine, which is what the test is about).
HOLD_S = 2.0


def hold_resend_requests(monkeypatch: pytest.MonkeyPatch, adapter: FixAdapter) -> threading.Event:
    """Make our engine read the counterparty's ResendRequest late: its fromAdmin (called before
    the engine answers with the gap fill, without the session lock) waits on QuickFIX's thread
    until an order of ours went out, or ``HOLD_S``. Returns the "order went out" event."""
    order_out = threading.Event()
    from_admin, send = Bridge.fromAdmin, adapter.send

    def late_resend_request(bridge: Bridge, message: fix.Message, session_id: fix.SessionID) -> None:
        if bridge.listener is adapter and "\x0135=2\x01" in message.toString():
            order_out.wait(HOLD_S)
        from_admin(bridge, message, session_id)

    def sending(msg_type: str, fields: list[tuple[int, str]]) -> None:
        send(msg_type, fields)
        order_out.set()

    monkeypatch.setattr(Bridge, "fromAdmin", late_resend_request)
    monkeypatch.setattr(adapter, "send", sending)
    return order_out


async def test_the_first_order_after_a_resend_request_is_not_swallowed_by_the_gap_fill(
    sim: FixSimulator, adapter: FixAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim.exchange.set_price(SYMBOL, PRICE)
    events = Recorder(adapter)
    session = fix.Session.lookupSession(initiator_session_id(adapter.fix))
    sim.disconnect_all()
    await events.wait_for(lambda e: isinstance(e, ConnectionEvent) and e.state is ConnectionState.DEGRADED, "lost")
    session.setNextSenderMsgSeqNum(session.getExpectedSenderNum() + 1)  # a message lost with the line
    hold_resend_requests(monkeypatch, adapter)
    await events.wait_for(
        lambda e: isinstance(e, ConnectionEvent) and e.state is ConnectionState.CONNECTED, "back", timeout_s=8
    )
    await adapter.place(market("M1"))  # without the wait for the resend, no answer ever came
    await events.wait_for(lambda e: isinstance(e, FillEvent) and e.client_order_id == "M1", "M1 filled")
    assert adapter.book.position("A", SYMBOL).net_quantity == 1
