"""Reconciliation in an executor worker against the paper simulator (issue #17 items 1 and 2).

The worker is the product's own (``create_app`` with role ``execute``): its session pool, its
router and lanes, and the reconciler the factory wires to them. Correction intents travel as
on ``orders.requests``: here the outbox hands them straight to the worker's lanes. A follower
is made to drift by placing orders directly at the simulator, behind the copier's back.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from waiting import wait_until

from copytrader.agents.reconcile.follower import FollowerReconciler
from copytrader.agents.reconcile.leader import take_snapshot
from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.app.factory import CopyTraderApp, create_app
from copytrader.brokers.model import OrderType, PlaceOrder, Side
from copytrader.brokers.paper.adapter import reset_venues
from copytrader.core import ids
from copytrader.core import reconcile as rc
from copytrader.core.config import parse_config
from copytrader.core.control_records import ReconcileCommand
from copytrader.core.records import AccountStatus, Execution, OrderError, OrderIntent
from copytrader.core.settings import Settings


class LaneOutbox(MemoryOutbox):
    """Intents go to the executor's lanes, as they would through ``orders.requests``."""

    app: CopyTraderApp | None = None

    async def intents(self, signal_id: str, intents: list[OrderIntent]) -> None:
        await super().intents(signal_id, intents)
        assert self.app is not None and self.app.runtime.execution is not None
        for intent in intents:
            self.app.runtime.execution.lanes.submit(intent)


def config(auto_correct: bool) -> dict[str, Any]:
    return {
        "sessions": [
            {"id": "p", "platform": "paper", "options": {"tick_ms": 0, "venue": "reconcile-test"}},
            {"id": "pf", "platform": "paper", "options": {"tick_ms": 0, "venue": "reconcile-test"}},
        ],
        "accounts": [
            {"id": "lead", "session": "p", "broker_account": "LEAD"},
            {"id": "f1", "session": "pf", "broker_account": "F1"},
        ],
        "copy_groups": [
            {
                "id": "g",
                "leader": "lead",
                "auto_correct": auto_correct,
                "followers": [{"account": "f1", "rule": {"multiplier": "2"}}],
            }
        ],
        "reconcile": {"settle_s": 0.2, "max_leader_age_s": 60},
    }


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Any]:
    reset_venues()
    made: list[CopyTraderApp] = []

    def build(auto_correct: bool) -> tuple[CopyTraderApp, LaneOutbox, FollowerReconciler]:
        outbox = LaneOutbox()
        settings = Settings(
            app_id=f"reconcile-{uuid.uuid4().hex[:8]}",
            kafka_broker="kafka://127.0.0.1:1",
            data_dir=tmp_path,
            roles=("execute",),
            executor_consumer="faust",
        )
        app = create_app(settings, parse_config(config(auto_correct), env={}), outbox=outbox)
        outbox.app = app
        made.append(app)
        assert app.runtime.reconcile is not None and app.runtime.reconcile.followers is not None
        return app, outbox, app.runtime.reconcile.followers

    yield build
    reset_venues()


async def trade(app: CopyTraderApp, account: str, side: Side, quantity: int, client_id: str, **kw: Any) -> None:
    adapter = await app.runtime.pool.adapter_for(account)
    await adapter.place(PlaceOrder(account, client_id, "ESZ6", side, quantity, **kw))


async def publish_leader(app: CopyTraderApp, reconciler: FollowerReconciler) -> rc.BrokerState:
    """What the ingest worker does: the leader's snapshot, handed to the reconciler."""
    state = await take_snapshot(app.runtime.pool.adapter_for, "lead", 5.0)
    reconciler.leaders[state.account_id] = state
    return state


async def position(app: CopyTraderApp, account: str) -> int:
    adapter = await app.runtime.pool.adapter_for(account)
    snapshot = await adapter.snapshot(account)
    return sum(p.net_quantity for p in snapshot.positions if p.symbol == "ESZ6")


def errors(outbox: MemoryOutbox, code: str) -> list[OrderError]:
    return [e for e in outbox.sent["error"] if isinstance(e, OrderError) and e.code == code]


