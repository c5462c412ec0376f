"""The one UTC clock: aware UTC now, and today's UTC date (not the host's local date)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from copytrader.common.clock import today_utc, utcnow


def test_utcnow_is_aware_utc_and_current() -> None:
    before = datetime.now(UTC)
    now = utcnow()
    after = datetime.now(UTC)
    assert now.utcoffset() == timedelta(0)
    assert before <= now <= after


def test_today_utc_is_the_utc_date() -> None:
    before = datetime.now(UTC).date()
    today = today_utc()
    after = datetime.now(UTC).date()
    assert today in (before, after)  # a midnight crossing between the reads picks either
