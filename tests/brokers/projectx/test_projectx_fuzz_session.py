"""Fuzzing a live ProjectX session: garbage on the user hub never ends it or costs the next fill.

The simulator's garbage faults put frames on the hub socket exactly as given (``send_raw``) and
answer a REST request with a raw body (``answer_garbage``). Against the real adapter and hub
client: the session stays connected (a ``Close`` record ends the socket, as the protocol says,
and the client reconnects and reconciles on its own), the garbage is reported as BAD_ANSWER
carrying its raw text truncated, and the fill pushed right after it arrives exactly once.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from projectx_helpers import next_event, session_config
from waiting import wait_until

from copytrader.brokers.base import Subscription
from copytrader.brokers.errors import AuthenticationFailed, BrokerUnavailable
from copytrader.brokers.model import ConnectionState, FillEvent, PlaceOrder, Side
from copytrader.brokers.projectx import codec
from copytrader.brokers.projectx import schemas as px
from copytrader.brokers.projectx.adapter import BAD_ANSWER_LOG, ProjectXAdapter
from copytrader.brokers.projectx.simulator import ProjectXSimulator, create_simulator
from copytrader.brokers.simkernel.exchange import SimExchange
from copytrader.brokers.wire import RAW_LIMIT

SESSION = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
RS = codec.RS
FOREIGN = 999_999  # an order id nobody placed: a push about it must never become our fill
NOT_A_NUMBER = ["NaN", "abc", "Infinity", None, [], {}, True, "1e999999"]
#: Values each trade field cannot take: ids and size integers (size positive), price a number.
BAD_VALUES = {"id": [*NOT_A_NUMBER, 2.5], "size": [*NOT_A_NUMBER, 2.5, -1, 0], "price": NOT_A_NUMBER}
ORDERS = itertools.count(1)


@st.composite
def bad_trade_record(draw: st.DrawFn, account_id: int) -> str:
    """A GatewayUserTrade push for one of our accounts whose id, size or price cannot be read."""
    key = draw(st.sampled_from(sorted(BAD_VALUES)))
    trade = {
        "id": 5,
        "accountId": account_id,
        "contractId": "CON.F.US.EP.Z26",
        "creationTimestamp": "2026-12-01T14:30:00+00:00",
        "price": 6335.25,
        "side": 0,
        "size": 1,
        "voided": False,
        "orderId": FOREIGN,
        key: draw(st.sampled_from(BAD_VALUES[key])),
    }
    return codec.invocation(px.EVENT_TRADE, [{"action": 1, "data": trade}])


def garbage(account_id: int) -> st.SearchStrategy[str | bytes]:
    return st.one_of(
        st.text(max_size=200).map(lambda t: t + RS),  # a record of anything
        st.text(max_size=200).filter(lambda t: RS not in t),  # a frame that never ends its record
        st.binary(max_size=100),
        st.sampled_from(
            [
                "{}" + RS,
                '{"type":1}' + RS,
                '{"type":"1","target":"GatewayUserTrade"}' + RS,
                '{"type":1,"target":"GatewayUserTrade","arguments":7}' + RS,
                '{"type":1,"target":"GatewayUserTrade","arguments":[7]}' + RS,
                '{"type":1,"target":"NoSuchTarget","arguments":[{}]}' + RS,
                '{"type":99,"x":[1]}' + RS,
                '{"type":3,"invocationId":"nobody"}' + RS,
                '{"type":6}' + RS + "{" + RS,
                '{"type":NaN}' + RS,
                "[" * 3000 + "]" * 3000 + RS,
            ]
        ),
        st.sampled_from([codec.close(), codec.close("bye", allow_reconnect=True)]),  # closes, as the protocol has them
        bad_trade_record(account_id),
    )


def expected_bad(frame: str | bytes) -> bool:
    """Whether the codec refuses the frame or a record in it, as the hub client reads frames."""
    bad: list[codec.ProtocolError] = []
    if isinstance(frame, bytes):
        return True
    codec.Decoder().feed(frame, on_bad=bad.append, whole=True)
    return bool(bad)


def is_close(frame: str | bytes) -> bool:
    if isinstance(frame, bytes) or expected_bad(frame):
        return False
    return any(m.type is codec.MessageType.CLOSE for m in codec.Decoder().feed(frame))


async def fill_of(adapter: ProjectXAdapter, events: Subscription, client_order_id: str) -> FillEvent:
    await adapter.place(PlaceOrder("f1", client_order_id, "ESZ6", Side.BUY, 1))
    fill = await next_event(events, lambda e: isinstance(e, FillEvent) and e.client_order_id == client_order_id)
    assert isinstance(fill, FillEvent)
    return fill


class Session:
    """One simulator and one connected adapter on a loop of their own, kept across examples:
    the property is that one session survives every garbage frame, one after another."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.sim = create_simulator(SimExchange(seed=11), tick_ms=10, keepalive_s=1.0)
        self.loop.run_until_complete(self.sim.start())
        self.adapter = ProjectXAdapter(session_config(self.sim))
        self.loop.run_until_complete(self.adapter.connect())
        self.events, self.watch = self.adapter.events(), self.adapter.events()
        self.fills: Counter[str] = Counter()
        self.closes = 0

    def close(self) -> None:
        self.loop.run_until_complete(self.adapter.disconnect())
        self.loop.run_until_complete(self.sim.stop())
        self.loop.close()

    async def garbage_then_a_fill(self, frame: str | bytes) -> None:
        adapter, hub = self.adapter, self.adapter.hub
        assert hub is not None
        before = adapter.bad_answer_count
        assert self.sim.send_raw(frame) >= 1
        if is_close(frame):  # the protocol's close: the client reconnects and reconciles on its own
            self.closes += 1
            await wait_until(
                lambda: hub.connects == 1 + self.closes and adapter.reconciled.is_set(),
                timeout_s=5,
                what="a reconnect",
            )
        fill = await fill_of(adapter, self.events, f"fz-{next(ORDERS)}")
        self.fills[fill.client_order_id or ""] += 1
        if expected_bad(frame) or (isinstance(frame, str) and px.EVENT_TRADE in frame and "arguments" in frame):
            assert adapter.bad_answer_count > before, f"not reported: {frame!r:.120}"
        new = adapter.bad_answer_count - before
        for exc in list(adapter.bad_answers)[max(0, len(adapter.bad_answers) - new) :] if new else []:
            assert exc.code == "BAD_ANSWER" and len(exc.raw) <= RAW_LIMIT + 40
        if isinstance(frame, str) and expected_bad(frame) and RS not in frame:
            assert adapter.bad_answers[-1].raw.startswith(frame[:100])
        health = adapter.health()
        assert health.state is ConnectionState.CONNECTED
        if adapter.bad_answer_count > before:
            assert (health.last_error or "").startswith("BAD_ANSWER")
        assert hub.connects == 1 + self.closes  # garbage alone never costs a reconnect