def statuses(outbox: MemoryOutbox) -> list[dict[str, Any]]:
    return [s.reconciliation for s in outbox.sent["status"] if isinstance(s, AccountStatus) and s.reconciliation]


async def close(app: CopyTraderApp, reconciler: FollowerReconciler) -> None:
    await reconciler.close()
    for hook in app.runtime.shutdown_hooks:
        await hook()


async def test_drift_is_reported_and_nothing_is_placed_without_auto_correct(worker: Any) -> None:
    app, outbox, reconciler = worker(False)
    await trade(app, "lead", Side.BUY, 1, "lead-1")
    await trade(app, "f1", Side.BUY, 5, "manual-1")  # the trader's own order at the broker
    await publish_leader(app, reconciler)
    report = await reconciler.reconcile("f1", "test")
    assert report["state"] == "drifted" and report["correction"].startswith("confirming")
    assert report["drift"] == {"ESZ6": {"expected": 2, "actual": 5, "difference": -3}}
    assert report["positions"] == {"ESZ6": 5}
    assert errors(outbox, rc.DRIFT_POSITION) == []  # not on one look: a copy may be on its way
    await wait_until(lambda: errors(outbox, rc.DRIFT_POSITION), timeout_s=5, what="the confirmed drift")
    assert (reconciler.records["f1"].last or {})["correction"] == "off"
    (drift,) = errors(outbox, rc.DRIFT_POSITION)
    assert "holds 5, copy group says 2" in drift.reason and drift.account_id == "f1"
    await reconciler.reconcile("f1", "again")
    assert len(errors(outbox, rc.DRIFT_POSITION)) == 1  # said once per episode
    assert outbox.sent["intent"] == [] and await position(app, "f1") == 5
    await close(app, reconciler)


async def test_auto_correct_fixes_drift_exactly_once(worker: Any) -> None:
    app, outbox, reconciler = worker(True)
    await trade(app, "lead", Side.BUY, 2, "lead-1")
    await trade(app, "f1", Side.BUY, 1, "manual-1")  # follower holds 1, should hold 4
    await publish_leader(app, reconciler)
    first = await reconciler.reconcile("f1", "test")
    assert first["state"] == "drifted" and first["correction"].startswith("confirming")
    assert outbox.sent["intent"] == []  # not on one look: a copy may be on its way
    await wait_until(
        lambda: len(outbox.sent["intent"]) == 1, timeout_s=5, what="reconciler condition"
    )  # the confirming look
    (fix,) = outbox.sent["intent"]
    assert isinstance(fix, OrderIntent) and (fix.action, fix.side, fix.quantity) == ("place", "buy", 3)
    await wait_until(lambda: not reconciler.records["f1"].pending, timeout_s=5, what="reconciler condition")
    assert await position(app, "f1") == 4
    for _ in range(3):  # repeated reconciles, same leader snapshot: in sync, nothing more
        report = await reconciler.reconcile("f1", "again")
        assert report["state"] == "in_sync"
    assert len(outbox.sent["intent"]) == 1 and await position(app, "f1") == 4
    assert statuses(outbox)[-1]["corrections"] == [fix.client_order_id]
    await close(app, reconciler)


