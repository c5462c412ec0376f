"""An executor restart keeps what the guards counted: the day's realised P&L, the drawdown's
peak and the breaches in force; a file that does not read back is refused, never trusted, and
the loss figures it held count as lost (``GUARD_STATE_LOST``), not as zero."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from copytrader.agents.execution.guard_store import GuardStore
from copytrader.core import guards as g
from copytrader.core.guard_state import AccountGuard
from copytrader.core.schemas import convert
from copytrader.core.schemas.guards import GuardsIn

WED = datetime(2026, 6, 10, 15, 0, tzinfo=UTC)


def guard(marks: dict[str, Decimal], **raw: Any) -> AccountGuard:
    return AccountGuard("f1", g.build(convert(raw, GuardsIn)), lambda symbol, net: marks.get(symbol))


RULES = {"daily_loss": {"limit": 300}, "trailing_drawdown": {"limit": 1000, "basis": "end_of_day"}}


def traded(marks: dict[str, Decimal]) -> AccountGuard:
    account = guard(marks, **RULES)
    account.fill(None, "ESZ6", "buy", 1, Decimal(5000), 0, at=WED)
    account.fill(None, "ESZ6", "sell", 1, Decimal(5010), 0, at=WED)  # +500 realised
    account.fill(None, "ESZ6", "buy", 1, Decimal(5010), 0, at=WED)
    marks["ESZ6"] = Decimal(5003)  # -350 unrealised: day P&L +150, no breach
    assert account.evaluate(WED) is None
    return account


def test_a_restart_keeps_the_days_figures_the_peak_and_the_breaches(tmp_path: Path) -> None:
    marks: dict[str, Decimal] = {}
    before = traded(marks)
    # The day closes: the end-of-day peak takes its equity (150), and the new day starts with the
    # open position's -350, over its 300 daily limit.
    rolled = before.evaluate(WED + timedelta(days=1))
    assert rolled is not None and rolled.code == g.DAILY_LOSS and before.peak == Decimal(150)
    marks["ESZ6"] = Decimal(4983)  # -1350 unrealised: equity -850, 1000 below the closing peak
    breach = before.evaluate(WED + timedelta(days=1))
    assert breach is not None and breach.code == g.DRAWDOWN  # not hidden by the breach in force
    store = GuardStore(tmp_path / "executor" / "x.guards.json")
    assert store.save({"f1": before}) and not store.save({"f1": before})  # written once, on change
    after = guard(marks, **RULES)
    assert GuardStore(store.path).load({"f1": after, "f2": guard(marks)}) == 1
    assert (after.realised_total, after.peak, after.day) == (Decimal(500), Decimal(150), before.day)
    assert sorted(after.breached) == [g.DAILY_LOSS, g.DRAWDOWN]
    refusal = after.check("place", "ESZ6", "buy", 1, None, WED + timedelta(days=1))
    assert refusal is not None and refusal.breach and not refusal.first  # not acted on again


def test_a_restart_on_a_later_day_starts_that_day_from_zero(tmp_path: Path) -> None:
    marks: dict[str, Decimal] = {}
    before = traded(marks)
    store = GuardStore(tmp_path / "guards.json")
    store.save({"f1": before})
    after = guard(marks, **RULES)
    store.load({"f1": after})
    assert after.realised_today == Decimal(500)
    after.evaluate(WED + timedelta(days=1))
    assert after.realised_today == 0 and after.realised_total == Decimal(500)
    assert after.peak == Decimal(150)  # the saved day's closing equity


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b'{"version": 2, "accounts": {}}',
        b'{"accounts": {"f1": {"day": null, "realised_today": "NaN", "realised_total": "0", '
        b'"peak": "0", "last_equity": "0"}}}',
        b'{"accounts": {"f1": {"day": "yesterday", "realised_today": "0", "realised_total": "0", '
        b'"peak": "0", "last_equity": "0"}}}',
    ],
)
def test_a_file_that_does_not_read_back_is_kept_aside_and_its_loss_figures_count_as_lost(
    tmp_path: Path, content: bytes
) -> None:
    """Not trusted, and not taken for zero either: a fresh daily allowance after a restart is
    what a prop-firm rule must never get. Entries wait for the trader; exits never do."""
    path = tmp_path / "guards.json"
    path.write_bytes(content)
    fresh, counted = guard({}, **RULES), guard({}, max_contracts_per_symbol=2)
    store = GuardStore(path)
    assert store.load_edits() == {} and store.load({"f1": fresh, "f2": counted}) == 0
    assert (fresh.realised_total, fresh.peak, fresh.day) == (0, 0, None)
    assert list(fresh.breached) == [g.STATE_LOST] and counted.breached == {}  # no saved figure needed
    (aside,) = tmp_path.glob("guards.json.refused-*")
    assert aside.read_bytes() == content and not path.exists()  # the next save cannot overwrite it
    refusal = fresh.check("place", "ESZ6", "buy", 1, None, WED)
    assert refusal is not None and refusal.code == g.STATE_LOST and aside.name in refusal.message
    fresh.fill(None, "ESZ6", "buy", 1, Decimal(5000), 0, at=WED)
    assert fresh.check("place", "ESZ6", "sell", 1, None, WED) is None  # an exit goes
    assert store.save({"f1": fresh})  # the state in force is saved: a second restart keeps it
    again = guard({}, **RULES)
    assert GuardStore(path).load({"f1": again}) == 1 and list(again.breached) == [g.STATE_LOST]