def test_garbage_on_the_hub_is_reported_and_the_next_fill_arrives_once() -> None:
    session = Session()
    try:
        account_id = session.sim.account_id("PX-FOLLOWER-1")

        @SESSION
        @given(frame=garbage(account_id))
        def garbage_then_a_fill(frame: str | bytes) -> None:
            session.loop.run_until_complete(session.garbage_then_a_fill(frame))

        garbage_then_a_fill()
        # Every fill exactly once, counting any that a reconciliation after a close replayed.
        fill = session.loop.run_until_complete(fill_of(session.adapter, session.events, "fz-last"))
        session.fills[fill.client_order_id or ""] += 1
        assert set(session.fills.values()) == {1}
        replayed = [e for e in _drain(session.watch) if isinstance(e, FillEvent)]
        assert Counter(e.client_order_id for e in replayed) == session.fills
    finally:
        session.close()


def _drain(events: Subscription) -> list[object]:
    drained = []
    while not events.queue.empty():
        drained.append(events.queue.get_nowait())
    return drained


async def test_a_bad_record_in_a_frame_still_delivers_the_good_records_beside_it(
    adapter: ProjectXAdapter, sim: ProjectXSimulator
) -> None:
    events = adapter.events()
    sim.send_raw('{"type":1,"target":"GatewayUserTrade","arguments":7}' + RS + "not json" + RS + codec.ping())
    fill = await fill_of(adapter, events, "beside-1")
    assert fill.quantity == 1
    raws = [e.raw for e in adapter.bad_answers]
    assert any('"arguments":7' in raw for raw in raws) and "not json" in raws
    assert adapter.hub is not None and adapter.hub.connects == 1


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        st.binary(max_size=80),
        st.sampled_from([b"", b"{", b"[]", b'{"success":true,"orderId":"x"}', b"NaN", b"\xff", b"null"]),
    )
)
async def test_a_garbage_answer_to_a_place_is_bad_answer_and_the_order_is_found_by_lookup(
    adapter: ProjectXAdapter, sim: ProjectXSimulator, body: bytes
) -> None:
    cl = f"garbage-answer-{next(ORDERS)}"
    sim.answer_garbage(px.ORDER_PLACE, body)
    try:
        ack = await adapter.place(PlaceOrder("f1", cl, "ESZ6", Side.BUY, 1))
    except codec.ProtocolError as exc:
        assert exc.code == "BAD_ANSWER" and len(exc.raw) <= RAW_LIMIT + 40
        found = await adapter.lookup("f1", cl)  # what the executor does with an unknown outcome
        assert found is not None and found.duplicate
    else:  # the body happened to read as a refusal: only an order the gateway holds answers it
        assert ack.duplicate and ack.broker_order_id.isdigit()
    assert adapter.health().state is ConnectionState.CONNECTED
    assert json.dumps(adapter.health().last_error)  # health stays printable


