"""A value that passes the schemas can no longer stop a stage, and one that meets a stage anyway
is reported on ``order.errors`` while the next message is handled (issue #12, finding 1)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.app.factory import CopyTraderApp
from copytrader.common.bounds import MAX_POSITION_QUANTITY
from copytrader.core import ids
from copytrader.core.records import Execution, ExecutionBatch, OrderIntent, Position, RecordError, TradeSignal
from copytrader.core.scaling import CopyRule

CONFIG = {
    "sessions": [{"id": "p", "platform": "paper", "options": {"tick_ms": 0, "venue": "robust-test"}}],
    "accounts": [{"id": "L", "session": "p"}, {"id": "f1", "session": "p"}, {"id": "f2", "session": "p"}],
    "copy_groups": [
        {"id": "g", "leader": "L", "followers": [{"account": "f1"}, {"account": "f2", "rule": {"multiplier": 3}}]}
    ],
}


@pytest.fixture
def app(make_app: Callable[..., CopyTraderApp]) -> CopyTraderApp:  # tests/agents/conftest.py
    return make_app(CONFIG, ("fanout", "track"))


def signal_bytes(n: int, **kw: object) -> bytes:
    base: dict[str, object] = dict(
        signal_id=ids.signal_id("L", str(n), "new"),
        leader_account="L",
        platform="paper",
        symbol="ESZ6",
        side="buy",
        quantity=2,
        leader_order_id=str(n),
        stamps={"detected": 1.0},
    )
    return TradeSignal(**{**base, **kw}).dumps()


async def test_an_infinite_multiplier_costs_its_follower_one_copy_and_the_group_keeps_copying(
    app: CopyTraderApp, outbox: MemoryOutbox
) -> None:
    app.runtime.fanout.planner.controls.set_rule("g", "f2", CopyRule(multiplier=Decimal("Infinity")), True)
    async with app.agents["fanout"].test_context() as agent:
        await agent.put(signal_bytes(1), key=b"ESZ6")
        await agent.put(signal_bytes(2), key=b"ESZ6")
    assert [(i.signal_id, i.account_id) for i in outbox.sent["intent"]] == [("L:1:new", "f1"), ("L:2:new", "f1")]
    assert {(e.account_id, e.code) for e in outbox.sent["error"]} == {("f2", "RULE")}


async def test_an_infinite_limit_price_is_refused_naming_the_field_and_the_next_signal_is_copied(
    app: CopyTraderApp, outbox: MemoryOutbox
) -> None:
    bad = (
        b'{"signal_id": "s1", "leader_account": "L", "symbol": "ESZ6", "side": "buy", "quantity": 1, '
        b'"order_type": "limit", "limit_price": "Infinity"}'
    )
    async with app.agents["fanout"].test_context() as agent:
        await agent.put(bad, key=b"ESZ6")
        await agent.put(signal_bytes(3), key=b"ESZ6")
    (error,) = outbox.sent["error"]
    assert error.code == "MALFORMED" and "limit_price" in error.reason
    assert {i.account_id for i in outbox.sent["intent"]} == {"f1", "f2"}


async def test_an_unexpected_fanout_failure_is_reported_and_the_next_signal_is_copied(
    app: CopyTraderApp, outbox: MemoryOutbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    planner = app.runtime.fanout.planner
    real = planner.plan
    calls = iter([RuntimeError("boom"), None])

    def plan(signal: TradeSignal):  # type: ignore[no-untyped-def]  # patched method
        failure = next(calls)
        if failure is not None:
            raise failure
        return real(signal)

    monkeypatch.setattr(planner, "plan", plan)
    async with app.agents["fanout"].test_context() as agent:
        await agent.put(signal_bytes(4), key=b"ESZ6")
        await agent.put(signal_bytes(5), key=b"ESZ6")
    (error,) = outbox.sent["error"]
    assert (error.code, error.stage, error.signal_id) == ("INTERNAL", "fanout", "L:4:new")
    assert {i.signal_id for i in outbox.sent["intent"]} == {"L:5:new"}


async def test_the_tracker_reports_a_fill_it_cannot_count_and_counts_the_next(
    app: CopyTraderApp, outbox: MemoryOutbox
) -> None:
    """A fill that would take a position past its bound (the Position refuses it) is reported
    as BAD_FILL; the fill after it in the same record is still counted. (Before the records'
    bounds, a 1e30 price made the same failure as decimal's InvalidOperation.)"""

    def fill(n: int, account: str, quantity: int) -> Execution:
        return Execution(
            execution_id=f"{account}|o{n}|fill|{n}",
            account_id=account,
            platform="paper",
            kind="fill",
            symbol="ESZ6",
            side="buy",
            quantity=quantity,
            price=Decimal("5000"),
        )

    table = app.runtime.tables["positions"]
    async with app.agents["tracker"].test_context() as agent:
        table.data["f1|ESZ6"] = Position(  # seeded as a restored changelog would
            account_id="f1", symbol="ESZ6", net_quantity=MAX_POSITION_QUANTITY - 1, average_price=Decimal(5000)
        )
        await agent.put(ExecutionBatch(executions=[fill(1, "f1", 2), fill(2, "f2", 2)]).dumps(), key=b"f1")
    (error,) = outbox.sent["error"]
    assert (error.stage, error.code) == ("track", "BAD_FILL") and "net_quantity" in error.reason
    assert table["f1|ESZ6"].net_quantity == MAX_POSITION_QUANTITY - 1
    assert table["f2|ESZ6"].net_quantity == 2


def test_non_finite_prices_never_reach_a_broker_or_the_tracker() -> None:
    base = dict(
        client_order_id="CT1",
        signal_id="s",
        account_id="f1",
        platform="paper",
        leader_account="L",
        action="place",
        symbol="ESZ6",
        side="buy",
        quantity=1,
        order_type="limit",
    )
    for price in ("Infinity", "NaN", "-Infinity", "0"):
        with pytest.raises(RecordError, match="limit_price"):
            OrderIntent(limit_price=Decimal(price), **base)
        with pytest.raises(RecordError, match="price"):
            Execution(
                execution_id="e", account_id="f1", platform="paper", kind="fill", quantity=1, price=Decimal(price)
            )


def test_an_intent_for_an_absurd_quantity_never_reaches_a_broker() -> None:
    base = dict(
        client_order_id="CT1",
        signal_id="s",
        account_id="f1",
        platform="paper",
        leader_account="L",
        action="place",
        symbol="ESZ6",
        side="buy",
    )
    for quantity in (10**30, 2**63):
        with pytest.raises(RecordError, match="quantity"):
            OrderIntent(quantity=quantity, **base)
    assert OrderIntent(quantity=5, **base).quantity == 5
