"""The DTC codec: struct sizes from the header, round trips in both encodings, hostile input."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from copytrader.brokers.dtc.codec import (
    RAW_LIMIT,
    DecodeError,
    EncodeError,
    Message,
    StreamDecoder,
    decode_binary,
    decode_json,
    encode,
    encode_binary,
    encode_json,
    make,
)
from copytrader.brokers.dtc.messages import DBL_MAX, MESSAGES, SIZES, Encoding, Field, MsgType, spec_for

# sizeof() of each struct, measured with g++ from the version-8 header (docs/platforms/dtc-sources.md).
HEADER_SIZES = {
    MsgType.ENCODING_REQUEST: 16,
    MsgType.LOGON_REQUEST: 280,
    MsgType.LOGON_RESPONSE: 256,
    MsgType.HEARTBEAT: 16,
    MsgType.LOGOFF: 102,
    MsgType.SUBMIT_NEW_SINGLE_ORDER: 264,
    MsgType.SUBMIT_NEW_OCO_ORDER: 376,
    MsgType.CANCEL_ORDER: 68,
    MsgType.CANCEL_REPLACE_ORDER: 128,
    MsgType.ORDER_UPDATE: 688,
    MsgType.OPEN_ORDERS_REQUEST: 76,
    MsgType.CURRENT_POSITIONS_REQUEST: 40,
    MsgType.POSITION_UPDATE: 200,
    MsgType.TRADE_ACCOUNT_RESPONSE: 48,
    # measured with g++ here
    MsgType.SUBMIT_FLATTEN_POSITION_ORDER: 198,
    MsgType.HISTORICAL_ORDER_FILLS_REQUEST: 88,
    MsgType.HISTORICAL_ORDER_FILL_RESPONSE: 384,
    MsgType.OPEN_ORDERS_REJECT: 104,
    MsgType.ACCOUNT_BALANCE_REQUEST: 40,
    MsgType.ACCOUNT_BALANCE_REJECT: 104,
    MsgType.ACCOUNT_BALANCE_UPDATE: 216,
}


@pytest.mark.parametrize("msg_type", list(HEADER_SIZES))
def test_struct_sizes_match_the_header(msg_type: MsgType) -> None:
    assert MESSAGES[msg_type].size == HEADER_SIZES[msg_type]
    assert len(encode_binary(make(msg_type))) == HEADER_SIZES[msg_type]


def test_every_defined_message_has_a_measured_size() -> None:
    assert set(MESSAGES) == set(SIZES)


def offset_of(msg_type: MsgType, name: str) -> int:
    """Where ``name`` lands in the packed bytes: found by packing a marker value into it."""
    spec = MESSAGES[msg_type]
    f = spec.field(name)
    assert f is not None
    base = encode_binary(make(msg_type))
    marker: object = "\x7f" if f.kind == "s" else (1.0000000000000002 if f.kind == "f64" else 0x55)  # low byte set
    changed = encode_binary(make(msg_type, **{name: marker}))  # type: ignore[arg-type]  # per-kind marker
    return next(i for i, (a, b) in enumerate(zip(base, changed, strict=True)) if a != b)


@pytest.mark.parametrize(
    ("msg_type", "name", "offset"),
    [
        # offsets stated in the research notes from the compiled header
        (MsgType.SUBMIT_NEW_SINGLE_ORDER, "OrderType", 148),
        (MsgType.SUBMIT_NEW_SINGLE_ORDER, "Price1", 160),
        (MsgType.SUBMIT_NEW_SINGLE_ORDER, "Quantity", 176),
        (MsgType.SUBMIT_NEW_SINGLE_ORDER, "TimeInForce", 184),
        (MsgType.SUBMIT_NEW_SINGLE_ORDER, "GoodTillDateTime", 192),
        (MsgType.SUBMIT_NEW_SINGLE_ORDER, "IsAutomatedOrder", 200),
        (MsgType.SUBMIT_NEW_SINGLE_ORDER, "MaxShowQuantity", 256),
        # offsetof() measured with g++ here
        (MsgType.SUBMIT_NEW_OCO_ORDER, "ParentTriggerClientOrderID", 265),
        (MsgType.SUBMIT_NEW_OCO_ORDER, "PartialFillHandling", 352),
        (MsgType.SUBMIT_NEW_OCO_ORDER, "OffsetFromParent1", 360),
        (MsgType.ACCOUNT_BALANCE_UPDATE, "TradeAccount", 32),
        (MsgType.ACCOUNT_BALANCE_UPDATE, "Unsolicited", 89),
        (MsgType.ACCOUNT_BALANCE_UPDATE, "InfoText", 112),
        (MsgType.ACCOUNT_BALANCE_UPDATE, "TransactionIdentifier", 208),
    ],
)
def test_field_offsets_match_the_header(msg_type: MsgType, name: str, offset: int) -> None:
    assert offset_of(msg_type, name) == offset


def test_encoding_request_matches_the_documented_hex_example() -> None:
    # SC-AUTH: a binary ENCODING_REQUEST for protocol buffers, version 8.
    wire = encode_binary(make(MsgType.ENCODING_REQUEST, Encoding=int(Encoding.PROTOCOL_BUFFERS)))
    assert wire == bytes.fromhex("10000600 08000000 04000000 44544300")


def test_order_update_doubles_default_to_dbl_max() -> None:
    update = make(MsgType.ORDER_UPDATE)
    for name in ("Price1", "Price2", "OrderQuantity", "FilledQuantity", "RemainingQuantity"):
        assert update[name] == DBL_MAX
    for name in ("AverageFillPrice", "LastFillPrice", "LastFillQuantity"):
        assert update[name] == DBL_MAX
    assert make(MsgType.CANCEL_REPLACE_ORDER)["Price1IsSet"] == 1
    assert make(MsgType.OPEN_ORDERS_REQUEST)["RequestAllOrders"] == 1
    assert make(MsgType.LOGON_REQUEST)["ProtocolVersion"] == 8


def value_for(f: Field) -> st.SearchStrategy[object]:
    if f.kind == "s":
        return st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=(f.width - 1) // 4)
    if f.kind == "f64":
        return st.floats(allow_nan=False, allow_infinity=False)
    bounds = f.int_range()
    assert bounds is not None
    return st.integers(*bounds)


@st.composite
def messages(draw: st.DrawFn) -> Message:
    spec = draw(st.sampled_from(list(MESSAGES.values())))
    values = {f.name: draw(value_for(f)) for f in spec.fields}
    return make(spec.type, **values)  # type: ignore[arg-type]  # strategies give the field's kind


@pytest.mark.parametrize("encoding", [Encoding.BINARY, Encoding.JSON])
@pytest.mark.parametrize("msg_type", list(MESSAGES))
def test_every_message_round_trips_with_defaults(msg_type: MsgType, encoding: Encoding) -> None:
    message = make(msg_type)
    decoder = StreamDecoder(encoding)
    decoder.feed(encode(message, encoding))
    assert list(decoder) == [message]


@settings(max_examples=300, deadline=None)
@given(messages())
def test_every_message_round_trips_in_binary(message: Message) -> None:
    assert decode_binary(encode_binary(message)) == message


@settings(max_examples=300, deadline=None)
@given(messages())
def test_every_message_round_trips_in_json(message: Message) -> None:
    wire = encode_json(message)
    assert wire.endswith(b"\0") and wire.count(b"\0") == 1
    assert decode_json(wire[:-1]) == message


def test_json_carries_the_type_and_the_header_field_names() -> None:
    wire = encode_json(make(MsgType.LOGOFF, Reason="bye", DoNotReconnect=1))
    assert wire == b'{"Type":5,"Reason":"bye","DoNotReconnect":1}\0'


def test_json_missing_fields_take_the_header_defaults() -> None:
    decoded = decode_json(b'{"Type":301,"ServerOrderID":"7"}')
    assert isinstance(decoded, Message)
    assert decoded["ServerOrderID"] == "7" and decoded["Price1"] == DBL_MAX


def test_encoder_refuses_what_the_wire_cannot_carry() -> None:
    with pytest.raises(EncodeError, match="at most 31"):
        encode_binary(make(MsgType.CANCEL_ORDER, ClientOrderID="x" * 32))
    with pytest.raises(EncodeError, match="no field"):
        make(MsgType.CANCEL_ORDER, OrderID="1")
    with pytest.raises(EncodeError, match="out of range"):
        make(MsgType.LOGOFF, DoNotReconnect=256)
    with pytest.raises(EncodeError, match="must be an integer"):
        make(MsgType.LOGOFF, DoNotReconnect=True)


def test_unknown_type_skips_one_frame_and_keeps_framing() -> None:
    decoder = StreamDecoder()
    decoder.feed(struct.pack("<HH", 8, 999) + b"\1\2\3\4" + encode_binary(make(MsgType.HEARTBEAT)))
    first, second = list(decoder)
    assert isinstance(first, DecodeError) and first.kind == "unknown_type" and not first.fatal
    assert first.raw == struct.pack("<HH", 8, 999) + b"\1\2\3\4"
    assert isinstance(second, Message) and second.type is MsgType.HEARTBEAT


def test_wrong_size_for_a_known_type_is_an_error() -> None:
    short = encode_binary(make(MsgType.HEARTBEAT))[:12]
    decoder = StreamDecoder()
    decoder.feed(struct.pack("<H", 12) + short[2:])
    (error,) = list(decoder)
    assert isinstance(error, DecodeError) and error.kind == "bad_size" and "HEARTBEAT" in error.detail


def test_size_below_the_header_and_huge_sizes_are_fatal() -> None:
    for header in (struct.pack("<HH", 2, 3), struct.pack("<HH", 65535, 3)):
        decoder = StreamDecoder()
        decoder.feed(header + b"\0" * 100)
        (error,) = list(decoder)
        assert isinstance(error, DecodeError) and error.fatal and len(error.raw) <= RAW_LIMIT
        decoder.feed(encode_binary(make(MsgType.HEARTBEAT)))
        assert decoder.next() is None and decoder.broken


def test_truncated_frame_waits_for_the_rest() -> None:
    wire = encode_binary(make(MsgType.ORDER_UPDATE, ServerOrderID="5"))
    decoder = StreamDecoder()
    decoder.feed(wire[:300])
    assert decoder.next() is None
    decoder.feed(wire[300:])
    message = decoder.next()
    assert isinstance(message, Message) and message["ServerOrderID"] == "5"


def test_json_errors_skip_one_message() -> None:
    decoder = StreamDecoder(Encoding.JSON)
    decoder.feed(b'{"Type":"x"}\0not json\0[1]\0{"Type":3,"NumDroppedMessages":-1}\0{"Type":999}\0{"Type":3}\0')
    kinds = [item.kind if isinstance(item, DecodeError) else item.type for item in decoder]
    assert kinds == ["bad_json", "bad_json", "bad_json", "bad_field", "unknown_type", MsgType.HEARTBEAT]


def test_json_without_a_nul_is_fatal_past_the_limit() -> None:
    decoder = StreamDecoder(Encoding.JSON)
    decoder.feed(b"{" * 70000)
    assert decoder.next() == DecodeError("too_large", "no NUL within 65536 bytes", b"{" * RAW_LIMIT, fatal=True)
    decoder = StreamDecoder(Encoding.JSON)
    decoder.feed(b"{" * 70000 + b"\0")  # a NUL that comes too late does not make it a message
    error = decoder.next()
    assert isinstance(error, DecodeError) and error.kind == "too_large" and error.fatal


def test_encoding_switch_between_messages() -> None:
    # The handshake: ENCODING_RESPONSE in binary, then JSON in the same read.
    granted = make(MsgType.ENCODING_RESPONSE, Encoding=int(Encoding.JSON))
    logon = make(MsgType.LOGON_RESPONSE, Result=1, TradingIsSupported=1)
    decoder = StreamDecoder()
    decoder.feed(encode_binary(granted) + encode_json(logon))
    assert decoder.next() == granted
    decoder.encoding = Encoding.JSON
    assert decoder.next() == logon


@settings(max_examples=300, deadline=None)
@given(st.lists(messages(), max_size=6), st.sampled_from([Encoding.BINARY, Encoding.JSON]), st.data())
def test_stream_decoder_reassembles_any_chunking(msgs: list[Message], encoding: Encoding, data: st.DataObject) -> None:
    wire = b"".join(encode(m, encoding) for m in msgs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=8)))
    decoder = StreamDecoder(encoding)
    out: list[Message | DecodeError] = []
    for start, end in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        decoder.feed(wire[start:end])
        out.extend(decoder)
    assert out == msgs and decoder.pending == 0


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=2000), st.sampled_from([Encoding.BINARY, Encoding.JSON]))
def test_stream_decoder_never_crashes_on_garbage(data: bytes, encoding: Encoding) -> None:
    decoder = StreamDecoder(encoding)
    decoder.feed(data)
    for item in decoder:
        assert isinstance(item, Message | DecodeError)
        if isinstance(item, DecodeError):
            assert len(item.raw) <= RAW_LIMIT and item.detail


@settings(max_examples=300, deadline=None)
@given(messages(), st.integers(0, 687), st.integers(0, 255))
def test_corrupted_binary_frames_decode_or_error(message: Message, index: int, byte: int) -> None:
    wire = bytearray(encode_binary(message))
    wire[index % len(wire)] = byte
    decoder = StreamDecoder()
    decoder.feed(bytes(wire))
    for item in decoder:
        assert isinstance(item, Message | DecodeError)


def test_spec_lookup_of_unknown_type() -> None:
    assert spec_for(12345) is None


def test_tolerant_sizes_follow_the_headers_copy_rule() -> None:
    # CopyFrom: a shorter (older) message keeps later fields at their defaults...
    full = encode_binary(make(MsgType.ORDER_UPDATE, ServerOrderID="9", Price1=5000.25, LatestTransactionDateTime=2.5))
    cut = MESSAGES[MsgType.ORDER_UPDATE].size - 8  # without LatestTransactionDateTime
    older = struct.pack("<H", cut) + full[2:cut]
    decoder = StreamDecoder(exact_size=False)
    decoder.feed(
        older + struct.pack("<H", 20) + encode_binary(make(MsgType.HEARTBEAT, CurrentDateTime=7))[2:] + b"\1\2\3\4"
    )
    shorter, longer = list(decoder)
    assert isinstance(shorter, Message) and shorter["ServerOrderID"] == "9" and shorter["Price1"] == 5000.25
    assert shorter["LatestTransactionDateTime"] == 0.0
    # ...and a longer (newer) one is truncated to the fields we know.
    assert isinstance(longer, Message) and longer["CurrentDateTime"] == 7 and decoder.pending == 0
    strict = decode_binary(older)
    assert isinstance(strict, DecodeError) and strict.kind == "bad_size"