async def test_a_correction_runs_once_and_a_new_one_needs_a_newer_leader_snapshot(worker: Any) -> None:
    """The correction redelivered to the executor places nothing; the same drift seen again
    after it is not corrected from the same (now older) leader snapshot, only from a new one,
    under a new key."""
    app, outbox, reconciler = worker(True)
    await trade(app, "lead", Side.SELL, 1, "lead-1")
    await publish_leader(app, reconciler)
    await reconciler.reconcile("f1", "test")
    await wait_until(lambda: len(outbox.sent["intent"]) == 1, timeout_s=5, what="the correction")
    await wait_until(lambda: not reconciler.records["f1"].pending, timeout_s=5, what="its outcome")
    assert await position(app, "f1") == -2
    (fix,) = outbox.sent["intent"]
    assert isinstance(fix, OrderIntent)
    execution = app.runtime.execution
    assert execution is not None
    await execution.router.execute(fix, True)  # a redelivery of the same correction
    assert await position(app, "f1") == -2
    await trade(app, "f1", Side.BUY, 2, "manual-undo")  # back to the state that was corrected
    drifts_before = len(errors(outbox, rc.DRIFT_POSITION))
    report = await reconciler.reconcile("f1", "again")
    assert report["correction"] == "waiting: the leader snapshot is older than this account's last copy"
    assert len(outbox.sent["intent"]) == 1
    assert len(errors(outbox, rc.DRIFT_POSITION)) == drifts_before  # not reported from it either
    await publish_leader(app, reconciler)
    await reconciler.reconcile("f1", "newer leader snapshot")
    await wait_until(lambda: len(outbox.sent["intent"]) == 2, timeout_s=5, what="the second correction")
    second = outbox.sent["intent"][1]
    assert isinstance(second, OrderIntent) and second.client_order_id != fix.client_order_id
    await wait_until(lambda: not reconciler.records["f1"].pending, timeout_s=5, what="its outcome")
    assert await position(app, "f1") == -2
    await close(app, reconciler)


async def test_a_follower_ahead_of_an_old_leader_snapshot_is_not_reported_as_drifted(worker: Any) -> None:
    """At 1,000 followers a round of looks outlasts the leader's next trade: a follower that
    already copied it holds more than the older leader snapshot says. That is not a drift:
    nothing is reported or corrected until a leader snapshot newer than the copy decides."""
    app, outbox, reconciler = worker(True)
    await trade(app, "lead", Side.BUY, 1, "lead-1")
    await trade(app, "f1", Side.BUY, 2, "copy-1")
    await publish_leader(app, reconciler)  # taken here: leader 1, follower 2 (in sync)
    await trade(app, "lead", Side.BUY, 1, "lead-2")  # the leader's next trade, after the snapshot
    await trade(app, "f1", Side.BUY, 2, "copy-2")
    copy = OrderIntent(
        client_order_id="copy-2",
        signal_id="lead:2:new",
        account_id="f1",
        platform="paper",
        leader_account="lead",
        action="place",
        symbol="ESZ6",
        side="buy",
        quantity=2,
    )
    ack = Execution(execution_id="f1|copy-2", account_id="f1", platform="paper", kind="ack", client_order_id="copy-2")
    reconciler.on_outcome(copy, ack)  # the executor saw the copy's outcome after the snapshot
    for trigger in ("snapshot", "confirm", "confirm again"):
        report = await reconciler.reconcile("f1", trigger)
        assert report["state"] == "drifted"  # what the status row shows: the comparison as it is
        assert report["correction"] == "waiting: the leader snapshot is older than this account's last copy"
    assert errors(outbox, rc.DRIFT_POSITION) == [] and outbox.sent["intent"] == []
    await publish_leader(app, reconciler)  # the next leader snapshot: leader 2, follower 4
    report = await reconciler.reconcile("f1", "newer leader snapshot")
    assert report["state"] == "in_sync"
    assert errors(outbox, rc.DRIFT_POSITION) == [] and outbox.sent["intent"] == []
    await close(app, reconciler)


async def test_a_key_already_sent_is_never_sent_again(worker: Any) -> None:
    app, outbox, reconciler = worker(True)
    await trade(app, "lead", Side.BUY, 1, "lead-1")
    await publish_leader(app, reconciler)
    target = rc.target_for(app.runtime.config, "f1", reconciler.leaders, reconciler.clock(), 60)
    follower = await take_snapshot(app.runtime.pool.adapter_for, "f1", 5)
    for planned in rc.corrections(target, rc.compare(target, follower)):
        reconciler._remember(reconciler._tried, planned.client_order_id)  # sent by an earlier look
    await reconciler.reconcile("f1", "test")
    report = await reconciler.reconcile("f1", "confirm")
    await wait_until(
        lambda: (reconciler.records["f1"].last or {}).get("correction", "").startswith("not corrected: these"),
        timeout_s=5,
        what="the held-back correction",
        observe=lambda: reconciler.records["f1"].last,
    )
    assert outbox.sent["intent"] == [] and report["state"] == "drifted"
    await close(app, reconciler)


