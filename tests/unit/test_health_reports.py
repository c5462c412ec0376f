"""What the executor reports on broker.health each round."""

from __future__ import annotations


def test_health_reports_send_changes_and_a_full_round_now_and_then() -> None:
    from copytrader.agents.shared.health_reports import HealthReports
    from copytrader.core.records import AccountStatus

    reports = HealthReports(full_every=3)
    up = AccountStatus(account_id="a", platform="paper", connection="connected")
    assert reports.next_round() is True and reports.changed(up)
    assert reports.next_round() is False and not reports.changed(
        AccountStatus(account_id="a", platform="paper", connection="connected")
    )
    assert reports.changed(AccountStatus(account_id="a", platform="paper", connection="connected", orders_placed=1))
    assert reports.next_round() is False and reports.next_round() is True  # every third round sends all
