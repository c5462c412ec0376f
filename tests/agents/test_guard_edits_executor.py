"""A follower's guards edited from the dashboard reach a running executor (issue #18 item 1):
the ``guards:<account>`` record on ``copy.controls`` changes the rule the next copy is checked
against, without a restart; what the guard already counted stays counted."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from waiting import wait_until

from copytrader.agents.execution import guards as executor_guards
from copytrader.agents.execution.guard_edits import GuardEdits
from copytrader.agents.execution.guard_store import GuardStore
from copytrader.agents.execution.router import OrderRouter
from copytrader.agents.shared.controls_feed import ControlsFeed
from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.agents.shared.sessions import SessionPool
from copytrader.app.factory import create_app
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
    OrderEvent,
    OrderStatus,
    PlaceOrder,
    PositionEvent,
    Side,
)
from copytrader.core import ids
from copytrader.core.config import CopyConfig, parse_config
from copytrader.core.control_records import GuardsCommand
from copytrader.core.guard_state import AccountGuard, quote_marks, rules_by_account
from copytrader.core.guards import build
from copytrader.core.quotes import QuoteBook
from copytrader.core.records import OrderError, OrderIntent
from copytrader.core.schemas.guards import DailyLossIn, GuardsIn
from copytrader.core.settings import Settings
from copytrader.core.topics import ensure_topics, topic_name

WED = datetime(2026, 6, 10, 15, 0, tzinfo=UTC)
RAW: dict[str, Any] = {
    "sessions": [{"id": "s", "platform": "paper"}],
    "accounts": [{"id": "L", "session": "s"}, {"id": "f1", "session": "s"}, {"id": "f2", "session": "s"}],
    "copy_groups": [
        {
            "leader": "L",
            "followers": [{"account": "f1"}, {"account": "f2", "guards": {"max_contracts_per_symbol": 9}}],
        }
    ],
    "market_data": {"platform": "dxlink", "endpoint": "ws://127.0.0.1:1", "symbols": {"ESZ6": "/ESZ26:XCME"}},
}


class Broker(BrokerAdapter):
    """Accepts every order and keeps it working; ``placed`` is what reached the broker."""

    platform = "fake"
    capabilities = Capabilities()

    def __init__(self, config: SessionConfig) -> None:
        super().__init__(config)
        self.placed: list[str] = []
        self.working: list[OrderEvent] = []
        self.positions: tuple[PositionEvent, ...] = ()

    async def connect(self) -> None:
        self._set_state(ConnectionState.CONNECTED)

    async def disconnect(self) -> None:
        self._set_state(ConnectionState.DISCONNECTED)

    async def place(self, command: PlaceOrder) -> OrderAck:
        self.placed.append(command.client_order_id)
        self.working.append(
            OrderEvent(
                command.account_id,
                command.client_order_id,
                f"B{len(self.placed)}",
                command.symbol,
                command.side,
                command.order_type,
                command.quantity,
                OrderStatus.WORKING,
            )
        )
        return OrderAck(command.account_id, command.client_order_id, f"B{len(self.placed)}", OrderStatus.WORKING)

    async def modify(self, command: ModifyOrder) -> OrderAck:
        return OrderAck(command.account_id, command.client_order_id, "B0", OrderStatus.WORKING)

    async def cancel(self, command: CancelOrder) -> OrderAck:
        return OrderAck(command.account_id, command.client_order_id, "B0", OrderStatus.CANCELLED)

    async def flatten(self, command: FlattenPosition) -> OrderAck:
        return OrderAck(command.account_id, command.client_order_id, "B0", OrderStatus.FILLED)

    async def lookup(self, account_id: str, client_order_id: str) -> OrderAck | None:
        return None

    async def snapshot(self, account_id: str) -> AccountSnapshot:
        mine = tuple(o for o in self.working if o.account_id == account_id)
        return AccountSnapshot(account_id, Decimal(50000), mine, self.positions)


class Executor:
    """The executor's router with its guards and the dashboard's edits, as ``install`` wires them."""

    def __init__(self, store: GuardStore | None = None) -> None:
        self.config: CopyConfig = parse_config(RAW, env={})
        self.outbox = MemoryOutbox()
        self.broker = Broker(self.config.sessions["s"])
        self.pool = SessionPool(self.config, lambda _cfg: self.broker)
        self.router = OrderRouter(self.pool, self.outbox)
        self.guards = executor_guards.ExecutorGuards(rules_by_account(self.config), clock=lambda: WED)
        self.router.guards = self.guards
        self.quotes = QuoteBook(max_age_s=5.0, clock=lambda: WED)
        self.edits = GuardEdits(self.guards, store, self.adapter_for, lambda: self.quotes)

    def adapter_for(self, account_id: str) -> BrokerAdapter | None:
        return self.broker if self.broker.health().state is ConnectionState.CONNECTED else None

    async def entry(self, signal: str, quantity: int, account: str = "f1") -> OrderError | None:
        """One copied entry; the guard's refusal, or None when it reached the broker."""
        intent = OrderIntent(
            client_order_id=ids.client_order_id(signal, account),
            signal_id=signal,
            account_id=account,
            platform="paper",
            leader_account="L",
            action="place",
            symbol="ESZ6",
            side="buy",
            quantity=quantity,
        )
        before = len(self.broker.placed)
        await self.router.execute(intent, False)
        await self.router.outbox.drained()
        if len(self.broker.placed) > before:
            return None
        errors = [e for e in self.outbox.sent["error"] if isinstance(e, OrderError)]
        return errors[-1]

    async def fill(self, client_id: str, quantity: int, price: str) -> None:
        event = FillEvent(
            "f1", client_id, "B1", f"x{client_id}", "ESZ6", Side.BUY, quantity, Decimal(price), quantity, 0
        )
        await self.router.on_broker_event("fake", event)