async def test_orphan_is_cancelled_with_auto_correct(worker: Any) -> None:
    app, outbox, reconciler = worker(True)
    orphan = ids.follower_order_id("lead", "gone-order", "f1")
    await trade(app, "f1", Side.BUY, 1, orphan, order_type=OrderType.LIMIT, limit_price=1)
    await publish_leader(app, reconciler)
    first = await reconciler.reconcile("f1", "test")
    assert first["orphans"] == [orphan] and first["open_orders"] == 1
    await wait_until(lambda: len(outbox.sent["intent"]) == 1, timeout_s=5, what="reconciler condition")
    assert len(errors(outbox, rc.ORPHAN_ORDER)) == 1
    (cancel,) = outbox.sent["intent"]
    assert cancel.action == "cancel" and cancel.target_client_order_id == orphan  # type: ignore[attr-defined]
    await wait_until(lambda: not reconciler.records["f1"].pending, timeout_s=5, what="reconciler condition")
    report = await reconciler.reconcile("f1", "after")
    assert report["state"] == "in_sync" and report["open_orders"] == 0
    await close(app, reconciler)


async def test_a_failed_follower_snapshot_changes_nothing(worker: Any) -> None:
    app, outbox, reconciler = worker(True)
    await trade(app, "lead", Side.BUY, 1, "lead-1")
    await publish_leader(app, reconciler)
    adapter = await app.runtime.pool.adapter_for("f1")

    async def broken(account_id: str) -> Any:
        raise ConnectionResetError("snapshot endpoint down")

    adapter.snapshot = broken  # type: ignore[method-assign]
    report = await reconciler.reconcile("f1", "test")
    assert report["state"] == "unavailable" and "snapshot endpoint down" in report["reason"]
    (error,) = [e for e in errors(outbox, rc.RECONCILE_UNAVAILABLE) if "endpoint down" in e.reason]
    assert "nothing changed" in error.reason
    assert outbox.sent["intent"] == []
    await close(app, reconciler)


async def test_a_stale_leader_snapshot_is_never_corrected_from(worker: Any) -> None:
    app, outbox, reconciler = worker(True)
    state = await publish_leader(app, reconciler)
    reconciler.leaders["lead"] = rc.BrokerState("lead", state.taken_at - 3600, {"ESZ6": 3})
    report = await reconciler.reconcile("f1", "test")
    assert report["state"] == "unavailable" and "old" in report["reason"]
    assert outbox.sent["intent"] == [] and await position(app, "f1") == 0
    await close(app, reconciler)


async def test_a_paused_follower_is_reported_not_corrected(worker: Any) -> None:
    from copytrader.core.control_records import ControlCommand

    app, outbox, reconciler = worker(True)
    await trade(app, "lead", Side.BUY, 1, "lead-1")
    await publish_leader(app, reconciler)
    reconciler.on_command(ControlCommand("c", "*", True))
    await reconciler.reconcile("f1", "test")
    await wait_until(
        lambda: (reconciler.records["f1"].last or {}).get("correction") == "not corrected: copying is paused",
        timeout_s=5,
        what="the confirmed drift, not corrected",
    )
    assert outbox.sent["intent"] == [] and len(errors(outbox, rc.DRIFT_POSITION)) == 1
    await close(app, reconciler)


async def test_leader_changes_while_the_follower_was_down_are_caught_up_on_connect(worker: Any) -> None:
    app, outbox, reconciler = worker(True)
    await trade(app, "lead", Side.BUY, 1, "lead-while-follower-down")
    await publish_leader(app, reconciler)
    await app.runtime.pool.adapter_for("f1")  # the follower's session (re)connects
    await wait_until(
        lambda: any(s.get("trigger") == "connect" for s in statuses(outbox)), timeout_s=5, what="reconciler condition"
    )
    await wait_until(lambda: len(outbox.sent["intent"]) == 1, timeout_s=5, what="reconciler condition")
    await wait_until(lambda: not reconciler.records["f1"].pending, timeout_s=5, what="reconciler condition")
    assert await position(app, "f1") == 2
    await close(app, reconciler)


