"""Record validation: bad input is refused with the field's name, good input round-trips."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from copytrader.core.records import Execution, OrderIntent, RecordError, TradeSignal
from copytrader.core.signals import decode_signal


def signal(**kw: object) -> TradeSignal:
    base: dict[str, object] = dict(
        signal_id="L:1:new", leader_account="L", platform="paper", symbol="ESZ6", side="buy", quantity=2
    )
    return TradeSignal(**{**base, **kw})


def test_round_trip_keeps_decimal_prices_and_utc_times() -> None:
    original = signal(order_type="limit", limit_price=Decimal("5001.25"), stamps={"detected": 1.5})
    copy = TradeSignal.loads(original.dumps())
    assert copy.limit_price == Decimal("5001.25") and isinstance(copy.limit_price, Decimal)
    assert copy.occurred_at.tzinfo is not None and copy.occurred_at.utcoffset() == timedelta(0)
    assert copy.stamps == {"detected": 1.5}


def test_aware_times_are_normalised_to_utc_and_naive_times_refused() -> None:
    paris = datetime(2026, 1, 2, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    assert signal(occurred_at=paris).occurred_at == datetime(2026, 1, 2, 9, 0, tzinfo=UTC)
    with pytest.raises(RecordError, match="occurred_at"):
        signal(occurred_at=datetime(2026, 1, 2, 10, 0))


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"side": "long"}, "side"),
        ({"quantity": 0}, "quantity"),
        ({"kind": "teleport"}, "kind"),
        ({"order_type": "limit"}, "limit_price"),
        ({"order_type": "stop"}, "stop_price"),
        ({"order_type": "limit", "limit_price": Decimal(-1)}, "limit_price"),
        ({"signal_id": ""}, "signal_id"),
    ],
)
def test_invalid_signals_name_the_field(kw: dict[str, object], field: str) -> None:
    with pytest.raises(RecordError) as caught:
        signal(**kw)
    assert caught.value.field == field


def test_decode_signal_reports_missing_fields_and_bad_json() -> None:
    with pytest.raises(ValueError, match="missing field"):
        decode_signal(b'{"symbol": "ESZ6"}')
    with pytest.raises(ValueError):
        decode_signal(b"not json")
    with pytest.raises(ValueError, match="JSON object"):
        decode_signal(b"[1, 2]")
    assert decode_signal(signal().dumps()).signal_id == "L:1:new"


def test_intent_needs_a_target_for_modify_and_cancel() -> None:
    base = dict(
        client_order_id="CT1",
        signal_id="s",
        account_id="f1",
        platform="paper",
        leader_account="L",
        symbol="ESZ6",
        side="buy",
        quantity=1,
    )
    with pytest.raises(RecordError, match="target_client_order_id"):
        OrderIntent(action="cancel", **base)
    assert OrderIntent(action="cancel", target_client_order_id="CT0", **base).action == "cancel"


def test_execution_kind_is_checked() -> None:
    with pytest.raises(RecordError, match="kind"):
        Execution(execution_id="e", account_id="a", platform="paper", kind="maybe")