def record(account: str, guards: GuardsIn | None, by: str = "admin") -> bytes:
    return GuardsCommand(f"g-{uuid.uuid4().hex[:6]}", account, guards, by, 0.0).encode()


async def test_the_next_copy_is_checked_against_the_edited_rule_without_a_restart() -> None:
    executor = Executor()
    feed = ControlsFeed("unused:9092", "", executor.edits.apply)  # ``handle`` is what the consumer calls
    assert await executor.entry("s1", 2) is None  # unguarded: goes to the broker
    assert await feed.handle(0, record("f1", GuardsIn(max_contracts_per_symbol=3)))
    await executor.edits.settled()  # the order working since before counts (the broker's snapshot)
    refused = await executor.entry("s2", 2)  # 2 working + 2 would be 4 > 3
    assert refused is not None and refused.code == "GUARD_MAX_CONTRACTS"
    assert "max 3 contracts per symbol" in refused.reason and "would be 4" in refused.reason
    assert await executor.entry("s3", 1) is None  # 3 is within the edited rule
    assert len(executor.broker.placed) == 2

    assert await feed.handle(1, record("f1", GuardsIn(max_contracts_per_symbol=5)))
    assert await executor.entry("s4", 2) is None  # raised: what the guard counted (3 working) stays
    assert (await executor.entry("s5", 1) or OrderError("x", "x", "x")).code == "GUARD_MAX_CONTRACTS"

    assert await feed.handle(2, record("f1", GuardsIn()))  # every field unset: no guards at all
    assert "f1" not in executor.guards.accounts
    assert await executor.entry("s6", 50) is None


async def test_a_newly_guarded_account_gets_its_positions_from_the_broker_and_its_saved_figures(
    tmp_path: Path,
) -> None:
    store_path = tmp_path / "guards.json"
    saved = AccountGuard("f1", build(GuardsIn(max_contracts_total=1)), quote_marks(None))
    saved.realised_today = saved.realised_total = Decimal(-120)
    saved.day = WED.date()
    GuardStore(store_path).save({"f1": saved})
    store = GuardStore(store_path)
    executor = Executor(store)
    assert store.load(executor.guards.accounts) == 0  # f1 had no guards at this start

    executor.broker.positions = (PositionEvent("f1", "ESZ6", 2, Decimal("5000")),)
    await executor.pool.open("s")
    executor.edits.apply(GuardsCommand("g1", "f1", GuardsIn(max_contracts_per_symbol=3), "admin", 0.0))
    guard = executor.guards.accounts["f1"]
    assert guard.realised_today == Decimal(-120)  # restored from the file
    await executor.edits.settled()
    holding = guard.holdings.get("ESZ6")
    assert holding is not None and holding.net == 2
    refused = await executor.entry("s1", 2)
    assert refused is not None and "holds +2" in refused.reason


async def test_a_loss_rule_set_live_starts_prices_and_a_breach_clears_when_its_rule_changes() -> None:
    executor = Executor()
    assert executor.guards.quotes is None  # no rule needed prices at start
    loss = GuardsIn(daily_loss=DailyLossIn(limit=Decimal(100), on_breach="block"))
    executor.edits.apply(GuardsCommand("g1", "f1", loss, "admin", 0.0))
    assert executor.guards.quotes is executor.quotes
    executor.quotes.update("ESZ6", bid=Decimal("4990.00"), ask=Decimal("4990.25"))
    assert await executor.entry("s1", 1) is None
    await executor.fill(ids.client_order_id("s1", "f1"), 1, "5000.00")  # marked at 4990: -500
    refused = await executor.entry("s2", 1)
    assert refused is not None and refused.code == "GUARD_DAILY_LOSS" and "500.00/100.00" in refused.reason
    await executor.guards.settled()

    raised = GuardsIn(daily_loss=DailyLossIn(limit=Decimal(1000), on_breach="block"))
    executor.edits.apply(GuardsCommand("g2", "f1", raised, "admin", 0.0))
    assert await executor.entry("s3", 1) is None  # judged afresh under the raised limit


