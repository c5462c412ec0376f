"""Fuzzing a live Tradovate session: garbage on the wire never ends it or costs the next fill.

The simulator's garbage faults put frames on the user WebSocket exactly as given
(``send_raw``) and answer a REST request with a raw body (``answer_garbage``). Against the real
adapter and transport: the session stays connected (a frame that decodes as ``c[...]`` is a
close, and the adapter reconnects on its own), the garbage is reported as BAD_ANSWER carrying
its raw text truncated, and the fill pushed right after it arrives exactly once.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tradovate_helpers import next_event, session_config
from waiting import wait_until

from copytrader.brokers.base import Subscription
from copytrader.brokers.errors import AuthenticationFailed, BrokerUnavailable
from copytrader.brokers.model import ConnectionState, FillEvent, PlaceOrder, Side
from copytrader.brokers.tradovate import codec
from copytrader.brokers.tradovate import schemas as s
from copytrader.brokers.tradovate.adapter import BAD_ANSWER_LOG, TradovateAdapter
from copytrader.brokers.tradovate.simulator import TradovateSimulator, create_simulator
from copytrader.brokers.wire import RAW_LIMIT

SESSION = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FOREIGN = 999_999  # ids no account of ours uses: a push about them must never become our fill
NOT_A_NUMBER = ["NaN", "abc", "Infinity", None, [], {}, True, "1e999999"]
#: Values each fill field cannot take: an id or qty must be an integer (a qty positive), a price
#: a finite number.
BAD_VALUES = {"id": [*NOT_A_NUMBER, 2.5], "qty": [*NOT_A_NUMBER, 2.5, -1, 0], "price": NOT_A_NUMBER}
FILL = s.fill_entity(5, FOREIGN, FOREIGN, s.BUY, 1, 5000.25, s.parse_iso("2026-12-01T14:30:00Z"))


@st.composite
def bad_entity_push(draw: st.DrawFn) -> str:
    """A props push of a fill whose id, qty or price cannot be read."""
    key = draw(st.sampled_from(sorted(BAD_VALUES)))
    entity = {**FILL, key: draw(st.sampled_from(BAD_VALUES[key]))}
    return "a" + json.dumps([{"e": "props", "d": s.props(s.ENTITY_FILL, "Created", entity)}])


GARBAGE = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=100),
    st.sampled_from(["", "x", "a", "a[", "a{}", "a[1,2]", 'a[{"s":"x","i":1}]', "c[NaN]", "a[NaN]", "h!", "[]"]),
    st.sampled_from(['a[{"i":1,"s":200}]', 'a[{"e":"props","d":7}]', "a" + "[" * 3000 + "]" * 3000]),
    st.sampled_from(["c", 'c[3000,"go away"]', 'c["1000",7]']),  # closes, as the protocol has them
    bad_entity_push(),
)
ORDERS = itertools.count(1)


def expected_bad(garbage: str | bytes) -> bool:
    """Whether the garbage cannot be read at all (the codec refuses it or an item of it)."""
    if isinstance(garbage, bytes):
        return True
    try:
        frame = codec.decode_server_frame(garbage)
    except codec.CodecError:
        return True
    return isinstance(frame, codec.DataFrame) and bool(frame.bad)


async def fill_of(adapter: TradovateAdapter, events: Subscription, client_order_id: str) -> FillEvent:
    await adapter.place(PlaceOrder("f1", client_order_id, "ESZ6", Side.BUY, 1))
    fill = await next_event(events, lambda e: isinstance(e, FillEvent) and e.client_order_id == client_order_id)
    assert isinstance(fill, FillEvent)
    return fill


class Session:
    """One simulator and one connected adapter on a loop of their own, kept across examples:
    the property is that one session survives every garbage frame, one after another."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.sim = create_simulator(tick_ms=20, heartbeat_s=0.5)
        self.loop.run_until_complete(self.sim.start())
        self.adapter = TradovateAdapter(session_config(self.sim))
        self.loop.run_until_complete(self.adapter.connect())
        self.events, self.watch = self.adapter.events(), self.adapter.events()
        self.fills: Counter[str] = Counter()
        self.closes = 0

    def close(self) -> None:
        self.loop.run_until_complete(self.adapter.disconnect())
        self.loop.run_until_complete(self.sim.stop())
        self.loop.close()

    async def garbage_then_a_fill(self, garbage: str | bytes) -> None:
        adapter, socket = self.adapter, self.adapter.socket
        assert socket is not None
        before = adapter.bad_answer_count
        is_close = isinstance(garbage, str) and garbage.startswith("c") and not expected_bad(garbage)
        assert self.sim.send_raw(garbage) >= 1
        if is_close:  # the protocol's close: the adapter reconnects on its own
            self.closes += 1
            await wait_until(lambda: socket.connects == 1 + self.closes, timeout_s=5, what="a reconnect")
        fill = await fill_of(adapter, self.events, f"fz-{next(ORDERS)}")
        self.fills[fill.client_order_id or ""] += 1
        if expected_bad(garbage) or (isinstance(garbage, str) and '"entityType": "fill"' in garbage):
            assert adapter.bad_answer_count > before, f"not reported: {garbage!r:.120}"
        new = adapter.bad_answer_count - before
        for exc in list(adapter.bad_answers)[max(0, len(adapter.bad_answers) - new) :] if new else []:
            assert isinstance(exc, codec.CodecError) and exc.code == "BAD_ANSWER"
            assert len(exc.raw) <= RAW_LIMIT + 40
            if isinstance(garbage, str) and expected_bad(garbage):
                assert exc.raw.startswith(garbage[:100])
        health = adapter.health()
        assert health.state is ConnectionState.CONNECTED
        if adapter.bad_answer_count > before:
            assert (health.last_error or "").startswith("BAD_ANSWER")
        assert socket.connects == 1 + self.closes  # garbage alone never costs a reconnect


