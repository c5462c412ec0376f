"""dxLink message shapes: every spec message decodes, anything else is one ProtocolError."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from copytrader.brokers.dxlink import protocol as p
from copytrader.brokers.dxlink.events import Quote, Trade, typed


def test_spec_transcript_messages_decode_to_their_types() -> None:
    frames: list[tuple[dict[str, Any], type[Any]]] = [
        (
            {"type": "SETUP", "channel": 0, "keepaliveTimeout": 60, "acceptKeepaliveTimeout": 60, "version": "0.1"},
            p.Setup,
        ),
        ({"type": "AUTH_STATE", "channel": 0, "state": "UNAUTHORIZED"}, p.AuthState),
        ({"type": "AUTH", "channel": 0, "token": "t"}, p.Auth),
        ({"type": "KEEPALIVE", "channel": 0}, p.Keepalive),
        (
            {"type": "CHANNEL_REQUEST", "channel": 1, "service": "FEED", "parameters": {"contract": "AUTO"}},
            p.ChannelRequest,
        ),
        (
            {"type": "CHANNEL_OPENED", "channel": 1, "service": "FEED", "parameters": {"contract": "AUTO"}},
            p.ChannelOpened,
        ),
        (
            {
                "type": "FEED_SETUP",
                "channel": 1,
                "acceptDataFormat": "COMPACT",
                "acceptEventFields": {"Quote": ["bidPrice"]},
            },
            p.FeedSetup,
        ),
        ({"type": "FEED_CONFIG", "channel": 1, "dataFormat": "COMPACT", "aggregationPeriod": 0.1}, p.FeedConfig),
        (
            {
                "type": "FEED_SUBSCRIPTION",
                "channel": 1,
                "reset": True,
                "add": [{"type": "Candle", "symbol": "ES{=1m}", "fromTime": 0}],
            },
            p.FeedSubscription,
        ),
        ({"type": "FEED_DATA", "channel": 1, "data": ["Quote", ["Quote", "ES", 1.5]]}, p.FeedData),
        ({"type": "CHANNEL_CANCEL", "channel": 1}, p.ChannelCancel),
        ({"type": "CHANNEL_CLOSED", "channel": 1}, p.ChannelClosed),
        ({"type": "ERROR", "channel": 0, "error": "TIMEOUT", "message": "late"}, p.Error),
    ]
    assert {kind.__struct_config__.tag for _, kind in frames} == p.TYPES
    for frame, kind in frames:
        message = p.decode(json.dumps(frame))
        assert isinstance(message, kind)
        assert json.loads(p.encode(message)) == frame  # encoding gives back the same frame


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"\xff\xfe", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"channel": 0}', "no string `type`"),
        ('{"type": 5, "channel": 0}', "no string `type`"),
        ('{"type": "ORDER_PLACE", "channel": 0}', "unknown message type 'ORDER_PLACE'"),
        ('{"type": "AUTH", "channel": 0}', "invalid AUTH"),
        ('{"type": "AUTH", "channel": "0", "token": "t"}', "invalid AUTH"),
        ('{"type": "FEED_SETUP", "channel": 1, "acceptDataFormat": "XML"}', "invalid FEED_SETUP"),
        ('{"type": "ERROR", "channel": 0, "error": "OOPS", "message": ""}', "invalid ERROR"),
        ('{"type": "FEED_SUBSCRIPTION", "channel": 1, "add": [{"type": "Quote"}]}', "invalid FEED_SUBSCRIPTION"),
    ],
)
def test_malformed_frames_are_one_clear_error(raw: str | bytes, says: str) -> None:
    with pytest.raises(p.ProtocolError, match=says) as caught:
        p.decode(raw)
    assert caught.value.kind == "INVALID_MESSAGE"


def test_compact_decodes_every_type_pair_in_field_order() -> None:
    fields = {"Quote": ["eventSymbol", "bidPrice", "askPrice"], "Trade": ["eventSymbol", "price"]}
    data = ["Quote", ["/ESZ26:XCME", 1.25, 1.5, "/NQZ26:XCME", 2.0, "NaN"], "Trade", ["/ESZ26:XCME", 1.25]]
    events = [typed(e) for e in p.compact_events(data, fields)]
    assert events == [
        Quote("/ESZ26:XCME", Decimal("1.25"), Decimal("1.5"), None, None, None),
        Quote("/NQZ26:XCME", Decimal("2.0"), None, None, None, None),
        Trade("/ESZ26:XCME", Decimal("1.25"), None, None),
    ]


@pytest.mark.parametrize(
    "data",
    [["Quote"], [1, []], ["Quote", ["a", 1.0, 2.0, "b"]], ["Trade", ["a", 1.0]]],
)
def test_compact_shape_errors(data: list[Any]) -> None:
    with pytest.raises(p.ProtocolError):
        p.compact_events(data, {"Quote": ["eventSymbol", "bidPrice", "askPrice"]})


def test_full_items_must_be_event_objects() -> None:
    assert p.full_events([{"eventType": "Trade", "eventSymbol": "X", "price": 3}])[0]["price"] == 3
    with pytest.raises(p.ProtocolError):
        p.full_events(["Quote", []])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5000.25, Decimal("5000.25")),
        (1.08505, Decimal("1.08505")),
        (7, Decimal(7)),
        ("NaN", None),
        ("-Infinity", None),
        (math.inf, None),
    ],
)
def test_json_doubles_become_decimals_or_none(value: Any, expected: Decimal | None) -> None:
    assert p.to_decimal(value) == expected


@pytest.mark.parametrize("value", ["5000", True, None, [1]])
def test_non_numbers_are_refused(value: Any) -> None:
    with pytest.raises(p.ProtocolError):
        p.to_decimal(value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_bytes_never_crash_the_decoder(raw: bytes) -> None:
    try:
        p.decode(raw)
    except p.ProtocolError:
        pass


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(sorted(p.TYPES) + ["BOGUS"]),
    st.dictionaries(
        st.sampled_from(
            [
                "channel",
                "version",
                "token",
                "state",
                "service",
                "parameters",
                "data",
                "add",
                "reset",
                "error",
                "message",
                "dataFormat",
            ]
        ),
        json_values,
    ),
)
def test_fuzz_envelopes_decode_or_fail_cleanly(kind: str, fields: dict[str, Any]) -> None:
    raw = json.dumps({"type": kind, **fields})
    try:
        message = p.decode(raw)
    except p.ProtocolError as exc:
        assert str(exc)
    else:
        assert type(message).__struct_config__.tag == kind
        assert p.decode(p.encode(message)) == message


@settings(max_examples=200, deadline=None)
@given(st.lists(json_values, max_size=6), st.lists(st.text(max_size=4), min_size=1, max_size=3))
def test_fuzz_feed_data_bodies_decode_or_fail_cleanly(data: list[Any], fields: list[str]) -> None:
    for decode in (p.full_events, lambda d: p.compact_events(d, {"Quote": fields})):
        try:
            for event in decode(data):
                typed(event)
        except p.ProtocolError:
            pass
