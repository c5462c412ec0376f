"""An account added in the dashboard joins copying: planner and executor apply its records.

The records are exactly what the web worker publishes on ``copy.controls``; here they are
handed to each worker's applier directly (the Kafka feed around them is tested on the broker).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from copytrader.agents.execution.accounts import ExecutorAccounts
from copytrader.agents.fanout.controls import planner_applier
from copytrader.agents.fanout.planner import FanoutPlanner
from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.app.factory import CopyTraderApp, create_app
from copytrader.brokers.paper.adapter import reset_venues
from copytrader.common.crypto import CredentialCipher, generate_key
from copytrader.core import ids
from copytrader.core.config import parse_config
from copytrader.core.control_records import AccountCommand, AlertTokenCommand, Login, RuleCommand, seal_login
from copytrader.core.live_config import dashboard_session_id
from copytrader.core.records import Execution, OrderError, OrderIntent, TradeSignal
from copytrader.core.settings import Settings

CONFIG = {
    "sessions": [{"id": "p", "platform": "paper", "options": {"tick_ms": 0, "venue": "dash-test"}}],
    "accounts": [{"id": "L", "session": "p"}, {"id": "f1", "session": "p"}],
    "copy_groups": [{"id": "g", "leader": "L", "followers": [{"account": "f1"}]}],
}
CIPHER = CredentialCipher([generate_key()])


def account_record(
    account_id: str = "x1", platform: str = "paper", secret: str | None = None, broker_account: str = "PX-1"
) -> AccountCommand:
    sealed = seal_login(CIPHER, account_id, Login("login", secret)) if secret else None
    return AccountCommand(
        f"c-{uuid.uuid4().hex[:6]}",
        account_id,
        platform,
        broker_account,
        "25000",
        True,
        dashboard_session_id(account_id),
        None,
        sealed,
        CIPHER.primary_key_id if sealed else None,
        "admin",
    )


def join(account_id: str = "x1", quantity: int = 3) -> RuleCommand:
    return RuleCommand("r1", "g", account_id, {"mode": "fixed", "quantity": quantity}, True, "admin")


def signal() -> TradeSignal:
    return TradeSignal(
        signal_id=ids.signal_id("L", "7", "new", 1),
        leader_account="L",
        platform="paper",
        symbol="ESZ6",
        side="buy",
        quantity=2,
        kind="new",
        leader_order_id="7",
        stamps={"detected": 1.0},
    )


def test_the_planner_copies_to_an_account_added_while_running() -> None:
    planner = FanoutPlanner(parse_config(CONFIG, env={}))
    apply = planner_applier(planner)
    apply(join())  # the membership can arrive before the account (compaction reorders records)
    intents, errors = planner.plan(signal())
    assert [i.account_id for i in intents] == ["f1"]
    assert [(e.account_id, e.code) for e in errors] == [("x1", "RULE")]  # refused with a reason, not dropped
    apply(account_record())
    intents, errors = planner.plan(signal())
    by_account = {i.account_id: i for i in intents}
    assert set(by_account) == {"f1", "x1"} and not errors
    assert (by_account["x1"].quantity, by_account["x1"].platform) == (3, "paper")
    assert by_account["x1"].client_order_id == ids.client_order_id(signal().signal_id, "x1")


def test_a_record_for_the_web_workers_alone_changes_nothing_in_a_planner() -> None:
    """Alert tokens share copy.controls with the switches; a planner must pass them by."""
    planner = FanoutPlanner(parse_config(CONFIG, env={}))

    def plan() -> list[tuple[str, int]]:
        intents, errors = planner.plan(signal())
        return [(i.account_id, i.quantity) for i in intents] + [(e.account_id, -1) for e in errors]

    before = plan()
    planner_applier(planner)(AlertTokenCommand("c1", "tv-1", "g", "0" * 64, by="admin", at=1.0))
    assert plan() == before
    assert not planner.controls.paused_all and not planner.controls.paused_accounts


@pytest.fixture
def app(tmp_path: Path) -> Iterator[CopyTraderApp]:
    reset_venues()
    settings = Settings(
        app_id=f"dash-{uuid.uuid4().hex[:8]}", kafka_broker="kafka://127.0.0.1:1", data_dir=tmp_path, roles=("execute",)
    )
    app = create_app(settings, parse_config(CONFIG, env={}), outbox=MemoryOutbox())
    yield app
    reset_venues()


def intent_for(account_id: str) -> OrderIntent:
    return OrderIntent(
        client_order_id=ids.client_order_id("s1", account_id),
        signal_id="s1",
        account_id=account_id,
        platform="paper",
        leader_account="L",
        action="place",
        symbol="ESZ6",
        side="buy",
        quantity=1,
        stamps={"detected": 1.0},
    )


async def test_the_executor_places_for_an_account_whose_record_arrives_just_after_its_order(app: CopyTraderApp) -> None:
    runtime = app.runtime
    accounts: ExecutorAccounts = runtime.execution.accounts  # type: ignore[union-attr, assignment]
    opened: list[str] = []

    async def record_arrives() -> None:  # what ControlsFeed.sync does when the record is in flight
        await accounts.apply(account_record())
        await accounts.apply(join())

    accounts.start_session = lambda sid: opened.append(sid) or _done()  # type: ignore[assignment, func-returns-value]
    runtime.pool.catch_up = record_arrives
    await runtime.execution.router.execute(intent_for("x1"))
    await runtime.execution.router.outbox.drained()
    outbox: MemoryOutbox = runtime.outbox  # type: ignore[assignment]
    acks = [e for e in outbox.sent["execution"] if isinstance(e, Execution) and e.kind == "ack"]
    assert [a.account_id for a in acks] == ["x1"] and not outbox.sent["error"]
    assert opened == [dashboard_session_id("x1")] and "x1" in accounts.followers
    await runtime.pool.close()


async def test_an_order_for_an_account_nobody_defined_is_refused_with_the_reason(app: CopyTraderApp) -> None:
    runtime = app.runtime

    async def nothing_new() -> None:
        return None

    runtime.pool.catch_up = nothing_new
    await runtime.execution.router.execute(intent_for("ghost"))
    await runtime.execution.router.outbox.drained()
    outbox: MemoryOutbox = runtime.outbox  # type: ignore[assignment]
    errors = [e for e in outbox.sent["error"] if isinstance(e, OrderError)]
    assert [(e.account_id, e.code) for e in errors] == [("ghost", "INVALID")]
    assert "unknown account" in errors[0].reason


async def test_a_new_login_reopens_the_session_and_a_missing_key_refuses_the_account(app: CopyTraderApp) -> None:
    runtime = app.runtime
    resets: list[str] = []

    async def reset(session_id: str) -> None:
        resets.append(session_id)

    runtime.pool.reset = reset  # type: ignore[method-assign]
    accounts = ExecutorAccounts(runtime, set(), lambda sid: _done(), CIPHER)
    await accounts.apply(account_record(platform="tradovate", secret="first"))
    session = runtime.config.session_for("x1")
    assert (session.platform, session.username, session.secret) == ("tradovate", "login", "first")
    assert resets == []  # a new session opens on first use
    await accounts.apply(account_record(platform="tradovate", secret="second"))
    assert resets == [dashboard_session_id("x1")] and runtime.config.session_for("x1").secret == "second"

    keyless = ExecutorAccounts(runtime, set(), lambda sid: _done(), None)
    await keyless.apply(account_record("x2", platform="tradovate", secret="s"))
    assert "x2" not in runtime.config.accounts  # never connects with a login it cannot open
    assert "no key" in keyless.refused["x2"]


async def _done() -> None:
    return None