def test_garbage_frames_are_reported_and_the_next_fill_arrives_once() -> None:
    session = Session()
    try:

        @SESSION
        @given(garbage=GARBAGE)
        def garbage_then_a_fill(garbage: str | bytes) -> None:
            session.loop.run_until_complete(session.garbage_then_a_fill(garbage))

        garbage_then_a_fill()
        # Every fill exactly once, counting any that a resync after a close replayed late.
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


async def test_a_frame_with_a_bad_item_still_delivers_the_good_items_beside_it(
    adapter: TradovateAdapter, sim: TradovateSimulator
) -> None:
    events = adapter.events()
    sim.send_raw(
        'a[{"nonsense":1},' + json.dumps({"e": "props", "d": s.props(s.ENTITY_FILL, "Created", {"id": "x"})}) + "]"
    )
    fill = await fill_of(adapter, events, "beside-1")
    assert fill.quantity == 1
    raws = [getattr(e, "raw", "") for e in adapter.bad_answers]
    assert any("nonsense" in raw for raw in raws) and any('"id": "x"' in raw for raw in raws)
    assert adapter.socket is not None and adapter.socket.connects == 1


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.binary(max_size=80), st.sampled_from([b"", b"{", b"[]", b'{"orderId":"x"}', b"NaN", b"\xff"])))
async def test_a_garbage_answer_to_a_place_is_bad_answer_and_the_order_is_found_by_lookup(
    adapter: TradovateAdapter, sim: TradovateSimulator, body: bytes
) -> None:
    cl = f"garbage-answer-{next(ORDERS)}"
    sim.answer_garbage("order/placeorder", body)
    try:
        ack = await adapter.place(PlaceOrder("f1", cl, "ESZ6", Side.BUY, 1))
    except codec.CodecError as exc:
        assert exc.code == "BAD_ANSWER" and len(exc.raw) <= RAW_LIMIT + 40
        found = await adapter.lookup("f1", cl)  # what the executor does with an unknown outcome
        assert found is not None and found.duplicate
    else:  # the body happened to read as an answer (e.g. empty: none): never a made-up order id
        assert ack.broker_order_id.isdigit()
    assert adapter.health().state is ConnectionState.CONNECTED


async def test_a_burst_of_garbage_is_counted_but_does_not_flood_the_log(
    adapter: TradovateAdapter, sim: TradovateSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    events = adapter.events()
    with caplog.at_level(logging.ERROR, logger="copytrader.brokers.tradovate.adapter"):
        for n in range(100):
            sim.send_raw(f"garbage {n}")
        await fill_of(adapter, events, "after-burst")  # pushed after the burst: all of it was read
    assert adapter.bad_answer_count == 100 and len(adapter.bad_answers) == 50
    lines = [r for r in caplog.records if "BAD_ANSWER" in r.getMessage()]
    assert len(lines) == BAD_ANSWER_LOG[0]
    assert adapter.socket is not None and adapter.socket.connects == 1


@pytest.mark.parametrize("body", [b"{", b"\xff", b'[{"id":"x"}]', b"NaN"])
async def test_a_lookup_whose_answer_does_not_read_cannot_tell(
    adapter: TradovateAdapter, sim: TradovateSimulator, body: bytes
) -> None:
    sim.answer_garbage("order/deps", body)
    with pytest.raises(BrokerUnavailable, match="cannot tell") as caught:
        await adapter.lookup("f1", "anything")
    assert not caught.value.sent  # "cannot tell", never "not there"
    assert await adapter.lookup("f1", "anything") is None  # the next answer reads: not there


@pytest.fixture
async def roomy_sim() -> AsyncIterator[TradovateSimulator]:
    """A simulator without the authentication penalty window (ten logins a minute per subnet),
    which the many logins of the next test would otherwise spend waiting out."""
    simulator = create_simulator(tick_ms=20, heartbeat_s=0.5, endpoint_limits={})
    await simulator.start()
    yield simulator
    await simulator.stop()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        st.binary(max_size=80),
        st.sampled_from([b"", b"{}", b"null", b'{"accessToken":7}', b'{"accessToken":"t","userId":"x"}']),
    )
)
async def test_a_login_answer_that_does_not_read_refuses_the_connect_cleanly(
    roomy_sim: TradovateSimulator, body: bytes
) -> None:
    sim = roomy_sim
    sim.answer_garbage("auth/accesstokenrequest", body)
    adapter = TradovateAdapter(session_config(sim))
    with pytest.raises((AuthenticationFailed, codec.CodecError)):
        await adapter.connect()
    assert adapter.health().state is ConnectionState.DISCONNECTED
    await adapter.connect()  # the next login reads: the session opens
    await adapter.disconnect()