async def test_a_request_reconciles_late_accounts_after_the_wait(worker: Any) -> None:
    app, outbox, reconciler = worker(False)
    reconciler.settings.snapshot_timeout_s = 0.1
    await publish_leader(app, reconciler)
    reconciler.live = True
    reconciler.on_command(ReconcileCommand("r1", "f1", "test", 0.0))
    await wait_until(
        lambda: any(s.get("trigger") == "request" for s in statuses(outbox)), timeout_s=5, what="reconciler condition"
    )
    assert statuses(outbox)[-1]["state"] == "in_sync"
    await close(app, reconciler)


async def test_without_leader_snapshots_the_watchdog_says_so(worker: Any) -> None:
    app, outbox, reconciler = worker(True)
    (report,) = await reconciler.overdue()  # no ingest worker has published the leader
    assert report["state"] == "unavailable" and report["reason"] == "no snapshot of leader lead yet"
    assert await reconciler.overdue() == []  # looked at just now: not overdue any more
    assert outbox.sent["intent"] == []
    await close(app, reconciler)


async def test_reconciliation_can_be_switched_off(tmp_path: Path) -> None:
    settings = Settings(
        app_id=f"reconcile-{uuid.uuid4().hex[:8]}",
        kafka_broker="kafka://127.0.0.1:1",
        data_dir=tmp_path,
        roles=("ingest", "execute"),
        executor_consumer="faust",
    )
    off = {**config(True), "reconcile": {"enabled": False}}
    app = create_app(settings, parse_config(off, env={}), outbox=MemoryOutbox())
    assert app.runtime.reconcile is not None
    assert (app.runtime.reconcile.leaders, app.runtime.reconcile.followers) == (None, None)
    on = create_app(settings, parse_config(config(True), env={}), outbox=MemoryOutbox())
    assert on.runtime.reconcile is not None and on.runtime.reconcile.leaders is not None


async def test_a_disabled_follower_is_left_alone(worker: Any) -> None:
    app, outbox, reconciler = worker(True)
    disabled = {**config(True)}
    disabled["copy_groups"] = [{**disabled["copy_groups"][0], "followers": [{"account": "f1", "enabled": False}]}]
    reconciler.ctx.config = parse_config(disabled, env={})
    assert reconciler.followers() == [] and await reconciler.overdue() == []
    assert outbox.sent["error"] == [] and outbox.sent["status"] == []
    await close(app, reconciler)


async def test_a_follower_is_looked_at_only_once_the_copies_in_flight_are_done(worker: Any) -> None:
    """A reconciliation round reads every follower's account (100–200 ms of CPU a round at
    1,000 followers): each look waits for the copies in flight, so a signal's copies never
    queue behind the round; and looks of rounds that outlast their interval do not pile up."""
    app, outbox, reconciler = worker(False)
    await trade(app, "lead", Side.BUY, 1, "lead-1")
    await publish_leader(app, reconciler)
    copies_done = asyncio.Event()
    order: list[str] = []

    async def copies_first() -> None:
        order.append("waiting for copies")
        await copies_done.wait()
        order.append("copies done")

    reconciler.copies_first = copies_first
    adapter = await app.runtime.pool.adapter_for("f1")  # its session's connect look starts now
    looked = adapter.snapshot

    async def snapshot(account_id: str) -> Any:
        order.append("snapshot")
        return await looked(account_id)

    adapter.snapshot = snapshot  # type: ignore[method-assign]
    await asyncio.sleep(0.05)
    assert order == ["waiting for copies"]  # the connect look waits: no snapshot yet
    rounds = [asyncio.ensure_future(reconciler.reconcile("f1", "schedule")) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert [r.done() for r in rounds] == [False, True, True]  # one waits its turn, two are not queued
    copies_done.set()
    assert (await rounds[0])["state"] == "drifted"  # the leader holds 1, f1 (multiplier 2) none
    assert order[:3] == ["waiting for copies", "copies done", "snapshot"]
    await close(app, reconciler)
