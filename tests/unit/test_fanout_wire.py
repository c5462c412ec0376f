"""The fan-out's cheap intent construction and batch encoding against Faust's own: the same
record from the same values (or Faust's own path when a value would be coerced), and the same
bytes on ``orders.requests``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from copytrader.agents.fanout.intent_build import build_intent
from copytrader.agents.shared.outbox import INTENT_PARTITIONS, batch_intents, encode_intents
from copytrader.core.records import IntentBatch, OrderIntent, RecordError
from copytrader.core.topics import partition_for

texts = st.text(min_size=1, max_size=24)  # any unicode: orjson and Faust must escape alike
#: Positive, within the records' digit bounds, with every exponent form (``1.25``, ``1E+2``).
prices = st.none() | st.builds(
    lambda digits, exponent, normal: (
        Decimal(digits).scaleb(exponent).normalize() if normal else Decimal(digits).scaleb(exponent)
    ),
    st.integers(1, 10**8),
    st.integers(-6, 2),
    st.booleans(),
).filter(lambda d: d <= 10**6)
stamps = st.dictionaries(st.text(min_size=1, max_size=12), st.floats(min_value=0, max_value=4e9), max_size=6)


@st.composite
def intent_fields(draw: st.DrawFn) -> dict[str, Any]:
    """Values as the planner passes them, every field's kind of value included."""
    action = draw(st.sampled_from(["place", "modify", "cancel", "flatten"]))
    order_type = draw(st.sampled_from(["market", "limit", "stop", "stop_limit"]))
    limit = draw(prices)
    stop = draw(prices)
    if action == "place" and order_type in ("limit", "stop_limit") and limit is None:
        limit = Decimal("1.25")
    if action == "place" and order_type in ("stop", "stop_limit") and stop is None:
        stop = Decimal("1.5E+2")
    fields: dict[str, Any] = {
        "client_order_id": draw(texts),
        "signal_id": draw(texts),
        "account_id": draw(texts),
        "platform": draw(st.sampled_from(["paper", "tradovate", ""])),
        "leader_account": draw(texts),
        "action": action,
        "symbol": draw(st.sampled_from(["ESZ6", "MNQZ6", "6EZ6"])),
        "side": draw(st.sampled_from(["buy", "sell"])),
        "quantity": draw(st.integers(1, 1000)),
        "order_type": order_type,
        "limit_price": limit,
        "stop_price": stop,
        "target_client_order_id": draw(texts) if action in ("modify", "cancel") else draw(st.none() | texts),
        "leader_symbol": draw(st.sampled_from(["", "ES"])),
        "leader_quantity": draw(st.integers(0, 1000)),
        "stamps": draw(stamps),
        "reference_price": draw(prices),
        "band_ticks": draw(st.none() | st.integers(0, 100)),
        "band_touch": draw(prices),
        "stale_after_s": draw(st.none() | st.floats(min_value=0.5, max_value=3600)),
        "reduces_position": draw(st.booleans()),
    }
    # a few fields left to their defaults, as the planner may
    for name in draw(st.sets(st.sampled_from(["leader_symbol", "band_ticks", "stale_after_s", "stamps"]))):
        del fields[name]
    return fields


def assert_same(fast: OrderIntent, faust: OrderIntent) -> None:
    assert fast == faust
    assert fast.__dict__ == faust.__dict__
    assert list(fast.__dict__) == list(faust.__dict__)
    assert fast.dumps() == faust.dumps()
    assert {k: type(v) for k, v in fast.__dict__.items()} == {k: type(v) for k, v in faust.__dict__.items()}


@settings(max_examples=300, deadline=None)
@given(intent_fields())
def test_build_intent_is_faust_init(fields: dict[str, Any]) -> None:
    assert_same(build_intent(**fields), OrderIntent(**fields))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("stale_after_s", 5),  # an int where a float belongs: Faust makes it 5.0
        ("quantity", True),  # a bool is not an int here: Faust's int() makes it 1
        ("leader_quantity", 2.0),
        ("limit_price", "1.25"),  # text where a Decimal belongs: Faust's Decimal()
        ("reduces_position", 1),
    ],
)
def test_values_faust_would_coerce_take_faust_path(name: str, value: object) -> None:
    fields = {**BASE, name: value}
    fast, faust = build_intent(**fields), OrderIntent(**fields)
    assert_same(fast, faust)
    assert type(fast.__dict__[name]) is type(faust.__dict__[name])


class Text(str):
    """A str subclass (an enum's value would be one): Faust keeps it as given."""


def test_str_subclass_takes_faust_path() -> None:
    fields = {**BASE, "account_id": Text("f1")}
    assert_same(build_intent(**fields), OrderIntent(**fields))


def test_defaults_are_never_shared() -> None:
    fields = {k: v for k, v in BASE.items() if k != "stamps"}
    first, second = build_intent(**fields), build_intent(**fields)
    first.stamps["x"] = 1.0
    assert second.stamps == {}
    assert OrderIntent._options.defaults["stamps"] == {}


def test_refusals_are_the_records_own() -> None:
    with pytest.raises(RecordError, match="quantity"):
        build_intent(**{**BASE, "quantity": 0})
    with pytest.raises(RecordError, match="stale_after_s"):
        build_intent(**{**BASE, "stale_after_s": float("nan")})
    missing = {k: v for k, v in BASE.items() if k != "account_id"}
    with pytest.raises(TypeError) as fast_error:
        build_intent(**missing)
    with pytest.raises(TypeError) as faust_error:
        OrderIntent(**missing)
    assert str(fast_error.value) == str(faust_error.value)
    with pytest.raises(TypeError):
        build_intent(**BASE, not_a_field=1)


def encode_intent_batch(batch: IntentBatch) -> bytes:
    """What the outbox sends for ``batch``: its fields through :func:`encode_intents`."""
    return encode_intents(batch.batch_id, batch.intents, batch.appended)


BASE: dict[str, Any] = {
    "client_order_id": "CTABC",
    "signal_id": "L:1:new",
    "account_id": "f1",
    "platform": "paper",
    "leader_account": "L",
    "action": "place",
    "symbol": "ESZ6",
    "side": "buy",
    "quantity": 1,
    "stamps": {"detected": 1.5e9},
}


@settings(max_examples=200, deadline=None)
@given(st.lists(intent_fields(), min_size=1, max_size=6), texts, st.none() | st.floats(0, 4e9))
def test_encode_intent_batch_is_faust_dumps(
    fields: list[dict[str, Any]], batch_id: str, appended: float | None
) -> None:
    batch = IntentBatch(batch_id=batch_id, intents=[OrderIntent(**f) for f in fields], appended=appended)
    assert encode_intent_batch(batch) == batch.dumps()


def test_encoded_batch_decodes_to_the_same_batch() -> None:
    batch = IntentBatch(batch_id="s|p1", intents=[OrderIntent(**BASE), build_intent(**{**BASE, "account_id": "f2"})])
    assert IntentBatch.loads(encode_intent_batch(batch)) == batch


@given(st.lists(texts, min_size=1, max_size=30, unique=True))
def test_batches_by_partition_of_the_account(accounts: list[str]) -> None:
    intents = [OrderIntent(**{**BASE, "account_id": a}) for a in accounts]
    batches = batch_intents("sig", intents)
    for partition, batch in batches.items():
        assert batch.batch_id == f"sig|p{partition}"
        assert all(partition_for(i.account_id, INTENT_PARTITIONS) == partition for i in batch.intents)
    assert sorted(i.account_id for b in batches.values() for i in b.intents) == sorted(accounts)
