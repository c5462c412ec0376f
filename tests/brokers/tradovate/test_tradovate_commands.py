"""``commandStatus`` takes the real enum's values; the adapter reads every one of them, and an
unknown value becomes an error carrying the raw text, never a crash of the feed."""

from __future__ import annotations

from decimal import Decimal

import pytest
from tradovate_helpers import next_event

from copytrader.brokers.errors import OrderRejected, UnknownOrder
from copytrader.brokers.model import CancelOrder, ModifyOrder, OrderEvent, OrderStatus, OrderType, PlaceOrder, Side
from copytrader.brokers.tradovate import parsing
from copytrader.brokers.tradovate import schemas as s
from copytrader.brokers.tradovate.adapter import TradovateAdapter
from copytrader.brokers.tradovate.simulator import TradovateSimulator
from copytrader.brokers.tradovate.state import EntityCache

ACCT = "DEMO1001"
#: services-api docs Command.md / CommandReport.md (tradovate/example-api-csharp-trading).
OFFICIAL = {
    "AtExecution",
    "ExecutionRejected",
    "ExecutionStopped",
    "ExecutionSuspended",
    "OnHold",
    "Pending",
    "PendingExecution",
    "Replaced",
    "RiskPassed",
    "RiskRejected",
}


def test_schema_spells_exactly_the_official_enum() -> None:
    assert s.COMMAND_STATUSES == OFFICIAL
    assert "ExecutionSuccess" not in s.COMMAND_STATUSES


@pytest.mark.parametrize("value", sorted(OFFICIAL))
def test_every_official_value_is_read(value: str) -> None:
    assert isinstance(parsing.command_outcome(value), parsing.CommandOutcome)


@pytest.mark.parametrize("value", ["ExecutionSuccess", "", None, 7])
def test_unknown_value_is_a_clear_error_with_the_raw_text(value: object) -> None:
    with pytest.raises(parsing.UnknownEnumValue) as info:
        parsing.command_outcome(value)
    assert info.value.raw == value and repr(value) in str(info.value)


async def test_simulator_emits_only_official_values(adapter: TradovateAdapter, sim: TradovateSimulator) -> None:
    sub = adapter.events()
    await adapter.place(PlaceOrder("f1", "cs-1", "ESZ6", Side.BUY, 1, OrderType.LIMIT, limit_price=Decimal("4000")))
    await next_event(sub, lambda e: isinstance(e, OrderEvent) and e.client_order_id == "cs-1")
    await adapter.modify(ModifyOrder("f1", "cs-1", limit_price=Decimal("4001")))
    await adapter.cancel(CancelOrder("f1", "cs-1"))
    sim.exchange.account(ACCT).max_order_quantity = 1
    with pytest.raises(OrderRejected):
        await adapter.place(PlaceOrder("f1", "cs-risk", "ESZ6", Side.BUY, 5))
    sim.faults(ACCT).reject_next = "SessionClosed"
    with pytest.raises(OrderRejected):
        await adapter.place(PlaceOrder("f1", "cs-rej", "ESZ6", Side.BUY, 1))
    commands = [e for e in sim.book.tables.of(s.ENTITY_COMMAND, {ACCT})]
    reports = [e for e in sim.book.tables.of(s.ENTITY_COMMAND_REPORT, {ACCT})]
    seen = {e["commandStatus"] for e in commands + reports}
    assert seen <= OFFICIAL and {"AtExecution", "RiskRejected", "ExecutionRejected"} <= seen
    assert {c["commandType"] for c in commands} == {"New", "Modify", "Cancel"}
    assert all(c["commandStatus"] != "PendingExecution" for c in commands)  # every command finished


