"""``POST /api/reconcile`` writes the reconcile request on ``copy.controls``; the grid shows the
broker's reported positions and working orders once a reconciliation arrives (issue #17)."""

from __future__ import annotations

import time
from decimal import Decimal

from webtest_helpers import Web

from copytrader.core.control_records import ReconcileCommand, decode_command
from copytrader.core.records import AccountStatus, Execution, Position

# Hostile bodies: each is refused with 4xx and publishes nothing.
BAD_BODIES: list[tuple[bytes, int]] = [
    (b'{"account_id": 7}', 422),
    (b'{"account_id": ""}', 422),
    (b'{"account_id": "' + b"x" * 500 + b'"}', 422),
    (b'{"account": "f001"}', 422),
    (b"[1, 2]", 422),
    (b"{not json", 400),
]


async def test_reconcile_all_and_one_publish_the_request(web: Web) -> None:
    await web.login()
    everyone = await web.client.post("/api/reconcile", json={}, headers=web.write_headers())
    assert everyone.status == 202, await everyone.text()
    one = await web.client.post("/api/reconcile", json={"account_id": "f002"}, headers=web.write_headers())
    assert one.status == 202
    (key_all, raw_all), (key_one, raw_one) = web.controls.sent
    first, second = decode_command(raw_all), decode_command(raw_one)
    assert isinstance(first, ReconcileCommand) and isinstance(second, ReconcileCommand)
    assert (key_all, first.account_id, first.by) == (b"reconcile:*", "*", "admin")
    assert (key_one, second.account_id) == (b"reconcile:f002", "f002")
    assert (await everyone.json())["command_id"] == first.command_id


async def test_reconcile_refuses_unknown_accounts_hostile_bodies_and_missing_csrf(web: Web) -> None:
    await web.login()
    unknown = await web.client.post("/api/reconcile", json={"account_id": "leader-1"}, headers=web.write_headers())
    assert unknown.status == 404  # a leader is not reconciled: the trader's own account
    for body, status in BAD_BODIES:
        response = await web.client.post(
            "/api/reconcile", data=body, headers={**web.write_headers(), "Content-Type": "application/json"}
        )
        assert response.status == status, (body[:40], await response.text())
    no_csrf = await web.client.post("/api/reconcile", json={})
    assert no_csrf.status == 403
    assert web.controls.sent == []


async def test_the_grid_shows_broker_truth_after_a_reconciliation(web: Web) -> None:
    """Before: the order log's view (an ack whose cancel the web worker never saw counts as
    open, a fill-derived position). After a reconciliation: what the broker reported."""
    await web.login()
    live = web.ctx.live
    ack = Execution(
        execution_id="a1", account_id="f001", platform="paper", kind="ack", broker_order_id="B1", client_order_id="CT1"
    )
    live.apply_execution(ack, 0, 1)
    live.apply_position(Position(account_id="f001", symbol="ESZ6", net_quantity=2, average_price=Decimal(1)), 0, 1)
    row = next(r for r in (await (await web.client.get("/api/grid")).json())["rows"] if r["account_id"] == "f001")
    assert (row["open_orders"], row["positions"], row["sync"]) == (1, {"ESZ6": 2}, None)
    now = time.time()
    report = {
        "state": "drifted",
        "since": now - 5,
        "checked_at": now,
        "drift": {"NQZ6": {"expected": 0, "actual": -1, "difference": 1}},
        "positions": {"NQZ6": -1},
        "working_orders": ["B7"],
        "open_orders": 1,
        "orphans": [],
        "missing": [],
        "reason": None,
    }
    status = AccountStatus(account_id="f001", platform="paper", connection="connected", reconciliation=report)
    live.apply_status(status)
    row = next(r for r in (await (await web.client.get("/api/grid")).json())["rows"] if r["account_id"] == "f001")
    assert row["positions"] == {"ESZ6": 0, "NQZ6": -1}  # the broker's, ESZ6 flat
    assert row["open_orders"] == 1 and live.accounts["f001"].open_orders == {"B7"}
    assert (row["sync"], row["sync_since"], row["drift"]) == ("drifted", now - 5, report["drift"])
    unavailable = {"state": "unavailable", "since": now, "checked_at": now, "reason": "follower snapshot: down"}
    live.apply_status(
        AccountStatus(account_id="f001", platform="paper", connection="connected", reconciliation=unavailable)
    )
    row = next(r for r in (await (await web.client.get("/api/grid")).json())["rows"] if r["account_id"] == "f001")
    assert row["sync"] == "unavailable" and row["sync_reason"] == "follower snapshot: down"
    assert row["positions"] == {"ESZ6": 0, "NQZ6": -1}  # nothing replaced by a failed look
    listed = (await (await web.client.get("/api/reconcile")).json())["accounts"]
    assert listed["f001"]["state"] == "unavailable" and "leader-1" not in listed


async def test_a_health_status_does_not_erase_the_reconciliation(web: Web) -> None:
    await web.login()
    live = web.ctx.live
    body = {"state": "in_sync", "since": 1.0, "checked_at": 2.0, "positions": {}, "working_orders": []}
    live.apply_status(AccountStatus(account_id="f002", platform="paper", connection="connected", reconciliation=body))
    live.apply_status(AccountStatus(account_id="f002", platform="paper", connection="disconnected"))
    row = next(r for r in live.grid() if r["account_id"] == "f002")
    assert row["sync"] == "in_sync" and row["connection"] == "disconnected"


async def test_the_leaders_row_shows_its_broker_state(web: Web) -> None:
    live = web.ctx.live
    body = {"state": "leader", "checked_at": 1.0, "positions": {"ESZ6": -2}, "working_orders": ["L1", "L2"]}
    live.apply_status(
        AccountStatus(account_id="leader-1", platform="paper", connection="connected", reconciliation=body)
    )
    row = next(r for r in live.grid() if r["account_id"] == "leader-1")
    assert (row["positions"], row["open_orders"], row["sync"]) == ({"ESZ6": -2}, 2, "leader")