async def test_lost_guard_figures_wait_for_an_edit_made_after_the_start(tmp_path: Path) -> None:
    """The start's replay of earlier dashboard edits lifts nothing; the trader's next edit does."""
    path = tmp_path / "guards.json"
    path.write_bytes(b"{truncated")
    store = GuardStore(path)
    executor = Executor(store)
    loss = GuardsIn(daily_loss=DailyLossIn(limit=Decimal(100), on_breach="block"))
    replayed = GuardsCommand("g1", "f1", loss, "admin", 1.0)  # an edit of long ago
    store.load_edits()
    assert store.load(executor.guards.accounts) == 0 and store.refused is not None
    executor.edits.apply(replayed)  # f1 becomes guarded by a record published before the start
    refused = await executor.entry("s1", 1)
    assert refused is not None and refused.code == "GUARD_STATE_LOST" and "guards.json.refused-" in refused.reason
    executor.edits.apply(GuardsCommand("g1", "f1", loss, "admin", store.refused_at - 5.0))  # replayed again
    assert (await executor.entry("s2", 1) or OrderError("x", "x", "x")).code == "GUARD_STATE_LOST"
    executor.quotes.update("ESZ6", bid=Decimal("5000.00"), ask=Decimal("5000.25"))
    executor.edits.apply(GuardsCommand("g2", "f1", loss, "admin", store.refused_at + 1.0))  # the trader's
    assert await executor.entry("s3", 1) is None


@pytest_asyncio.fixture
async def prefix(kafka_bootstrap: str) -> AsyncIterator[str]:
    name = f"guardedit{uuid.uuid4().hex[:8]}."
    await ensure_topics(kafka_bootstrap, name)
    yield name


@pytest.mark.kafka
async def test_an_edit_published_on_the_real_topic_reaches_a_running_executor(
    kafka_bootstrap: str, prefix: str
) -> None:
    executor = Executor()
    feed = ControlsFeed(kafka_bootstrap, prefix, executor.edits.apply)
    task = asyncio.ensure_future(feed.run())
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await asyncio.wait_for(feed.caught_up.wait(), 30)
        assert await executor.entry("s1", 3) is None
        command = GuardsCommand("g-live", "f1", GuardsIn(max_contracts_total=3), "admin", 0.0)
        await producer.send_and_wait(topic_name(prefix, "copy.controls"), command.encode(), key=command.key.encode())
        await wait_until(lambda: "f1" in executor.edits.applied, timeout_s=20, what="the edit applied")
        refused = await executor.entry("s2", 1)
        assert refused is not None and refused.code == "GUARD_MAX_CONTRACTS_TOTAL"
        assert "max 3 contracts in total" in refused.reason
        assert executor.broker.placed == [ids.client_order_id("s1", "f1")]
        assert executor.guards.accounts["f2"].rules.max_contracts_per_symbol == 9  # the YAML's, untouched
    finally:
        await producer.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_an_executor_worker_follows_the_guards_records(make_app: Any) -> None:
    """The wiring: ``install`` gives every executor a feed whose records reach its router's guards."""
    app = make_app({**RAW, "copy_groups": [{"leader": "L", "followers": [{"account": "f1"}]}]}, ("execute",))
    stage = app.runtime.execution
    assert stage is not None and stage.router.guards is not None
    guards = stage.router.guards
    assert guards.accounts == {} and guards.edits is not None
    assert await guards.edits.handle(0, record("f1", GuardsIn(max_orders_per_minute=2)))
    assert guards.accounts["f1"].rules.max_orders_per_minute == 2
    assert not await guards.edits.handle(1, b'{"kind": "guards", "account_id": "f1", "guards": {"tz": "Mars/Base"}}')
    assert guards.accounts["f1"].rules.max_orders_per_minute == 2  # a refused record changes nothing


async def test_a_restarted_executor_checks_its_first_copies_against_the_dashboards_rules(tmp_path: Path) -> None:
    """Before its replay of copy.controls is done, a restarted executor has the edits it last
    applied (kept in the guards' file), not the config file's rules."""

    def start() -> Any:
        settings = Settings(
            app_id="guardrestart",
            kafka_broker="kafka://127.0.0.1:1",
            data_dir=tmp_path,
            roles=("execute",),
            executor_consumer="faust",
        )
        return create_app(settings, parse_config(RAW, env={}), outbox=MemoryOutbox())

    first = start()
    guards = first.runtime.execution.router.guards
    assert await guards.edits.handle(0, record("f1", GuardsIn(max_contracts_total=2), by="risk-desk"))
    assert await guards.edits.handle(1, record("f2", GuardsIn()))  # f2's file rule removed
    (save,) = [hook for hook in first.runtime.shutdown_hooks if hook.__name__ == "save_guards"]
    await save()

    again = start().runtime.execution.router.guards
    assert set(again.accounts) == {"f1"}
    assert again.accounts["f1"].rules.max_contracts_total == 2