async def test_refused_cancel_is_reported_with_the_command_status(
    adapter: TradovateAdapter, sim: TradovateSimulator
) -> None:
    sub = adapter.events()
    await adapter.place(PlaceOrder("f1", "late-1", "ESZ6", Side.BUY, 1, OrderType.LIMIT, limit_price=Decimal("4000")))
    await next_event(
        sub, lambda e: isinstance(e, OrderEvent) and e.client_order_id == "late-1" and e.status is OrderStatus.WORKING
    )
    sim.faults(ACCT).fill_before_cancel = True
    with pytest.raises(UnknownOrder):
        await adapter.cancel(CancelOrder("f1", "late-1"))
    refused = await next_event(
        sub,
        lambda e: (
            isinstance(e, OrderEvent)
            and e.client_order_id == "late-1"
            and e.reason is not None
            and "Cancel" in e.reason
        ),
    )
    assert "ExecutionRejected" in refused.reason and "TooLate" in refused.reason


async def test_unknown_status_on_the_feed_is_kept_as_an_error_not_a_crash(
    adapter: TradovateAdapter, sim: TradovateSimulator
) -> None:
    tv_account = sim.account_id(ACCT)
    await adapter.cache.apply(
        s.ENTITY_COMMAND, {"id": 90001, "orderId": 90002, "commandType": "Cancel", "commandStatus": "BrandNewStatus"}
    )
    await adapter._on_props(
        {
            "entityType": s.ENTITY_COMMAND_REPORT,
            "eventType": "Created",
            "entity": {"id": 90003, "commandId": 90001, "commandStatus": "AlsoNew"},
        }
    )
    assert adapter.health().last_error is not None and "AlsoNew" in adapter.health().last_error
    # the feed goes on: the next entity is read as usual
    events = await adapter.cache.apply(
        s.ENTITY_POSITION, {"id": 1, "accountId": tv_account, "contractId": sim.book.contract_id("ESZ6"), "netPos": 3}
    )
    assert [(e.account_id, e.net_quantity) for e in events] == [("f1", 3)]


async def test_every_official_status_on_a_report_is_read_without_error() -> None:
    errors: list[parsing.UnknownEnumValue] = []

    async def symbol(contract_id: int, placed: str | None = None) -> str:
        return "ESZ6"

    cache = EntityCache({1: "f1"}, symbol)
    cache.on_protocol_error = errors.append
    await cache.apply(
        s.ENTITY_ORDER, {"id": 10, "accountId": 1, "contractId": 1, "action": "Buy", "ordStatus": "Working"}
    )
    for number, value in enumerate(sorted(OFFICIAL)):
        await cache.apply(
            s.ENTITY_COMMAND, {"id": 100 + number, "orderId": 10, "commandType": "Modify", "commandStatus": value}
        )
        events = await cache.apply(
            s.ENTITY_COMMAND_REPORT, {"id": 200 + number, "commandId": 100 + number, "commandStatus": value}
        )
        rejected = parsing.command_outcome(value) is parsing.CommandOutcome.REJECTED
        assert bool(events) == rejected, value
    assert errors == []


def test_schema_spells_the_sixteen_exec_types() -> None:
    # services-api docs ExecutionReport.md
    assert s.EXEC_TYPES == {
        "Canceled",
        "Completed",
        "DoneForDay",
        "Expired",
        "New",
        "OrderStatus",
        "PendingCancel",
        "PendingNew",
        "PendingReplace",
        "Rejected",
        "Replaced",
        "Stopped",
        "Suspended",
        "Trade",
        "TradeCancel",
        "TradeCorrect",
    }


async def test_unknown_exec_type_is_an_error_but_the_order_state_is_still_read() -> None:
    errors: list[parsing.UnknownEnumValue] = []

    async def symbol(contract_id: int, placed: str | None = None) -> str:
        return "ESZ6"

    cache = EntityCache({1: "f1"}, symbol)
    cache.on_protocol_error = errors.append
    (event,) = await cache.apply(
        s.ENTITY_EXEC,
        {
            "id": 5,
            "orderId": 10,
            "accountId": 1,
            "contractId": 7,
            "execType": "Teleported",
            "ordStatus": "Canceled",
            "action": "Sell",
        },
    )
    assert isinstance(event, OrderEvent) and event.status is OrderStatus.CANCELLED
    assert [e.raw for e in errors] == ["Teleported"]
