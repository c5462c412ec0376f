"""Risk guards in the executor (issue #18 item 1): a refused copy is reported like any refusal and
never reaches the broker; a loss breach pauses the follower and flattens it through its lane."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

import orjson
from aiokafka import TopicPartition
from waiting import wait_until

from copytrader.agents.execution import guards as executor_guards
from copytrader.agents.execution.router import AccountLanes, OrderRouter
from copytrader.agents.notify.notices import from_error
from copytrader.agents.shared.outbox import INTENT_PARTITIONS, MemoryOutbox
from copytrader.agents.shared.sessions import SessionPool
from copytrader.brokers.base import BrokerAdapter, SessionConfig
from copytrader.brokers.model import (
    AccountSnapshot,
    CancelOrder,
    Capabilities,
    ConnectionState,
    FillEvent,
    FlattenPosition,
    ModifyOrder,
    OrderAck,
    OrderStatus,
    PlaceOrder,
    PositionEvent,
    Side,
)
from copytrader.core import ids
from copytrader.core.config import CopyConfig, parse_config
from copytrader.core.guard_state import Refusal, rules_by_account
from copytrader.core.quotes import QuoteBook
from copytrader.core.records import Execution, OrderError, OrderIntent
from copytrader.core.topics import partition_for

WED = datetime(2026, 6, 10, 15, 0, tzinfo=UTC)


class Broker(BrokerAdapter):
    """Books every request; ``calls`` is what reached the broker."""

    platform: ClassVar[str] = "fake"
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, config: SessionConfig) -> None:
        super().__init__(config)
        self.calls: list[tuple[str, str]] = []
        self.booked: set[str] = set()
        self.positions: tuple[PositionEvent, ...] = ()
        self._ids = itertools.count(1)

    async def connect(self) -> None:
        self._set_state(ConnectionState.CONNECTED)

    async def disconnect(self) -> None:
        self._set_state(ConnectionState.DISCONNECTED)

    def _ack(self, account_id: str, client_id: str, status: OrderStatus = OrderStatus.WORKING) -> OrderAck:
        self.booked.add(client_id)
        return OrderAck(account_id, client_id, f"B{next(self._ids)}", status)

    async def place(self, command: PlaceOrder) -> OrderAck:
        self.calls.append(("place", command.client_order_id))
        return self._ack(command.account_id, command.client_order_id)

    async def modify(self, command: ModifyOrder) -> OrderAck:
        self.calls.append(("modify", command.client_order_id))
        return self._ack(command.account_id, command.client_order_id)

    async def cancel(self, command: CancelOrder) -> OrderAck:
        self.calls.append(("cancel", command.client_order_id))
        return self._ack(command.account_id, command.client_order_id, OrderStatus.CANCELLED)

    async def flatten(self, command: FlattenPosition) -> OrderAck:
        self.calls.append(("flatten", command.client_order_id))
        return self._ack(command.account_id, command.client_order_id, OrderStatus.FILLED)

    async def lookup(self, account_id: str, client_order_id: str) -> OrderAck | None:
        self.calls.append(("lookup", client_order_id))
        if client_order_id not in self.booked:
            return None
        return OrderAck(account_id, client_order_id, "B0", OrderStatus.WORKING, duplicate=True)

    async def snapshot(self, account_id: str) -> AccountSnapshot:
        return AccountSnapshot(account_id, Decimal(50000), (), self.positions)


def config(guards: dict[str, Any]) -> CopyConfig:
    return parse_config(
        {
            "sessions": [{"id": "s", "platform": "paper"}],
            "accounts": [{"id": "L", "session": "s"}, {"id": "f1", "session": "s"}],
            "copy_groups": [{"id": "main", "leader": "L", "followers": [{"account": "f1", "guards": guards}]}],
            "market_data": {"platform": "dxlink", "endpoint": "ws://127.0.0.1:1", "symbols": {"ESZ6": "/ESZ26:XCME"}},
        },
        env={},
    )


class Executor:
    def __init__(self, guards: dict[str, Any]) -> None:
        self.config = config(guards)
        self.outbox = MemoryOutbox()
        self.broker = Broker(self.config.sessions["s"])
        self.pool = SessionPool(self.config, lambda _cfg: self.broker)
        self.router = OrderRouter(self.pool, self.outbox)
        self.quotes = QuoteBook(max_age_s=5.0, clock=lambda: WED)
        self.guards = executor_guards.ExecutorGuards(rules_by_account(self.config), self.quotes, clock=lambda: WED)
        self.router.guards = self.guards
        self.lanes = AccountLanes(self.router.execute, self.router.report_crash, self.router.report_skipped)
        self.controls: list[tuple[bytes, dict[str, Any]]] = []

        async def send_control(key: bytes, value: bytes) -> None:
            self.controls.append((key, orjson.loads(value)))

        self.guards.act = executor_guards.breach_action(
            self.config, self.router.outbox.error, self.guards, self.router, self.lanes.submit, send_control
        )

    async def run(self, intent: OrderIntent, redelivered: bool = False) -> None:
        await self.router.execute(intent, redelivered)
        await self.router.outbox.drained()

    def errors(self) -> list[OrderError]:
        return [e for e in self.outbox.sent["error"] if isinstance(e, OrderError)]

    def rejects(self) -> list[Execution]:
        return [e for e in self.outbox.sent["execution"] if isinstance(e, Execution) and e.kind == "reject"]

    async def fill(self, client_id: str, side: Side, quantity: int, price: str) -> None:
        event = FillEvent("f1", client_id, "B1", f"x{client_id}", "ESZ6", side, quantity, Decimal(price), quantity, 0)
        await self.router.on_broker_event("fake", event)


def entry(signal: str, quantity: int, side: str = "buy") -> OrderIntent:
    return OrderIntent(
        client_order_id=ids.client_order_id(signal, "f1"),
        signal_id=signal,
        account_id="f1",
        platform="paper",
        leader_account="L",
        action="place",
        symbol="ESZ6",
        side=side,
        quantity=quantity,
    )


async def test_a_blocked_copy_lands_on_order_errors_and_never_reaches_the_broker() -> None:
    executor = Executor({"max_contracts_per_symbol": 2})
    first, second = entry("s1", 2), entry("s2", 1)
    await executor.run(first)
    await executor.run(second)
    assert executor.broker.calls == [("place", first.client_order_id)]
    (error,) = executor.errors()
    assert error.code == "GUARD_MAX_CONTRACTS" and error.stage == "execute"
    assert error.client_order_id == second.client_order_id and error.signal_id == "s2"
    assert error.reason == "max 2 contracts per symbol: ESZ6 holds +0, working 2, requested 1 (would be 3)"
    (reject,) = executor.rejects()
    assert reject.client_order_id == second.client_order_id and reject.request_outcome
    assert executor.router.stats["f1"].last_error == error.reason  # account.status carries it
    # An exit of what is held is never refused.
    await executor.fill(first.client_order_id, Side.BUY, 2, "5000")
    exit_ = entry("s3", 2, side="sell")
    await executor.run(exit_)
    assert executor.broker.calls[-1] == ("place", exit_.client_order_id)


async def test_a_redelivered_copy_the_broker_already_has_is_reported_as_placed_not_refused() -> None:
    executor = Executor({"max_contracts_per_symbol": 1})
    await executor.run(entry("s1", 1))
    earlier = entry("s2", 1)
    executor.broker.booked.add(earlier.client_order_id)  # sent by a previous owner of the partition
    await executor.run(earlier, redelivered=True)
    assert ("lookup", earlier.client_order_id) in executor.broker.calls
    assert not executor.errors()
    acks = [e for e in executor.outbox.sent["execution"] if isinstance(e, Execution) and e.kind == "ack"]
    assert [a.client_order_id for a in acks][-1] == earlier.client_order_id


async def test_a_daily_loss_breach_pauses_and_flattens_the_follower() -> None:
    executor = Executor({"daily_loss": {"limit": 100}})
    executor.quotes.update("ESZ6", bid=Decimal(5000), ask=Decimal("5000.25"))
    opening = entry("s1", 1)
    await executor.run(opening)
    await executor.fill(opening.client_order_id, Side.BUY, 1, "5000")
    assert executor.guards.evaluate_all() == 0
    executor.quotes.update("ESZ6", bid=Decimal(4998), ask=Decimal("4998.25"))  # long 1 marked at the bid: -100
    assert executor.guards.evaluate_all() == 1
    await executor.guards.settled()
    await wait_until(
        lambda: any(call[0] == "flatten" for call in executor.broker.calls), timeout_s=5, what="the guard's flatten"
    )
    await executor.lanes.join()
    await executor.router.outbox.drained()
    breach = next(e for e in executor.errors() if e.code == "GUARD_DAILY_LOSS")
    assert breach.reason == "daily loss 100.00/100.00 (realised 0.00, unrealised -100.00): flattening and pausing f1"
    assert breach.error_id == "guard|f1|GUARD_DAILY_LOSS|2026-06-10"
    ((key, pause),) = executor.controls
    assert key == b"f1" and pause["account_id"] == "f1" and pause["paused"] is True
    assert pause["by"] == "guard:GUARD_DAILY_LOSS"
    flatten_id = ids.client_order_id("control:guard:guard_daily_loss:2026-06-10", "f1")
    assert ("flatten", flatten_id) in executor.broker.calls
    assert executor.router.stats["f1"].last_error is not None
    assert executor.router.stats["f1"].last_error.startswith("GUARD_DAILY_LOSS: daily loss 100.00/100.00")
    # Acted on once; entries stay refused for the day, without a broker call.
    assert executor.guards.evaluate_all() == 0
    calls = len(executor.broker.calls)
    await executor.run(entry("s2", 1))
    assert len(executor.broker.calls) == calls
    assert executor.errors()[-1].code == "GUARD_DAILY_LOSS"
    await executor.lanes.close()


async def test_a_breach_found_by_the_check_itself_is_acted_on_too() -> None:
    executor = Executor({"trailing_drawdown": {"limit": 100}})
    executor.quotes.update("ESZ6", bid=Decimal(5000), ask=Decimal("5000.25"))
    opening = entry("s1", 1)
    await executor.run(opening)
    await executor.fill(opening.client_order_id, Side.BUY, 1, "5000")
    executor.quotes.update("ESZ6", bid=Decimal(4998), ask=Decimal("4998.25"))  # before the monitor's round
    await executor.run(entry("s2", 1))
    await executor.guards.settled()
    await wait_until(
        lambda: any(call[0] == "flatten" for call in executor.broker.calls), timeout_s=5, what="the guard's flatten"
    )
    await executor.lanes.join()
    await executor.router.outbox.drained()
    codes = [(e.code, e.client_order_id) for e in executor.errors()]
    assert ("GUARD_DRAWDOWN", ids.client_order_id("s2", "f1")) in codes  # the copy, refused
    assert ("GUARD_DRAWDOWN", None) in codes  # the breach, once
    assert [key for key, _ in executor.controls] == [b"f1"]
    assert executor.guards.evaluate_all() == 0
    await executor.lanes.close()


async def test_a_block_only_breach_reports_without_flattening() -> None:
    executor = Executor({"daily_loss": {"limit": 100, "on_breach": "block"}})
    executor.quotes.update("ESZ6", bid=Decimal(5000), ask=Decimal("5000.25"))
    opening = entry("s1", 1)
    await executor.run(opening)
    executor.quotes.update("ESZ6", bid=Decimal(4990), ask=Decimal("4990.25"))
    await executor.fill(opening.client_order_id, Side.BUY, 1, "5000")  # a fill evaluates at once
    await executor.guards.settled()
    await executor.router.outbox.drained()
    (breach,) = [e for e in executor.errors() if e.code == "GUARD_DAILY_LOSS"]
    assert breach.reason.endswith(": entries refused")
    assert not executor.controls
    assert all(call[0] != "flatten" for call in executor.broker.calls)


async def test_positions_are_seeded_from_the_broker_at_connect() -> None:
    executor = Executor({"max_contracts_per_symbol": 3})
    executor.broker.positions = (PositionEvent("f1", "ESZ6", 3, Decimal(5000)),)
    guard = executor.guards.accounts["f1"]

    class Context:
        config = executor.config
        pool = executor.pool

    executor_guards.seed_at_connect(Context(), executor.guards)  # type: ignore[arg-type]  # the two fields it reads
    await executor.pool.open("s")
    await wait_until(lambda: guard.holdings.get("ESZ6") is not None, timeout_s=5, what="positions seeded")
    await executor.run(entry("s1", 1))
    assert executor.errors()[-1].code == "GUARD_MAX_CONTRACTS"
    assert executor.broker.calls == []


def test_an_executor_worker_installs_the_guards_with_prices_of_its_own(make_app: Any) -> None:
    raw = {
        "sessions": [{"id": "s", "platform": "paper"}],
        "accounts": [{"id": "L", "session": "s"}, {"id": "f1", "session": "s"}],
        "copy_groups": [{"leader": "L", "followers": [{"account": "f1", "guards": {"daily_loss": {"limit": 100}}}]}],
        "market_data": {"platform": "dxlink", "endpoint": "ws://127.0.0.1:1", "symbols": {"ESZ6": "/ESZ26:XCME"}},
    }
    app = make_app(raw, ("execute",))
    stage = app.runtime.execution
    assert stage is not None and stage.router.guards is not None
    assert list(stage.router.guards.accounts) == ["f1"]
    assert app.runtime.quotes is not None  # executors read no prices otherwise
    without = make_app({**raw, "copy_groups": [{"leader": "L", "followers": [{"account": "f1"}]}]}, ("execute",))
    # Installed without guarded followers too (the dashboard may guard one later), with no prices.
    assert without.runtime.execution is not None and without.runtime.execution.router.guards is not None
    assert without.runtime.execution.router.guards.accounts == {} and without.runtime.quotes is None


def test_a_breach_is_an_alert() -> None:
    breach = executor_guards.breach_error(
        "f1", Refusal("GUARD_DRAWDOWN", "trailing drawdown 2000.00/2000.00", breach=True, flatten=True), "2026-06-10"
    )
    notice = from_error(breach)
    assert notice is not None and notice.kind == "guard" and notice.severity == "critical"
    assert notice.text == "trailing drawdown 2000.00/2000.00: flattening and pausing f1"


async def test_only_the_executor_that_owns_the_lane_acts_on_a_breach() -> None:
    executor = Executor({"daily_loss": {"limit": 100}})
    partition = partition_for("f1", INTENT_PARTITIONS)

    class Context:
        assignments = [lambda: {TopicPartition("orders.requests", (partition + 1) % INTENT_PARTITIONS)}]

    executor.guards.owns = executor_guards.lane_owner(Context())  # type: ignore[arg-type]  # the field it reads
    executor.quotes.update("ESZ6", bid=Decimal(5000), ask=Decimal("5000.25"))
    opening = entry("s1", 1)
    await executor.run(opening)
    await executor.fill(opening.client_order_id, Side.BUY, 1, "5010")  # bought 10 above the bid: -500
    await executor.guards.settled()
    await executor.router.outbox.drained()
    assert "GUARD_DAILY_LOSS" in executor.guards.accounts["f1"].breached  # seen here too, not acted on
    assert not [e for e in executor.errors() if e.code == "GUARD_DAILY_LOSS"] and not executor.controls
    Context.assignments.append(lambda: {TopicPartition("orders.requests", partition)})
    assert executor.guards.owns("f1")
    await executor.run(entry("s2", 1))
    assert executor.errors()[-1].code == "GUARD_DAILY_LOSS"  # still refused here: the breach holds
