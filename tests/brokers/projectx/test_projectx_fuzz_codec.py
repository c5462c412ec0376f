"""Fuzzing every ProjectX decode entry point: garbage is one ProtocolError, never another error.

SignalR JSON hub records (handshake, invocation, completion, ping, close; split and joined
across reads), REST answer bodies, the answer readers (accounts, orders, errors) and the
payloads the tracker turns into events. Each either decodes or raises
:class:`codec.ProtocolError` carrying the raw text truncated (``BAD_ANSWER``); with ``on_bad`` a
bad record is reported and the records after it still come out.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from copytrader.brokers.errors import BrokerError
from copytrader.brokers.model import FillEvent, OrderStatus, OrderType, Side
from copytrader.brokers.projectx import answers, codec, parsing
from copytrader.brokers.projectx import schemas as px
from copytrader.brokers.projectx.tracking import Tracker
from copytrader.brokers.projectx.transport import token_expiry
from copytrader.brokers.wire import RAW_LIMIT

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RS = codec.RS
TS = datetime(2026, 12, 1, 14, 30, tzinfo=UTC)
DEEP = "[" * 3000 + "]" * 3000  # past the recursion limit of any JSON reader here
WEIRD_TEXT = st.sampled_from(
    [
        "NaN",
        "Infinity",
        "-Infinity",
        "1e999999",
        "9" * 5000,
        "123456789012345678901234567890",
        "2.5",
        '"12"',
        '"abc"',
        '"NaN"',
        "true",
        "null",
        "[]",
        "{}",
        DEEP,
        '"' + "x" * 20_000 + '"',
    ]
)
SIMPLE = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    SIMPLE,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
JSON_TEXT = st.one_of(JSON_VALUES.map(json.dumps), WEIRD_TEXT)


def assert_clear(exc: codec.ProtocolError) -> None:
    """The error the executor reports as BAD_ANSWER: its code, a message, the raw text cut short."""
    assert exc.code == "BAD_ANSWER"
    assert isinstance(exc, BrokerError) and isinstance(exc, ValueError)
    assert str(exc)
    assert isinstance(exc.raw, str) and len(exc.raw) <= RAW_LIMIT + 40


def feed_all(
    decoder: codec.Decoder, chunks: list[str | bytes]
) -> tuple[list[codec.Message], list[codec.ProtocolError]]:
    bad: list[codec.ProtocolError] = []
    messages: list[codec.Message] = []
    started = time.monotonic()
    for chunk in chunks:
        messages += decoder.feed(chunk, on_bad=bad.append)
    assert time.monotonic() - started < 2.0, "decoding must never hang"
    for exc in bad:
        assert_clear(exc)
    return messages, bad


# --------------------------------------------------------------------------- hub records


@FUZZ
@given(st.lists(st.one_of(st.text(), st.binary(max_size=50), JSON_TEXT.map(lambda t: t + RS)), max_size=6))
def test_arbitrary_reads_are_messages_or_reported_records(chunks: list[str | bytes]) -> None:
    messages, _ = feed_all(codec.Decoder(), chunks)
    for message in messages:
        assert isinstance(message.type, codec.MessageType)
        assert all(isinstance(x, (str, type(None))) for x in (message.target, message.invocation_id, message.error))


@FUZZ
@given(st.lists(st.one_of(st.text(), JSON_TEXT.map(lambda t: t + RS)), max_size=4))
def test_without_on_bad_a_bad_record_raises_only_protocol_error(chunks: list[str]) -> None:
    decoder = codec.Decoder()
    for chunk in chunks:
        try:
            decoder.feed(chunk)
        except codec.ProtocolError as exc:
            assert_clear(exc)


@FUZZ
@given(
    kind=st.one_of(JSON_TEXT, st.sampled_from(["1", "3", "6", "7", "99", "-1", "2"])),
    target=JSON_TEXT,
    arguments=JSON_TEXT,
    invocation_id=JSON_TEXT,
    error=JSON_TEXT,
)
def test_records_with_wrong_types_are_read_or_refused(
    kind: str, target: str, arguments: str, invocation_id: str, error: str
) -> None:
    records = [
        f'{{"type":{kind},"target":{target},"arguments":{arguments}}}',
        f'{{"type":{kind},"invocationId":{invocation_id},"result":{arguments},"error":{error}}}',
        f'{{"type":{kind},"error":{error},"allowReconnect":{target}}}',
        f'{{"type":{kind}}}',
    ]
    feed_all(codec.Decoder(), [RS.join(records) + RS])


@FUZZ
@given(
    handshake=st.one_of(JSON_TEXT, st.just('{"protocol":"json","version":1}')),
    side=st.sampled_from(["request", "response"]),
)
def test_a_bad_handshake_raises_protocol_error_even_with_on_bad(handshake: str, side: str) -> None:
    decoder = codec.Decoder(expect_handshake=side)
    try:
        decoder.feed(handshake + RS, on_bad=lambda exc: pytest.fail(f"handshake errors are not skipped: {exc}"))
    except codec.ProtocolError as exc:
        assert_clear(exc)
        assert not decoder.handshake_done


GOOD_TRADE = {
    "id": 77,
    "accountId": 1,
    "contractId": "CON.F.US.EP.Z26",
    "creationTimestamp": "2026-12-01T14:30:00.1234567+00:00",
    "price": 6335.25,
    "profitAndLoss": None,
    "fees": 1.4,
    "side": 0,
    "size": 1,
    "voided": False,
    "orderId": 5,
}
GOOD_RECORDS = [
    codec.invocation(px.EVENT_TRADE, [GOOD_TRADE]),
    codec.completion("3", result=None, has_result=True),
    codec.ping(),
    codec.close("bye", allow_reconnect=True),
]


@FUZZ
@given(garbage=st.one_of(st.text().filter(lambda t: RS not in t), JSON_TEXT), data=st.data())
def test_a_bad_record_never_takes_the_records_after_it_split_or_joined(garbage: str, data: st.DataObject) -> None:
    wire = garbage + RS + "".join(GOOD_RECORDS)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=5)))
    chunks = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)]
    messages, bad = feed_all(codec.Decoder(), [c.encode() if i % 2 else c for i, c in enumerate(chunks)])
    assert [m.type for m in messages[-4:]] == [
        codec.MessageType.INVOCATION,
        codec.MessageType.COMPLETION,
        codec.MessageType.PING,
        codec.MessageType.CLOSE,
    ]
    assert messages[-4].arguments == (GOOD_TRADE,)
    assert len(messages) + len(bad) <= 5


@FUZZ
@given(record=st.sampled_from(GOOD_RECORDS), data=st.data())
def test_truncated_records_are_refused_not_crashed(record: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(record) - 2))
    decoder = codec.Decoder()
    messages, bad = feed_all(decoder, [record[:cut] + RS])
    assert len(messages) + len(bad) == 1


def test_huge_records_decode_or_are_refused_quickly_with_the_raw_text_cut_short() -> None:
    big = codec.invocation(px.EVENT_TRADE, [{**GOOD_TRADE, "blob": "x" * 2_000_000}])
    messages, bad = feed_all(codec.Decoder(), [big])
    assert len(messages) == 1 and not bad
    for garbage in ('{"type":1,' + "x" * 2_000_000, DEEP, "[" + "9" * 100_000 + "]", '{"type":NaN}'):
        messages, bad = feed_all(codec.Decoder(), [garbage + RS + codec.ping()])
        assert [m.type for m in messages] == [codec.MessageType.PING]
        assert len(bad) == 1 and bad[0].raw.startswith(garbage[:50])


def test_unknown_message_types_are_skipped_as_signalr_clients_do() -> None:
    messages, bad = feed_all(codec.Decoder(), ['{"type":42,"x":1}' + RS + codec.ping()])
    assert [m.type for m in messages] == [codec.MessageType.PING] and not bad


# --------------------------------------------------------------------------- REST answers


@FUZZ
@given(st.one_of(st.binary(max_size=200), JSON_TEXT.map(str.encode), st.just(b"\xff\xfe{")))
def test_rest_bodies_are_objects_or_a_protocol_error(body: bytes) -> None:
    try:
        assert isinstance(answers.decode(body, "/api/Order/place"), dict)
    except codec.ProtocolError as exc:
        assert_clear(exc)


@st.composite
def mutated(draw: st.DrawFn, value: Any) -> Any:
    """``value`` with one field replaced by garbage or removed, at any depth."""
    if isinstance(value, dict) and value and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(value)))
        copy = dict(value)
        if draw(st.booleans()):
            del copy[key]
        else:
            copy[key] = draw(mutated(value[key]))
        return copy
    if isinstance(value, list) and value and draw(st.booleans()):
        index = draw(st.integers(0, len(value) - 1))
        return [*value[:index], draw(mutated(value[index])), *value[index + 1 :]]
    return draw(st.one_of(JSON_VALUES, st.sampled_from(["NaN", "Infinity", "12", "", -1, 0, 2.5, True])))


def mutations(answer: Any) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(answer), JSON_VALUES, mutated(answer))


GOOD_ACCOUNTS = {"accounts": [{"id": 1, "name": "PRAC-1", "balance": 50000}], "success": True, "errorCode": 0}
GOOD_PLACE = {"orderId": 9056, "success": True, "errorCode": 0, "errorMessage": None}


@FUZZ
@given(listed=mutations(GOOD_ACCOUNTS), placed=mutations(GOOD_PLACE))
def test_account_and_order_answers_are_read_or_refused(listed: Any, placed: Any) -> None:
    for read, answer in (
        (answers.accounts, listed),
        (answers.order_id, placed),
        (answers.error_code, placed),
        (lambda data: answers.rows(data, "orders"), placed),
    ):
        if not isinstance(answer, dict):
            continue  # answers.decode refuses a non-object before any reader sees it
        try:
            read(answer)
        except codec.ProtocolError as exc:
            assert_clear(exc)


def test_good_answers_read_as_before() -> None:
    assert answers.accounts(GOOD_ACCOUNTS) == {"PRAC-1": 1}
    assert answers.order_id(GOOD_PLACE) == "9056"
    assert answers.error_code({"errorCode": 2}) == 2


# --------------------------------------------------------------------------- hub payloads


GOOD_ORDER = parsing.order_payload(
    order_id=5,
    account_id=1,
    contract_id="CON.F.US.EP.Z26",
    created=TS,
    updated=TS,
    status=OrderStatus.WORKING,
    order_type=OrderType.LIMIT,
    side=Side.BUY,
    size=2,
    limit_price=Decimal("6335.25"),
    stop_price=None,
    fill_volume=0,
    filled_price=None,
    custom_tag="cl-1",
)
GOOD_POSITION = parsing.position_payload(
    position_id=3, account_id=1, contract_id="CON.F.US.EP.Z26", created=TS, net=1, average=Decimal("6335.25")
)


def tracker() -> Tracker:
    return Tracker({1: "f1"}, parsing.symbol_for_contract)


@FUZZ
@given(
    kind=st.sampled_from(["order", "trade", "position"]),
    data=st.data(),
)
def test_garbage_payloads_raise_protocol_error_and_the_next_fill_still_counts(kind: str, data: st.DataObject) -> None:
    book = tracker()
    read, good = {
        "order": (book.order_event, GOOD_ORDER),
        "trade": (book.fill_event, GOOD_TRADE),
        "position": (book.position_event, GOOD_POSITION),
    }[kind]
    garbage = data.draw(mutations(json.loads(codec.dumps(good))))
    try:
        event = read(garbage)
    except codec.ProtocolError as exc:
        assert_clear(exc)
    else:
        if isinstance(event, FillEvent):
            assert event.quantity > 0 and event.price.is_finite()
    fill = book.fill_event({**GOOD_TRADE, "id": 78})
    assert fill is not None and (fill.fill_id, fill.price) == ("78", Decimal("6335.25"))


def test_a_trade_that_cannot_be_read_is_not_marked_seen() -> None:
    book = tracker()
    with pytest.raises(codec.ProtocolError) as caught:
        book.fill_event({**GOOD_TRADE, "price": "NaN"})
    assert '"id":77' in caught.value.raw
    fill = book.fill_event(GOOD_TRADE)  # the good copy (e.g. from reconciliation) still counts
    assert fill is not None and fill.fill_id == "77" and fill.cumulative_quantity == 1


def test_an_overlong_record_without_a_separator_is_reported_and_dropped_up_to_its_end() -> None:
    decoder = codec.Decoder(max_record=1000)
    messages, bad = feed_all(decoder, ['{"type":1,"blob":"' + "x" * 600, "x" * 600, "x" * 600 + RS + codec.ping()])
    assert [m.type for m in messages] == [codec.MessageType.PING]
    assert len(bad) == 1 and "longer than 1000" in str(bad[0])
    assert decoder.buffered == 0


@FUZZ
@given(tail=st.text(min_size=1).filter(lambda t: RS not in t))
def test_a_websocket_frame_without_its_separator_is_one_bad_record_not_the_start_of_the_next(tail: str) -> None:
    decoder = codec.Decoder()
    bad_records: list[codec.ProtocolError] = []
    messages = decoder.feed(codec.ping() + tail, on_bad=bad_records.append, whole=True)
    messages += decoder.feed(GOOD_RECORDS[0], on_bad=bad_records.append, whole=True)
    assert [m.type for m in messages] == [codec.MessageType.PING, codec.MessageType.INVOCATION]
    assert len(bad_records) == 1 and bad_records[0].raw.startswith(tail[:50])


@FUZZ
@given(claims=st.one_of(JSON_TEXT, st.binary(max_size=40).map(lambda b: b.decode("latin-1"))), exp=JSON_TEXT)
def test_token_expiry_reads_any_token_or_falls_back(claims: str, exp: str) -> None:
    for body in (claims, f'{{"exp":{exp}}}'):
        token = "h." + base64.urlsafe_b64encode(body.encode("utf-8", "surrogatepass")).decode().rstrip("=") + ".s"
        expiry = token_expiry(token, 60.0)
        assert isinstance(expiry, float) and expiry == expiry and abs(expiry) != float("inf")


@pytest.mark.parametrize("value", [1e300, 2**63, -(2**63) - 1, 2.5, "7", True, None])
def test_ids_are_64_bit_integers(value: Any) -> None:
    with pytest.raises(codec.ProtocolError) as caught:
        answers.order_id({"orderId": value})
    assert_clear(caught.value)
    assert answers.order_id({"orderId": 2**63 - 1}) == str(2**63 - 1) and answers.order_id({"orderId": 7.0}) == "7"
