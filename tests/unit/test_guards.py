"""Risk guards per follower (issue #18 item 1): each rule on its own, the window across midnight
and daylight saving, and the refusals of the YAML config with the field's path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from copytrader.core import guards as g
from copytrader.core.config import ConfigError, parse_config
from copytrader.core.guard_state import AccountGuard
from copytrader.core.schemas import SchemaError, convert
from copytrader.core.schemas.guards import GuardsIn

# A Wednesday, 15:00 UTC = 10:00 in Chicago (CDT, UTC-5).
WED = datetime(2026, 6, 10, 15, 0, tzinfo=UTC)


def rules(**raw: Any) -> g.GuardRules:
    return g.build(convert(raw, GuardsIn))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def guard(marks: dict[str, Decimal] | None = None, clock: Clock | None = None, **raw: Any) -> AccountGuard:
    prices = marks if marks is not None else {}
    return AccountGuard("f1", rules(**raw), lambda symbol, net: prices.get(symbol), clock or Clock())


def buy(account: AccountGuard, quantity: int, symbol: str = "ESZ6", now: datetime = WED) -> str | None:
    refusal = account.check("place", symbol, "buy", quantity, None, now)
    return None if refusal is None else refusal.code


# -- the config door -------------------------------------------------------------------------


def config(guards: dict[str, Any], group_guards: dict[str, Any] | None = None, market_data: bool = False) -> Any:
    data: dict[str, Any] = {
        "sessions": [{"id": "p", "platform": "paper"}],
        "accounts": [{"id": "L", "session": "p"}, {"id": "f1", "session": "p"}, {"id": "f2", "session": "p"}],
        "copy_groups": [
            {"leader": "L", "followers": [{"account": "f2"}, {"account": "f1", "guards": guards}]},
        ],
    }
    if group_guards is not None:
        data["copy_groups"][0]["guards"] = group_guards
    if market_data:
        data["market_data"] = {"platform": "dxlink", "endpoint": "ws://127.0.0.1:1", "symbols": {"ESZ6": "/ESZ26"}}
    return parse_config(data, env={})


@pytest.mark.parametrize(
    ("guards", "path", "reason"),
    [
        ({"window": {"start": "08:30", "end": "15:00", "tz": "Mars/Base"}}, "guards.window.tz", "unknown time zone"),
        ({"tz": "Europe/Nowhere"}, "guards.tz", "unknown time zone"),
        ({"window": {"start": "8:30", "end": "15:00"}}, "guards.window.start", "matching regex"),
        ({"window": {"start": "24:00", "end": "15:00"}}, "guards.window.start", "matching regex"),
        ({"window": {"start": "08:30", "end": "08:30"}}, "guards.window.end", "must differ"),
        ({"window": {"start": "08:30", "end": "15:00", "days": ["mon", "funday"]}}, "guards.window.days[1]", "Invalid"),
        ({"window": {"start": "08:30", "end": "15:00", "days": []}}, "guards.window.days", "length"),
        ({"daily_loss": {"limit": -5}}, "guards.daily_loss.limit", "positive"),
        ({"daily_loss": {"limit": "Infinity"}}, "guards.daily_loss.limit", "finite"),
        ({"daily_loss": {"limit": 100, "on_breach": "panic"}}, "guards.daily_loss.on_breach", "Invalid"),
        ({"trailing_drawdown": {"limit": 100, "basis": "weekly"}}, "guards.trailing_drawdown.basis", "Invalid"),
        ({"max_contracts_per_symbol": 0}, "guards.max_contracts_per_symbol", ">= 1"),
        ({"max_contracts_total": "5"}, "guards.max_contracts_total", "Expected int"),
        ({"max_orders_per_minute": 10**6}, "guards.max_orders_per_minute", "<= 10000"),
        ({"max_contracts": 5}, "guards.max_contracts", "unknown field"),
    ],
)
def test_a_rule_that_does_not_parse_is_refused_with_its_path(guards: dict[str, Any], path: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config(guards, market_data=True)
    assert caught.value.path == f"copy_groups[0].followers[1].{path}"
    assert reason in caught.value.reason


def test_the_unknown_time_zone_is_named() -> None:
    with pytest.raises(ConfigError, match=r"followers\[1\]\.guards\.window\.tz: unknown time zone 'Mars/Base'"):
        config({"window": {"start": "08:30", "end": "15:00", "tz": "Mars/Base"}})


def test_loss_rules_need_a_price_source_and_one_account_has_one_set_of_guards() -> None:
    with pytest.raises(ConfigError, match="need market_data"):
        config({"daily_loss": {"limit": 500}})
    data = {
        "sessions": [{"id": "p", "platform": "paper"}],
        "accounts": [{"id": "L", "session": "p"}, {"id": "M", "session": "p"}, {"id": "f1", "session": "p"}],
        "copy_groups": [
            {"leader": "L", "followers": [{"account": "f1", "guards": {"max_contracts_total": 2}}]},
            {"leader": "M", "followers": [{"account": "f1", "guards": {"max_contracts_total": 3}}]},
        ],
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(data, env={})
    assert caught.value.path == "copy_groups[1].followers[0].guards"


def test_group_guards_are_every_followers_default_and_a_followers_fields_win() -> None:
    parsed = config({"max_contracts_total": 9}, group_guards={"max_contracts_total": 4, "max_orders_per_minute": 20})
    by_account = {f.account_id: f.guards for f in parsed.groups[0].followers}
    assert by_account["f2"] is not None and by_account["f2"].max_contracts_total == 4
    assert by_account["f1"] is not None and by_account["f1"].max_contracts_total == 9
    assert by_account["f1"].max_orders_per_minute == 20


def test_schema_values_are_strict_outside_the_config_too() -> None:
    with pytest.raises(SchemaError):
        convert({"daily_loss": {"limit": True}}, GuardsIn)


# -- the window and the trading day -----------------------------------------------------------


def test_a_day_window_in_its_own_time_zone() -> None:
    window = rules(window={"start": "08:30", "end": "15:00", "tz": "America/Chicago"}).window
    assert window is not None
    assert window.is_open(WED)  # 10:00 Chicago
    assert not window.is_open(WED.replace(hour=13, minute=29))  # 08:29 Chicago
    assert window.is_open(WED.replace(hour=13, minute=30))
    assert not window.is_open(WED.replace(hour=20))  # 15:00 Chicago: the end is excluded
    assert not window.is_open(WED + timedelta(days=3))  # Saturday


def test_a_window_across_midnight_belongs_to_the_day_it_opens() -> None:
    # CME Globex: Sunday 17:00 to Friday 16:00 Chicago, as sessions opening Sun-Thu at 17:00.
    window = rules(
        window={"start": "17:00", "end": "16:00", "days": ["sun", "mon", "tue", "wed", "thu"], "tz": "America/Chicago"}
    ).window
    assert window is not None
    chicago = g.ZoneInfo("America/Chicago")

    def at(day: int, hour: int, minute: int = 0) -> datetime:
        return datetime(2026, 6, day, hour, minute, tzinfo=chicago)  # 2026-06-07 is a Sunday

    assert not window.is_open(at(7, 16, 59))  # Sunday before the open
    assert window.is_open(at(7, 17))  # Sunday evening: opens
    assert window.is_open(at(8, 3))  # Monday night: still Sunday's session
    assert not window.is_open(at(8, 16, 30))  # the daily break
    assert window.is_open(at(12, 15, 59))  # Friday afternoon: Thursday's session
    assert not window.is_open(at(12, 17))  # Friday evening: no session opens on Friday
    assert not window.is_open(at(13, 10))  # Saturday


def test_the_window_keeps_its_wall_clock_time_across_daylight_saving() -> None:
    window = rules(window={"start": "08:30", "end": "15:00", "days": ["mon", "fri"], "tz": "America/New_York"}).window
    assert window is not None
    # 2026-03-06 (Fri) is EST (UTC-5), 2026-03-09 (Mon) is EDT (UTC-4): 08:30 local both days.
    assert window.is_open(datetime(2026, 3, 6, 13, 30, tzinfo=UTC))
    assert not window.is_open(datetime(2026, 3, 9, 12, 29, tzinfo=UTC))
    assert window.is_open(datetime(2026, 3, 9, 12, 30, tzinfo=UTC))
    # Autumn: 2026-11-02 (Mon) is back on EST.
    assert not window.is_open(datetime(2026, 11, 2, 13, 29, tzinfo=UTC))
    assert window.is_open(datetime(2026, 11, 2, 13, 30, tzinfo=UTC))


def test_the_trading_day_turns_over_at_its_start_time() -> None:
    day_rules = rules(tz="America/Chicago", day_starts="17:00")
    friday_close = datetime(2026, 6, 12, 21, 59, tzinfo=UTC)  # 16:59 Chicago
    assert day_rules.trading_day(friday_close).isoformat() == "2026-06-12"
    sunday_open = datetime(2026, 6, 14, 22, 0, tzinfo=UTC)  # 17:00 Chicago
    assert day_rules.trading_day(sunday_open).isoformat() == "2026-06-15"  # Monday's day
    assert rules().trading_day(WED).isoformat() == "2026-06-10"  # UTC midnight by default


def test_outside_the_window_entries_are_refused_and_exits_pass() -> None:
    account = guard(window={"start": "08:30", "end": "15:00", "tz": "America/Chicago"})
    account.fill(None, "ESZ6", "buy", 2, Decimal(5000), 0)
    evening = WED.replace(hour=23)
    refusal = account.check("place", "ESZ6", "buy", 1, None, evening)
    assert refusal is not None and refusal.code == g.WINDOW
    assert "08:30-15:00 mon,tue,wed,thu,fri America/Chicago" in refusal.message
    assert "Wed 18:00" in refusal.message
    assert account.check("place", "ESZ6", "sell", 2, None, evening) is None  # the exit
    assert account.check("flatten", "", "sell", 1, None, evening) is None
    assert account.check("cancel", "ESZ6", "buy", 1, "x", evening) is None


# -- contracts and orders -----------------------------------------------------------------------


def test_max_contracts_per_symbol_counts_the_position_and_working_orders() -> None:
    account = guard(max_contracts_per_symbol=4)
    assert buy(account, 2) is None
    account.sent("o1", "place", "ESZ6", "buy", 2, None)  # working, not filled yet
    assert buy(account, 2) is None
    account.sent("o2", "place", "ESZ6", "buy", 2, None)
    refusal = account.check("place", "ESZ6", "buy", 1, None, WED)
    assert refusal is not None and refusal.code == g.MAX_CONTRACTS
    assert refusal.message == "max 4 contracts per symbol: ESZ6 holds +0, working 4, requested 1 (would be 5)"
    account.fill("o1", "ESZ6", "buy", 2, Decimal(5000), 0)
    account.finished("o2")  # cancelled
    assert buy(account, 2) is None and buy(account, 3) == g.MAX_CONTRACTS
    assert account.check("place", "ESZ6", "sell", 2, None, WED) is None  # an exit is never refused
    assert account.check("place", "ESZ6", "sell", 7, None, WED) is not None  # a reversal past the limit is


def test_a_partial_fill_moves_contracts_from_working_to_held() -> None:
    account = guard(max_contracts_per_symbol=3)
    account.sent("o1", "place", "ESZ6", "buy", 3, None)
    account.fill("o1", "ESZ6", "buy", 1, Decimal(5000), 2)
    assert account.standing(WED) == ["ESZ6 3/3"]
    refusal = account.check("place", "ESZ6", "buy", 1, None, WED)
    assert refusal is not None and "holds +1, working 2, requested 1 (would be 4)" in refusal.message
    account.flattened("ESZ6")  # a flatten cancels the rest
    assert account.working == {} and buy(account, 2) is None


def test_max_contracts_in_total_across_symbols() -> None:
    account = guard(max_contracts_total=5)
    account.fill(None, "ESZ6", "buy", 3, Decimal(5000), 0)
    account.fill(None, "NQZ6", "sell", 1, Decimal(18000), 0)
    assert buy(account, 1, "CLZ6") is None
    refusal = account.check("place", "CLZ6", "buy", 2, None, WED)
    assert refusal is not None and refusal.code == g.MAX_CONTRACTS_TOTAL
    assert refusal.message == "max 5 contracts in total: 4 held or working, requested 2 CLZ6 (would be 6)"
    assert account.check("place", "NQZ6", "buy", 1, None, WED) is None  # reduces


def test_a_modify_is_checked_for_what_it_adds() -> None:
    account = guard(max_contracts_per_symbol=3)
    account.sent("o1", "place", "ESZ6", "buy", 2, None)
    assert account.check("modify", "ESZ6", "buy", 2, "o1", WED) is None  # a price change
    assert account.check("modify", "ESZ6", "buy", 3, "o1", WED) is None
    refusal = account.check("modify", "ESZ6", "buy", 4, "o1", WED)
    assert refusal is not None and refusal.code == g.MAX_CONTRACTS


def test_max_orders_per_minute_is_a_sliding_minute() -> None:
    clock = Clock()
    account = guard(clock=clock, max_orders_per_minute=3)
    for n in range(3):
        assert buy(account, 1) is None
        account.sent(f"o{n}", "place", "ESZ6", "buy", 1, None)
        clock.now += 10
    refusal = account.check("place", "ESZ6", "buy", 1, None, WED)
    assert refusal is not None and refusal.code == g.ORDER_RATE and "3 sent in the last minute" in refusal.message
    clock.now += 31  # the first order is now 61 s old
    assert buy(account, 1) is None


# -- loss and drawdown ----------------------------------------------------------------------------


def test_daily_loss_counts_realised_and_unrealised() -> None:
    marks = {"ESZ6": Decimal(5000)}
    account = guard(marks, daily_loss={"limit": 500})
    account.fill(None, "ESZ6", "buy", 1, Decimal(5000), 0)
    account.fill(None, "ESZ6", "sell", 1, Decimal(4996), 0)  # realised -200 (ES: $50 a point)
    account.fill(None, "ESZ6", "buy", 1, Decimal(4996), 0)
    marks["ESZ6"] = Decimal(4990)  # unrealised -300: loss 500
    refusal = account.check("place", "ESZ6", "buy", 1, None, WED)
    assert refusal is not None and refusal.code == g.DAILY_LOSS and refusal.breach and refusal.flatten
    assert refusal.first  # found by this check: the executor acts on it
    assert refusal.message == "daily loss 500.00/500.00 (realised -200.00, unrealised -300.00)"
    marks["ESZ6"] = Decimal(4991)
    again = account.check("place", "ESZ6", "buy", 1, None, WED)
    assert again is not None and again.code == g.DAILY_LOSS and not again.first  # holds for the day
    assert account.evaluate(WED) is None  # already acted on
    assert account.check("place", "ESZ6", "sell", 1, None, WED) is None


def test_a_breach_is_acted_on_once_and_a_daily_one_clears_with_the_day() -> None:
    marks = {"ESZ6": Decimal(5000)}
    account = guard(marks, daily_loss={"limit": 100, "on_breach": "block"})
    account.fill(None, "ESZ6", "buy", 1, Decimal(5000), 0)
    assert account.evaluate(WED) is None
    marks["ESZ6"] = Decimal(4998)
    breach = account.evaluate(WED)
    assert breach is not None and breach.code == g.DAILY_LOSS and not breach.flatten
    assert account.evaluate(WED) is None  # once
    marks["ESZ6"] = Decimal(5000)
    assert buy(account, 1) == g.DAILY_LOSS  # refused for the rest of the day
    account.fill(None, "ESZ6", "sell", 1, Decimal(5000), 0)
    assert buy(account, 1, now=WED + timedelta(days=1)) is None


def test_without_a_fresh_mark_entries_are_refused_and_exits_pass() -> None:
    account = guard({}, daily_loss={"limit": 500})
    assert buy(account, 1) is None  # flat: nothing to mark
    account.fill(None, "ESZ6", "buy", 1, Decimal(5000), 0)
    refusal = account.check("place", "NQZ6", "buy", 1, None, WED)
    assert refusal is not None and refusal.code == g.NO_MARK and "ESZ6" in refusal.message
    assert account.check("place", "ESZ6", "sell", 1, None, WED) is None
    assert account.evaluate(WED) is None  # an unknown loss never flattens by itself


def test_trailing_drawdown_intraday_follows_the_peak_and_stops_trailing() -> None:
    marks = {"ESZ6": Decimal(5000)}
    account = guard(marks, trailing_drawdown={"limit": 1000, "stop_trailing_at": 1500})
    account.fill(None, "ESZ6", "buy", 1, Decimal(5000), 0)
    marks["ESZ6"] = Decimal(5020)  # +1000
    assert account.evaluate(WED) is None and account.peak == 1000
    marks["ESZ6"] = Decimal(5001)  # +50: 950 below the peak
    assert account.evaluate(WED) is None
    marks["ESZ6"] = Decimal(5060)  # +3000, but the peak stops at 1500
    assert account.evaluate(WED) is None and account.peak == 1500
    marks["ESZ6"] = Decimal(5010)  # +500: 1000 below the capped peak
    breach = account.evaluate(WED)
    assert breach is not None and breach.code == g.DRAWDOWN
    assert "trailing drawdown 1000.00/1000.00 (intraday: peak 1500.00, equity 500.00)" == breach.message
    assert buy(account, 1, now=WED + timedelta(days=1)) == g.DRAWDOWN  # stays past the day


def test_trailing_drawdown_end_of_day_trails_closing_equity_only() -> None:
    marks = {"ESZ6": Decimal(5000)}
    account = guard(marks, trailing_drawdown={"limit": 1000, "basis": "end_of_day"})
    account.fill(None, "ESZ6", "buy", 1, Decimal(5000), 0)
    marks["ESZ6"] = Decimal(5030)  # +1500 intraday: no new peak yet
    assert account.evaluate(WED) is None and account.peak == 0
    next_day = WED + timedelta(days=1)
    assert account.evaluate(next_day) is None and account.peak == 1500  # the close raised it
    marks["ESZ6"] = Decimal(5010)  # +500: 1000 below the closing peak
    breach = account.evaluate(next_day)
    assert breach is not None and breach.code == g.DRAWDOWN and "end_of_day" in breach.message


def test_describe_lists_every_rule() -> None:
    lines = rules(
        max_contracts_per_symbol=2,
        max_contracts_total=4,
        max_orders_per_minute=30,
        daily_loss={"limit": 500},
        trailing_drawdown={"limit": 2000, "basis": "end_of_day"},
        window={"start": "08:30", "end": "15:00", "tz": "America/Chicago"},
    ).describe()
    assert lines == [
        "max 2 contracts per symbol",
        "max 4 contracts in total",
        "max 30 orders a minute",
        "daily loss 500 (flatten_and_pause)",
        "trailing drawdown 2000 end_of_day (flatten_and_pause)",
        "window 08:30-15:00 mon,tue,wed,thu,fri America/Chicago",
    ]
