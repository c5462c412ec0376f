"""The one UTC clock: every wall-clock timestamp CopyTrader writes comes from here.

Wall-clock (not monotonic) because records cross processes and hosts; aware datetimes in UTC
so no stage, table or report ever mixes a naive local time with a broker's UTC time. Tests
that need a fixed time pass one explicitly instead of patching this module.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

__all__ = ["today_utc", "utcnow"]


def utcnow() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(UTC)


def today_utc() -> date:
    """Today's date in UTC (trading-day and report boundaries)."""
    return utcnow().date()
