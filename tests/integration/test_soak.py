"""A short soak: the leader trades at a steady pace while every kind of fault hits the
followers (and one simulator goes down and comes back); judged by the books and the topics.

``scripts/soak.py`` runs the same for ten minutes at 1,000 signals a minute to 50 followers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from copytrader.core.settings import Settings
from copytrader.demo.soak import SoakOptions, run_soak, soak_signals
from copytrader.demo.soak_faults import ROTATION

pytestmark = [pytest.mark.kafka]


async def test_faults_at_a_steady_pace_lose_and_double_nothing(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = Settings(kafka_broker=f"kafka://{kafka_bootstrap}", data_dir=tmp_path)
    options = SoakOptions(
        followers=6, signals_per_minute=180, minutes=0.35, fault_every_s=0.5, outage_s=3.0, settle_timeout_s=120.0
    )
    report = await run_soak(options, settings)
    print({k: v for k, v in report.items() if k != "memory_series"})
    assert report["copies_expected"] >= options.signals * options.followers * 0.8
    assert set(report["faults"]) == {kind for kind, _ in ROTATION}  # every kind fired
    assert report["outages"] and report["outages"][0]["down_s"] >= 3.0
    assert report["doubled"] == 0
    assert report["lost"] == 0
    assert report["copies_without_outcome"] == 0
    assert report["settled"]
    # every copy was placed or reported as not placed, with a reason on order.errors
    assert report["copies_placed"] + report["copies_reported_not_placed"] >= report["copies_expected"]
    assert {"front", "back", "tracker", "kafka"} <= set(report["rss_mib"])
    assert report["cpu_ms_per_outcome"]["back"] > 0  # the operating system's accounting, per copy
    assert report["outcomes_per_s"] > 0 and report["records_per_copy"]["trade.executions"] > 0
    by_action = report["outcomes_by_action"]
    assert sum(by_action.values()) == report["copies_expected"] and not any(k.endswith(":none") for k in by_action)


def test_the_leader_script_keeps_its_book_small_and_its_position_near_flat() -> None:
    signals = soak_signals(seed=3)
    position, resting, most_resting = 0, set(), 0
    for _ in range(3000):
        signal = next(signals)
        if signal.kind == "flatten":
            position, resting = 0, set()
        elif signal.kind == "cancel":
            resting.discard(signal.leader_order_id)
        elif signal.order_type == "limit" and signal.kind != "modify":
            resting.add(signal.leader_order_id)
        elif signal.order_type == "market":
            position += signal.quantity if signal.side == "buy" else -signal.quantity
        most_resting = max(most_resting, len(resting))
        assert abs(position) <= 4
    assert most_resting <= 9