async def test_a_reconciliation_answer_that_does_not_read_is_reported_and_the_session_goes_on(
    adapter: ProjectXAdapter, sim: ProjectXSimulator
) -> None:
    events = adapter.events()
    hub = adapter.hub
    assert hub is not None
    sim.answer_garbage(px.TRADE_SEARCH, b'{"success":true,"trades":7}')
    sim.send_raw(codec.close())  # the gateway ends the socket: reconnect, then reconcile over REST
    await wait_until(lambda: hub.connects == 2 and adapter.reconciled.is_set(), timeout_s=5, what="a reconcile")
    assert any('"trades":7' in exc.raw for exc in adapter.bad_answers)
    await fill_of(adapter, events, "after-reconcile")
    assert adapter.health().state is ConnectionState.CONNECTED


async def test_a_burst_of_garbage_is_counted_but_does_not_flood_the_log(
    adapter: ProjectXAdapter, sim: ProjectXSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    events = adapter.events()
    with caplog.at_level(logging.ERROR, logger="copytrader.brokers.projectx.adapter"):
        for n in range(100):
            sim.send_raw(f"garbage {n}" + RS)
        await fill_of(adapter, events, "after-burst")  # pushed after the burst: all of it was read
    assert adapter.bad_answer_count == 100 and len(adapter.bad_answers) == 50
    lines = [r for r in caplog.records if "BAD_ANSWER" in r.getMessage()]
    assert len(lines) == BAD_ANSWER_LOG[0]
    assert adapter.hub is not None and adapter.hub.connects == 1


@pytest.mark.parametrize("body", [b"{", b"\xff", b'{"success":true,"orders":[{"id":"x"}]}', b"[]"])
async def test_a_lookup_whose_answer_does_not_read_cannot_tell(
    adapter: ProjectXAdapter, sim: ProjectXSimulator, body: bytes
) -> None:
    sim.answer_garbage(px.ORDER_SEARCH_OPEN, body)
    with pytest.raises(BrokerUnavailable, match="cannot tell") as caught:
        await adapter.lookup("f1", "anything")
    assert not caught.value.sent  # "cannot tell", never "not there"
    assert await adapter.lookup("f1", "anything") is None  # the next answer reads: not there


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        st.binary(max_size=80),
        st.sampled_from([b"", b"{}", b"null", b'{"success":true,"token":7}', b'{"success":true,"token":null}']),
    )
)
async def test_a_login_answer_that_does_not_read_refuses_the_connect_cleanly(
    sim: ProjectXSimulator, body: bytes
) -> None:
    sim.answer_garbage(px.LOGIN_KEY, body)
    adapter = ProjectXAdapter(session_config(sim))
    with pytest.raises((AuthenticationFailed, codec.ProtocolError)):
        await adapter.connect()
    assert adapter.health().state is ConnectionState.DISCONNECTED
    await adapter.connect()  # the next login reads: the session opens
    await adapter.disconnect()
