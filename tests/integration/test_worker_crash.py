"""Kill the executor worker in the middle of a run: nothing is lost, nothing is doubled.

The followers are on the Tradovate simulator (a separate server that outlives the worker),
which, like the real API, refuses no repeated ``clOrdId``. After SIGKILL the intents whose
offsets were not committed are redelivered to the restarted worker; its attempt journal and the
consumer's redelivery flag make it look each one up at the broker before placing, so an order
the killed worker had placed is reported as a duplicate, not placed again.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from waiting import wait_until

from copytrader.core.settings import Settings
from copytrader.demo.runner import Scenario, ScenarioOptions

pytestmark = [pytest.mark.kafka]


async def test_executor_crash_mid_run_loses_and_doubles_nothing(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = Settings(kafka_broker=f"kafka://{kafka_bootstrap}", data_dir=tmp_path)
    options = ScenarioOptions(trades=40, interval=0.1, quiet=True, processes=3, platform="tradovate")
    async with Scenario("crash", 10, "0", options, settings=settings) as run:
        go = run.run_dir / "go"
        go.write_text("go")
        observer = run.observer
        await wait_until(
            lambda: len(observer.seen.outcomes) >= 60,
            timeout_s=60,
            what="60 copies before the crash",
            observe=lambda: len(observer.seen.outcomes),
        )
        placed_before = len(observer.seen.outcomes)
        run.kill_worker("back")
        signals = len(observer.seen.signals)  # the leader keeps trading while no executor runs
        await wait_until(
            lambda: len(observer.seen.signals) >= signals + 5,
            timeout_s=30,
            what="five leader signals during the outage",
            observe=lambda: len(observer.seen.signals),
        )
        run.restart_worker("back")
        result = await run.trade(settle_timeout=90)
    assert placed_before >= 60
    assert result["missing"] == 0, run.observer.missing()
    assert result["duplicates"] == 0
    # Every pair has its one outcome. A follower copy that the follower's own market filled
    # while the leader's stayed resting makes the leader's later cancel "too late": a true
    # divergence, reported on order.errors — anything else rejected is a failure.
    # A copy that waited out the outage past its group's stale_copy_s is netted (docs/stale-copies.md).
    netted = {e.client_order_id for e in run.observer.seen.errors if e.code == "COPY_STALE_NETTED"}
    rejects = [o for outs in run.observer.seen.outcomes.values() for o in outs if o.kind == "reject"]
    unexplained = [r for r in rejects if "already filled" not in (r.reason or "") and r.client_order_id not in netted]
    assert not unexplained, [(r.account_id, r.reason) for r in unexplained]
    assert result["orders_placed"] + result["rejected"] == result["orders_expected"]
    errors = {(e.client_order_id, e.stage) for e in run.observer.seen.errors}
    assert all((r.client_order_id, "execute") in errors for r in rejects)
    assert result["orders_expected"] >= 10 * 40
