"""Leaders' session health reaches the dashboard (``broker.health`` → tracker → ``account.status``)
like followers' does: found in the demo, where the leader's row never showed a status."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from copytrader.agents.ingest.service import report_leaders
from copytrader.agents.shared.health_reports import HealthReports
from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.app.factory import CopyTraderApp
from copytrader.core.records import AccountStatus

CONFIG = {
    "sessions": [{"id": "p", "platform": "paper", "options": {"tick_ms": 0, "venue": "leader-health"}}],
    "accounts": [{"id": "L", "session": "p"}, {"id": "f1", "session": "p"}],
    "copy_groups": [{"leader": "L", "followers": [{"account": "f1"}]}],
}


async def test_a_leader_is_reported_disconnected_then_connected_and_only_changes_are_resent(
    make_app: Callable[[dict[str, Any], tuple[str, ...]], CopyTraderApp], outbox: MemoryOutbox
) -> None:
    runtime = make_app(CONFIG, ("ingest",)).runtime
    reported = HealthReports(full_every=3)

    assert await report_leaders(runtime, reported) == 1  # first round: everything
    before: AccountStatus = outbox.sent["health"][-1]  # type: ignore[assignment]
    assert (before.account_id, before.connection) == ("L", "disconnected")

    await runtime.pool.connect_all(["L"])
    try:
        assert await report_leaders(runtime, reported) == 1  # changed: now connected
        after: AccountStatus = outbox.sent["health"][-1]  # type: ignore[assignment]
        assert (after.account_id, after.platform, after.connection, after.circuit) == (
            "L",
            "paper",
            "connected",
            "closed",
        )
        assert await report_leaders(runtime, reported) == 0  # unchanged, not a full round
        assert await report_leaders(runtime, reported) == 1  # the full round resends it
    finally:
        await runtime.pool.close()
    assert [s.account_id for s in outbox.sent["health"]] == ["L", "L", "L"]  # type: ignore[attr-defined]
