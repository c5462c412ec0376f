"""Fuzzing every Tradovate decode entry point: garbage is one CodecError, never another error.

Server frames (``o``, ``h``, ``a[...]``, ``c[...]``), client request lines, REST answer bodies,
the REST answer readers (auth, accounts, orders, positions, contracts) and the entity pushes
the cache reads. Each either decodes or raises :class:`codec.CodecError` carrying the raw text
truncated (``BAD_ANSWER``); a bad item never takes a good one of the same frame with it.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from copytrader.brokers.errors import AuthenticationFailed, BrokerError
from copytrader.brokers.model import FillEvent
from copytrader.brokers.tradovate import answers, codec, parsing
from copytrader.brokers.tradovate import schemas as s
from copytrader.brokers.tradovate.state import EntityCache
from copytrader.brokers.wire import RAW_LIMIT

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TS = datetime(2026, 12, 1, 14, 30, tzinfo=UTC)
DEEP = "[" * 3000 + "]" * 3000  # past the recursion limit of any JSON reader here
#: JSON texts that are valid-looking but wrong: non-finite, overflowing, huge, deep, mistyped.
WEIRD_TEXT = st.sampled_from(
    [
        "NaN",
        "Infinity",
        "-Infinity",
        "1e999999",
        "-1e999999",
        "9" * 5000,
        "-" + "9" * 4400,
        "123456789012345678901234567890",
        "2.5",
        "-0",
        '"12"',
        '"abc"',
        '"NaN"',
        '"Infinity"',
        '""',
        "true",
        "false",
        "null",
        "[]",
        "{}",
        '{"a":[1,{"b":null}]}',
        DEEP,
        "[" * 500 + "1" + "]" * 500,
        '"' + "x" * 20_000 + '"',
    ]
)
SIMPLE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
JSON_VALUES = st.recursive(
    SIMPLE,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
#: A JSON text: a plain value, or one of the weird texts.
JSON_TEXT = st.one_of(JSON_VALUES.map(json.dumps), WEIRD_TEXT)


def assert_clear(exc: codec.CodecError) -> None:
    """The error the executor reports as BAD_ANSWER: its code, a message, the raw text cut short."""
    assert exc.code == "BAD_ANSWER"
    assert isinstance(exc, BrokerError) and isinstance(exc, ValueError)
    assert str(exc)
    assert isinstance(exc.raw, str) and len(exc.raw) <= RAW_LIMIT + 40


def server_frame_or_error(text: str) -> codec.ServerFrame | None:
    started = time.monotonic()
    try:
        frame = codec.decode_server_frame(text)
    except codec.CodecError as exc:
        assert_clear(exc)
        return None
    finally:
        assert time.monotonic() - started < 2.0, "decoding must never hang"
    for bad in frame.bad if isinstance(frame, codec.DataFrame) else ():
        assert_clear(bad)
    return frame


# --------------------------------------------------------------------------- server frames


@FUZZ
@given(st.one_of(st.text(), st.text(alphabet='oahc[]{}",:0123456789 \n-.eE')))
def test_arbitrary_text_is_a_frame_or_a_codec_error(text: str) -> None:
    server_frame_or_error(text)


@FUZZ
@given(prefix=st.sampled_from(["a", "c", "o", "h", "x", ""]), payload=JSON_TEXT)
def test_any_json_after_any_frame_letter_is_a_frame_or_a_codec_error(prefix: str, payload: str) -> None:
    server_frame_or_error(prefix + payload)


@FUZZ
@given(i=JSON_TEXT, status=JSON_TEXT, d=JSON_TEXT, event=JSON_TEXT)
def test_replies_and_pushes_with_wrong_types_are_read_or_refused(i: str, status: str, d: str, event: str) -> None:
    for text in (
        f'a[{{"i":{i},"s":{status},"d":{d}}}]',
        f'a[{{"e":{event},"d":{d}}}]',
        f'a[{{"e":"props","d":{{"entityType":{event},"entity":{d}}}}}]',
        f"c[{status},{event}]",
        f'a[{{"i":{i}}}]',
        f'a[{{"s":{status}}}]',
    ):
        frame = server_frame_or_error(text)
        if isinstance(frame, codec.DataFrame):
            for item in frame.items:
                if isinstance(item, codec.Response):
                    assert isinstance(item.status, int) and isinstance(item.request_id, int)
                else:
                    assert isinstance(item.event, str)
        elif isinstance(frame, codec.CloseFrame):
            assert isinstance(frame.code, int) and isinstance(frame.reason, str)


VALID_FRAMES = [
    codec.encode_server_frame(codec.DataFrame((codec.Response(7, 200, {"orderId": 42}),))),
    codec.encode_server_frame(
        codec.DataFrame(
            (codec.Push(s.PROPS, s.props(s.ENTITY_FILL, "Created", s.fill_entity(1, 2, 3, s.BUY, 1, 5000.25, TS))),)
        )
    ),
    codec.encode_server_frame(codec.CloseFrame(1000, "bye")),
]


@FUZZ
@given(frame=st.sampled_from(VALID_FRAMES), data=st.data())
def test_truncated_valid_frames_are_refused_not_crashed(frame: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(frame) - 1))
    server_frame_or_error(frame[:cut])


@FUZZ
@given(
    garbage=st.one_of(
        JSON_VALUES.filter(lambda v: not isinstance(v, dict)), st.dictionaries(st.sampled_from("xyz"), SIMPLE)
    )
)
def test_a_bad_item_never_takes_the_good_items_of_its_frame_with_it(garbage: Any) -> None:
    good = {"e": s.PROPS, "d": {"entityType": s.ENTITY_FILL, "entity": {"id": 9}}}
    frame = codec.decode_server_frame("a" + json.dumps([garbage, good, {"i": 3, "s": 200}]))
    assert isinstance(frame, codec.DataFrame)
    assert frame.items == (codec.Push(s.PROPS, good["d"]), codec.Response(3, 200))
    assert len(frame.bad) == 1
    assert_clear(frame.bad[0])


def test_huge_frames_are_decoded_or_refused_quickly_with_the_raw_text_cut_short() -> None:
    huge_push = "a" + json.dumps([{"e": "props", "d": {"blob": "x" * 2_000_000}}])
    frame = server_frame_or_error(huge_push)
    assert isinstance(frame, codec.DataFrame) and len(frame.items) == 1
    for garbage in ("a[" + "x" * 2_000_000, "c" + DEEP, "a" + DEEP, "a[" + "9" * 100_000 + "]"):
        with pytest.raises(codec.CodecError) as caught:
            codec.decode_server_frame(garbage)
        assert_clear(caught.value)
        assert caught.value.raw.startswith(garbage[:50])


@pytest.mark.parametrize("text", ["a[NaN]", "a[Infinity]", 'a[{"i":1,"s":200,"d":{"price":1e999999}}]', "c[NaN]"])
def test_non_finite_numbers_are_refused(text: str) -> None:
    with pytest.raises(codec.CodecError, match="non-finite|overflows"):
        codec.decode_server_frame(text)


# --------------------------------------------------------------------------- client frames


@FUZZ
@given(
    st.one_of(
        st.text(), st.builds(lambda a, b, c, d: f"{a}\n{b}\n{c}\n{d}", st.text(), JSON_TEXT, st.text(), JSON_TEXT)
    )
)
def test_client_lines_are_a_request_or_a_codec_error(text: str) -> None:
    try:
        frame = codec.decode_client_frame(text)
    except codec.CodecError as exc:
        assert_clear(exc)
        return
    if isinstance(frame, codec.Request):
        frame.json_body()  # a body that is not JSON is its text, never an error
        frame.query_params()
        codec.token_from_body(frame.body)


# --------------------------------------------------------------------------- REST answers


@FUZZ
@given(st.one_of(st.binary(max_size=200), JSON_TEXT.map(str.encode), st.just(b"\xff\xfe{"), st.just(DEEP.encode())))
def test_rest_bodies_are_json_or_a_codec_error(body: bytes) -> None:
    try:
        codec.decode_answer(body)
    except codec.CodecError as exc:
        assert_clear(exc)


GOOD_TOKEN = {"accessToken": "t", "expirationTime": "2026-12-01T15:00:00.000Z", "userId": 5, "name": "u"}
GOOD_PLACE = {"orderId": 42}
GOOD_ACCOUNTS = [{"id": 1, "name": "DEMO1"}, {"id": 2, "name": "DEMO2"}]
GOOD_CONTRACT = {"id": 3, "name": "ESZ6"}
GOOD_POSITIONS = [{"id": 1, "accountId": 1, "contractId": 3, "netPos": -2}]


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
    return draw(st.one_of(JSON_VALUES, st.sampled_from(["NaN", "Infinity", "1e999999", "12", "", -1, 0, 2.5, True])))


def mutations(answer: Any) -> st.SearchStrategy[Any]:
    """The answer as sent, garbage instead of it, or the answer with one field broken."""
    return st.one_of(st.just(answer), JSON_VALUES, mutated(answer))


@FUZZ
@given(token=mutations(GOOD_TOKEN), place=mutations(GOOD_PLACE), listed=mutations(GOOD_ACCOUNTS))
def test_auth_order_and_account_answers_are_read_or_refused(token: Any, place: Any, listed: Any) -> None:
    try:
        grant = answers.token_grant(token)
        assert isinstance(grant.token, str) and (grant.user_id is None or isinstance(grant.user_id, int))
    except AuthenticationFailed:
        pass
    except codec.CodecError as exc:
        assert_clear(exc)
    try:
        assert isinstance(answers.order_id(place), int)
    except codec.CodecError as exc:
        assert_clear(exc)
    try:
        assert all(isinstance(v, int) for v in answers.accounts(listed).values())
    except codec.CodecError as exc:
        assert_clear(exc)


@FUZZ
@given(found=mutations(GOOD_CONTRACT), positions=mutations(GOOD_POSITIONS))
def test_contract_and_position_answers_are_read_or_refused(found: Any, positions: Any) -> None:
    try:
        answers.contract(found)
    except codec.CodecError as exc:
        assert_clear(exc)
    try:
        assert all(isinstance(k, int) and isinstance(v, int) for k, v in answers.positions(positions).items())
    except codec.CodecError as exc:
        assert_clear(exc)


def test_good_answers_read_as_before() -> None:
    grant = answers.token_grant(GOOD_TOKEN)
    assert (grant.token, grant.user_id) == ("t", 5)
    assert answers.order_id(GOOD_PLACE) == 42
    assert answers.accounts(GOOD_ACCOUNTS) == {"DEMO1": 1, "DEMO2": 2}
    assert answers.contract(GOOD_CONTRACT) == (3, "ESZ6")
    assert answers.positions(GOOD_POSITIONS) == {3: -2}
    with pytest.raises(AuthenticationFailed, match="bad password"):
        answers.token_grant({"errorText": "bad password"})


# --------------------------------------------------------------------------- entity pushes

ACCOUNT, CONTRACT, ORDER = 1, 3, 20
ENTITIES = {
    s.ENTITY_COMMAND: s.command_entity(10, ORDER, "cl-1", s.CMD_NEW, s.CMD_AT_EXECUTION, TS),
    s.ENTITY_ORDER: s.order_entity(ORDER, ACCOUNT, CONTRACT, s.BUY, s.WORKING, TS),
    s.ENTITY_VERSION: s.order_version_entity(30, ORDER, 2, s.LIMIT, 5000.25, None, s.TIF_DAY),
    s.ENTITY_COMMAND_REPORT: s.command_report_entity(40, 10, s.CMD_AT_EXECUTION, s.WORKING, TS),
    s.ENTITY_EXEC: s.execution_report_entity(50, 10, ACCOUNT, CONTRACT, ORDER, "New", s.WORKING, s.BUY, TS),
    s.ENTITY_FILL: s.fill_entity(60, ORDER, CONTRACT, s.BUY, 1, 5000.25, TS),
    s.ENTITY_POSITION: s.position_entity(70, ACCOUNT, CONTRACT, 1, 5000.25, 1, 5000.25, 0, 0.0, TS),
}


async def symbol(contract_id: int, placed: str | None = None) -> str:
    return f"C{contract_id}"


@FUZZ
@given(kind=st.sampled_from(sorted(ENTITIES)), data=st.data())
async def test_garbage_entities_are_reported_and_the_next_fill_still_counts(kind: str, data: st.DataObject) -> None:
    cache = EntityCache({ACCOUNT: "f1"}, symbol)
    reported: list[BrokerError] = []
    cache.on_protocol_error = reported.append
    for setup in (s.ENTITY_COMMAND, s.ENTITY_ORDER, s.ENTITY_VERSION):
        assert await cache.apply(setup, ENTITIES[setup]) == []
    garbage = data.draw(mutations(ENTITIES[kind]))
    events = await cache.apply(kind, garbage)  # never raises
    for event in events:
        if isinstance(event, FillEvent):  # a fill read from garbage is still a sane fill
            assert event.quantity > 0 and event.price.is_finite()
    for exc in reported:
        assert isinstance(exc, (codec.CodecError, parsing.UnknownEnumValue))
        if isinstance(exc, codec.CodecError):
            assert_clear(exc)
    fill = s.fill_entity(61, ORDER, CONTRACT, s.BUY, 1, 5000.5, TS)
    after = await cache.apply(s.ENTITY_FILL, fill)
    assert [(e.fill_id, e.price) for e in after if isinstance(e, FillEvent)] == [("61", Decimal("5000.5"))]


@pytest.mark.parametrize("price", ["NaN", "Infinity", "-Infinity", "abc", True, [1], {"p": 1}])
async def test_a_fill_with_an_unreadable_price_is_reported_not_emitted(price: Any) -> None:
    cache = EntityCache({ACCOUNT: "f1"}, symbol)
    reported: list[BrokerError] = []
    cache.on_protocol_error = reported.append
    await cache.apply(s.ENTITY_ORDER, ENTITIES[s.ENTITY_ORDER])
    assert await cache.apply(s.ENTITY_FILL, {**ENTITIES[s.ENTITY_FILL], "price": price}) == []
    assert len(reported) == 1 and isinstance(reported[0], codec.CodecError)
    assert '"id": 60' in reported[0].raw


@FUZZ
@given(snapshot=mutations({key: [] for key in ("orders", "fills", "executionReports", "positions", "commands")}))
async def test_garbage_sync_snapshots_are_reported_never_raised(snapshot: Any) -> None:
    cache = EntityCache({ACCOUNT: "f1"}, symbol)
    reported: list[BrokerError] = []
    cache.on_protocol_error = reported.append
    if isinstance(snapshot, dict):
        await cache.apply_snapshot(snapshot, emit=True)
    for exc in reported:
        assert isinstance(exc, (codec.CodecError, parsing.UnknownEnumValue))


@pytest.mark.parametrize("value", [1e300, 2**63, -(2**63) - 1, 2.5, "7", True, None])
def test_ids_are_64_bit_integers(value: Any) -> None:
    with pytest.raises(codec.CodecError) as caught:
        answers.order_id({"orderId": value})
    assert_clear(caught.value)
    assert answers.order_id({"orderId": 2**63 - 1}) == 2**63 - 1 and answers.order_id({"orderId": 7.0}) == 7
