"""Codec round trips: the same sans-I/O codec serves adapter, simulator and tests."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from copytrader.brokers.tradovate import codec

SIMPLE = st.one_of(st.none(), st.booleans(), st.integers(-(10**9), 10**9), st.text(max_size=20))
JSONISH = st.recursive(SIMPLE, lambda inner: st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=8)


def test_control_frames_round_trip() -> None:
    for frame in (codec.OpenFrame(), codec.HeartbeatFrame(), codec.CloseFrame(1000, "bye")):
        assert codec.decode_server_frame(codec.encode_server_frame(frame)) == frame
    assert codec.encode_server_frame(codec.OpenFrame()) == "o"
    assert codec.encode_server_frame(codec.HeartbeatFrame()) == "h"
    assert codec.encode_server_frame(codec.CloseFrame(1000, "bye")) == 'c[1000,"bye"]'


def test_reply_and_push_wire_shape() -> None:
    frame = codec.DataFrame((codec.Response(0, 200), codec.Push("props", {"entityType": "order"})))
    text = codec.encode_server_frame(frame)
    assert text.startswith("a[")
    assert json.loads(text[1:]) == [{"s": 200, "i": 0}, {"e": "props", "d": {"entityType": "order"}}]
    assert codec.decode_server_frame(text) == frame


@given(request_id=st.integers(0, 2**31), status=st.sampled_from([200, 401, 404, 429]), data=JSONISH)
def test_data_frames_round_trip(request_id: int, status: int, data: object) -> None:
    frame = codec.DataFrame((codec.Response(request_id, status, data),))
    decoded = codec.decode_server_frame(codec.encode_server_frame(frame))
    assert isinstance(decoded, codec.DataFrame)
    assert decoded.items[0].request_id == request_id and decoded.items[0].status == status  # type: ignore[union-attr]


@given(
    endpoint=st.sampled_from(["order/placeorder", "user/syncrequest", "account/list"]),
    request_id=st.integers(0, 10**6),
    body=st.dictionaries(st.text(max_size=8), SIMPLE, max_size=4),
)
def test_requests_round_trip(endpoint: str, request_id: int, body: dict[str, object]) -> None:
    text = codec.encode_request(endpoint, request_id, "", body)
    decoded = codec.decode_client_frame(text)
    assert isinstance(decoded, codec.Request)
    assert (decoded.endpoint, decoded.request_id) == (endpoint, request_id)
    assert decoded.json_body() == (body or {}) or (not body and decoded.json_body() in (None, {}))


def test_pretty_printed_body_and_query() -> None:
    body = json.dumps({"accountId": 1, "symbol": "ESZ6"}, indent=2)  # one public client does this
    decoded = codec.decode_client_frame(f"order/placeorder\n7\nname=ESZ6&x=1\n{body}")
    assert isinstance(decoded, codec.Request)
    assert decoded.json_body() == {"accountId": 1, "symbol": "ESZ6"}
    assert decoded.query_params() == {"name": "ESZ6", "x": "1"}


def test_heartbeat_and_authorize_token_forms() -> None:
    assert isinstance(codec.decode_client_frame("[]"), codec.ClientHeartbeat)
    assert codec.encode_client_frame(codec.ClientHeartbeat()) == "[]"
    bare = codec.decode_client_frame("authorize\n0\n\nabc.def")
    quoted = codec.decode_client_frame('authorize\n0\n\n"abc.def"')
    assert isinstance(bare, codec.Request) and isinstance(quoted, codec.Request)
    assert codec.token_from_body(bare.body) == codec.token_from_body(quoted.body) == "abc.def"


@pytest.mark.parametrize("bad", ["", "x", "a{not json", "a{}", "order/placeorder"])
def test_bad_frames_raise(bad: str) -> None:
    with pytest.raises(codec.CodecError):
        if bad == "order/placeorder":
            codec.decode_client_frame(bad)
        else:
            codec.decode_server_frame(bad)
