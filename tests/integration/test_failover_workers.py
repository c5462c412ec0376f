"""Failover as deployed: two fan-out and two executor replicas in their consumer groups; one of
each is SIGKILLed mid-run and the survivors take over its partitions (issue #18, item 2).

Counted at the simulators' books: every (signal, follower) has exactly one order under its
client id and every follower holds the leader's position scaled by its rule. The kill leaves the
broker alone, so this runs on the shared test broker (fresh topics); the broker outage is
``scripts/bench_failover.py --scenario broker`` on a broker of its own.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from copytrader.demo.failover import FailoverOptions, run_failover

pytestmark = [pytest.mark.kafka]


async def test_survivors_take_over_the_killed_replicas_partitions_once(kafka_bootstrap: str, tmp_path: Path) -> None:
    options = FailoverOptions(
        scenario="workers", signals=24, followers=4, interval_s=0.2, disrupt_after=6, settle_timeout_s=60
    )
    result = await run_failover(options, tmp_path, running_broker=kafka_bootstrap)
    assert result["settled"], result["details"]
    assert result["pairs_missing_an_order"] == 0, result["details"]
    assert result["pairs_doubled"] == 0, result["details"]
    assert result["positions_wrong"] == 0, result["details"]
    assert result["orders_in_books"] == result["orders_expected"] == 24 * 4
    # The victims held partitions, and the survivors copied on them after the kill.
    assert result["killed_partitions"]["trade.signals"] and result["killed_partitions"]["orders.requests"]
    assert result["fanout_recovery_s"] is not None and result["executor_recovery_s"] is not None
    assert result["kills"] == {"front": 1, "back": 1}
