"""Price band: a leader's market order becomes a protected limit for followers who ask for it.

Quotes are fed straight into a QuoteBook (no feed): the planner is pure and synchronous.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from copytrader.agents.fanout.planner import FanoutPlanner
from copytrader.agents.fanout.price_band import NO_QUOTE, SKIPPED, band_limit
from copytrader.brokers.model import Side
from copytrader.common.clock import utcnow
from copytrader.core import ids, schemas
from copytrader.core.config import ConfigError, parse_config, parse_rule
from copytrader.core.quotes import QuoteBook
from copytrader.core.records import OrderIntent, TradeSignal
from copytrader.core.schemas import SchemaError


def config(**rules: dict[str, Any]) -> Any:
    """Leader L; one follower per keyword (its rule)."""
    return parse_config(
        {
            "sessions": [{"id": "p", "platform": "paper"}],
            "accounts": [{"id": "L", "session": "p"}] + [{"id": name, "session": "p"} for name in rules],
            "copy_groups": [
                {"id": "g", "leader": "L", "followers": [{"account": n, "rule": r} for n, r in rules.items()]}
            ],
        },
        env={},
    )


def signal(kind: str = "new", order: str = "77", **kw: Any) -> TradeSignal:
    base: dict[str, Any] = dict(
        signal_id=ids.signal_id("L", order, kind, 1),
        leader_account="L",
        platform="paper",
        symbol="ESZ6",
        side="buy",
        quantity=1,
        kind=kind,
        leader_order_id=order,
        stamps={"detected": 1.0},
    )
    return TradeSignal(**{**base, **kw})


def book(**quotes: tuple[str | None, str | None]) -> QuoteBook:
    prices = QuoteBook(max_age_s=5.0)
    for symbol, (bid, ask) in quotes.items():
        prices.update(symbol, bid=Decimal(bid) if bid else None, ask=Decimal(ask) if ask else None)
    return prices


def one(intents: list[OrderIntent], account: str) -> OrderIntent:
    (intent,) = [i for i in intents if i.account_id == account]
    return intent


# ------------------------------------------------------------------------- the limit price


@pytest.mark.parametrize(
    ("side", "touch", "ticks", "tick", "want"),
    [
        (Side.BUY, "5000.25", 4, "0.25", "5001.25"),  # ES: ask + 4 ticks
        (Side.SELL, "5000.00", 4, "0.25", "4999.00"),  # ES: bid - 4 ticks
        (Side.BUY, "18000.10", 2, "0.25", "18000.75"),  # NQ touch off the grid: rounded up (away)
        (Side.SELL, "18000.10", 2, "0.25", "17999.50"),  # ... and down for a sell
        (Side.BUY, "75.013", 3, "0.01", "75.05"),  # CL: 75.043 → 75.05
        (Side.SELL, "75.017", 3, "0.01", "74.98"),  # CL: 74.987 → 74.98
        (Side.BUY, "5000.25", 0, "0.25", "5000.25"),  # band 0: at the touch
        (Side.SELL, "0.50", 10, "0.25", "0.25"),  # never below one tick
    ],
)
def test_band_limit_moves_through_the_touch_on_a_valid_tick(
    side: Side, touch: str, ticks: int, tick: str, want: str
) -> None:
    limit = band_limit(side, Decimal(touch), ticks, Decimal(tick))
    assert limit == Decimal(want)
    assert limit % Decimal(tick) == 0


def test_market_entry_becomes_a_limit_at_the_touch_plus_band_per_instrument() -> None:
    cfg = config(
        es={"price_band_ticks": 4},
        nq={"price_band_ticks": 2, "symbol_map": {"ES": "NQ"}},
        cl={"price_band_ticks": 3, "symbol_map": {"ES": "CL"}, "inverse": True},
        plain={},
    )
    quotes = book(ESZ6=("5000.00", "5000.25"), NQZ6=("18000.00", "18000.50"), CLZ6=("75.01", "75.03"))
    intents, errors = FanoutPlanner(cfg, quotes=quotes).plan(signal())
    assert errors == []
    es, nq, cl, plain = (one(intents, a) for a in ("es", "nq", "cl", "plain"))
    assert (es.order_type, es.limit_price, es.band_ticks, es.band_touch) == (
        "limit",
        Decimal("5001.25"),
        4,
        Decimal("5000.25"),
    )
    assert (nq.order_type, nq.limit_price) == ("limit", Decimal("18001.00"))  # ask 18000.50 + 2 × 0.25
    assert (cl.side, cl.order_type, cl.limit_price, cl.band_touch) == (
        "sell",
        "limit",
        Decimal("74.98"),
        Decimal("75.01"),
    )
    assert (plain.order_type, plain.limit_price, plain.band_ticks) == ("market", None, None)
    # Every copy carries the reference (mid) of its own symbol, banded or not.
    assert es.reference_price == plain.reference_price == Decimal("5000.125")
    assert nq.reference_price == Decimal("18000.25") and cl.reference_price == Decimal("75.02")


def test_stale_quote_is_no_quote_and_market_mode_warns_naming_symbol_and_age() -> None:
    quotes = QuoteBook(max_age_s=5.0)
    quotes.update("ESZ6", bid=Decimal(5000), ask=Decimal("5000.25"), at=utcnow() - timedelta(seconds=12))
    intents, errors = FanoutPlanner(config(f={"price_band_ticks": 4}), quotes=quotes).plan(signal())
    (intent,) = intents
    assert (intent.order_type, intent.limit_price, intent.band_ticks, intent.reference_price) == (
        "market",
        None,
        None,
        None,
    )
    (warning,) = errors
    assert warning.code == NO_QUOTE and warning.account_id == "f"
    assert "ESZ6" in warning.reason and "12." in warning.reason and "s old" in warning.reason
    assert warning.error_id.endswith("|band")  # not the id of a refusal: both can exist


@pytest.mark.parametrize("quotes", [None, QuoteBook()], ids=["no market-data source", "no quote yet"])
def test_no_quote_with_on_no_quote_market_places_the_market_order_with_a_warning(quotes: QuoteBook | None) -> None:
    intents, errors = FanoutPlanner(config(f={"price_band_ticks": 4}), quotes=quotes).plan(signal())
    assert [(i.account_id, i.order_type) for i in intents] == [("f", "market")]
    assert [(e.code, e.stage) for e in errors] == [(NO_QUOTE, "fanout")]
    assert "ESZ6" in errors[0].reason


def test_no_quote_with_on_no_quote_skip_refuses_only_that_follower() -> None:
    cfg = config(careful={"price_band_ticks": 4, "on_no_quote": "skip"}, relaxed={})
    intents, errors = FanoutPlanner(cfg, quotes=QuoteBook()).plan(signal())
    assert [i.account_id for i in intents] == ["relaxed"]
    (refusal,) = errors
    assert (refusal.account_id, refusal.code) == ("careful", SKIPPED)
    assert "ESZ6" in refusal.reason and "skip" in refusal.reason


def test_a_quote_without_the_needed_side_is_no_quote() -> None:
    cfg = config(f={"price_band_ticks": 4, "on_no_quote": "skip"})
    _, errors = FanoutPlanner(cfg, quotes=book(ESZ6=("5000.00", None))).plan(signal(side="buy"))
    assert [e.code for e in errors] == [SKIPPED] and "no ask" in errors[0].reason
    intents, errors = FanoutPlanner(cfg, quotes=book(ESZ6=("5000.00", None))).plan(signal(side="sell"))
    assert errors == [] and intents[0].limit_price == Decimal("4999.00")


def test_exits_flattens_and_leader_limits_are_never_banded() -> None:
    cfg = config(f={"price_band_ticks": 4, "on_no_quote": "skip"})
    planner = FanoutPlanner(cfg, quotes=book(ESZ6=("5000.00", "5000.25")))
    # The leader goes long 2 (its fill signal), then sells 1: an exit, copied as a market order.
    planner.plan(signal("fill", side="buy", quantity=2, fill_price=Decimal("5000.25")))
    (exit_,), errors = planner.plan(signal(order="78", side="sell", quantity=1))
    assert errors == [] and (exit_.order_type, exit_.band_ticks) == ("market", None)
    (flatten,), _ = planner.plan(signal("flatten", order="79", side="sell", quantity=1))
    assert (flatten.action, flatten.order_type, flatten.band_ticks) == ("flatten", "market", None)
    assert flatten.reference_price == Decimal("5000.125")
    # A leader limit stays the leader's limit; a buy adding to the long is an entry: banded.
    (limit,), _ = planner.plan(signal(order="80", order_type="limit", limit_price=Decimal("4990")))
    assert (limit.order_type, limit.limit_price, limit.band_ticks) == ("limit", Decimal("4990"), None)
    (entry,), _ = planner.plan(signal(order="81", side="buy"))
    assert (entry.order_type, entry.band_ticks) == ("limit", 4)


def test_exits_are_not_refused_without_a_quote_even_under_skip() -> None:
    planner = FanoutPlanner(config(f={"price_band_ticks": 4, "on_no_quote": "skip"}), quotes=QuoteBook())
    planner.plan(signal("fill", side="sell", quantity=1, fill_price=Decimal(5000)))
    intents, errors = planner.plan(signal(order="90", side="buy"))  # buys back the short
    assert errors == [] and intents[0].order_type == "market"


def test_banded_intent_survives_the_wire_and_old_intents_still_decode() -> None:
    intents, _ = FanoutPlanner(config(f={"price_band_ticks": 4}), quotes=book(ESZ6=("5000", "5000.25"))).plan(signal())
    again = OrderIntent.loads(intents[0].dumps(), serializer="json")
    assert (again.band_ticks, again.band_touch, again.reference_price) == (4, Decimal("5000.25"), Decimal("5000.125"))
    raw = {k: v for k, v in intents[0].asdict().items() if k not in ("band_ticks", "band_touch", "reference_price")}
    old = OrderIntent(**raw)
    assert (old.band_ticks, old.band_touch, old.reference_price) == (None, None, None)


# ------------------------------------------------------------------------- the rule fields


def test_rule_fields_parse_from_every_door_and_default_off() -> None:
    assert parse_rule({}).price_band_ticks is None and parse_rule({}).on_no_quote == "market"
    rule = parse_rule({"price_band_ticks": 8, "on_no_quote": "skip"})
    assert (rule.price_band_ticks, rule.on_no_quote) == (8, "skip")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price_band_ticks", -1),
        ("price_band_ticks", 1001),
        ("price_band_ticks", 1.5),
        ("price_band_ticks", "4"),
        ("price_band_ticks", True),
        ("price_band_ticks", float("inf")),
        ("price_band_ticks", float("nan")),
        ("price_band_ticks", 10**30),
        ("on_no_quote", "limit"),
        ("on_no_quote", ""),
        ("on_no_quote", None),
        ("on_no_quote", 1),
    ],
)
def test_hostile_rule_values_are_refused_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_rule({field: value})
    assert field in str(caught.value)
    with pytest.raises(SchemaError):
        schemas.convert({"rule": {field: value}}, schemas.FollowerRuleBody)
