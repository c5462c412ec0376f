"""Fuzzing: garbage into the codec and into a live adapter's report path gives a clear error
(FixDecodeError, or a reported ConnectionEvent), never a crash or an unexpected exception."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from copytrader.brokers.base import SessionConfig
from copytrader.brokers.fix import messages as m
from copytrader.brokers.fix.adapter import FixAdapter
from copytrader.brokers.fix.application import SessionKey
from copytrader.brokers.fix.codec import SOH, FixDecodeError, parse, serialize
from copytrader.brokers.model import ConnectionEvent

TAGS = [1, 6, 11, 14, 17, 19, 20, 31, 32, 35, 37, 38, 39, 40, 41, 44, 54, 55, 58, 99, 102, 103, 150, 151, 379, 434]
VALUES = st.one_of(
    st.sampled_from(["", "0", "1", "2", "8", "F", "H", "G", "I", "Y", "-1", "1e999", "NaN", "1.5", "C1", "ESZ6"]),
    st.text(max_size=12),
)
FIELDS = st.lists(st.tuples(st.sampled_from(TAGS), VALUES), max_size=20)


@given(st.text(max_size=200))
def test_parse_of_any_text_is_a_message_or_a_decode_error(raw: str) -> None:
    try:
        message = parse(raw)
    except FixDecodeError:
        return
    assert message.msg_type


@given(FIELDS, st.sampled_from(["FIX.4.2", "FIX.4.4"]))
def test_reading_any_report_is_an_event_or_a_decode_error(fields: list[tuple[int, str]], version: str) -> None:
    raw = serialize([(35, "8"), *[(t, v.replace(SOH, "")) for t, v in fields if t != 35]])
    try:
        message = parse(raw)
        m.report_kind(version, message)
        m.order_event(message, "A", None)
        m.fill_event(message, "A", None)
    except FixDecodeError:
        pass


def adapter(tmp: Path, version: str) -> FixAdapter:
    return FixAdapter(
        SessionConfig(
            platform="fix",
            session_id="fuzz",
            accounts={"A": "ACC1"},
            endpoint="fix://127.0.0.1:9",
            options={"fix_version": version, "sender_comp_id": "ME", "target_comp_id": "THEM", "store_dir": str(tmp)},
        )
    )


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(FIELDS, st.sampled_from(["8", "9", "j", "3"]), st.sampled_from(["FIX.4.2", "FIX.4.4"]))
def test_the_adapter_survives_any_message(
    tmp_path: Path, fields: list[tuple[int, str]], msg_type: str, version: str
) -> None:
    """What the engine hands over (it checked only framing) never escapes the callback."""
    fixer = adapter(tmp_path / version, version)
    events = fixer.events()
    fixer.book.record_new("A", "C1", "C1", m.OrderTerms("ACC1", "ESZ6", m.Side.BUY, 1, m.OrderType.MARKET))
    raw = serialize([(35, msg_type), *[(t, v.replace(SOH, "")) for t, v in fields if t != 35]])
    key = SessionKey(version, "ME", "THEM")
    fixer.on_app(key, raw)
    fixer.on_admin(key, raw)
    fixer.on_app(key, "garbage" + raw)
    reported = [e for e in _drain(events) if isinstance(e, ConnectionEvent)]
    assert all(e.reason and e.reason.startswith("fix: ") for e in reported)


def _drain(subscription: object) -> list[object]:
    queue = subscription.queue  # type: ignore[attr-defined]
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items
