"""Kill the tracker worker in the middle of a run: its positions table restores from the
changelog and no fill is counted twice.

After SIGKILL the ``trade.executions`` records whose offsets were not committed are
redelivered to the restarted worker. Its ``positions`` table comes back from the changelog
(Faust's recovery reads the changelog partitions that aiokafka_internals item 7 keeps paused
the rest of the time), and the restored duplicate-fill window (``core/fill_window.py``)
ignores every fill it had already counted: each position's ``fills`` equals the distinct
fills of its account and symbol.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pytest
from waiting import wait_until

from copytrader.core.settings import Settings
from copytrader.demo.runner import Scenario, ScenarioOptions

pytestmark = [pytest.mark.kafka]


async def test_tracker_crash_mid_run_restores_positions_and_counts_no_fill_twice(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = Settings(kafka_broker=f"kafka://{kafka_bootstrap}", data_dir=tmp_path)
    options = ScenarioOptions(trades=40, interval=0.1, quiet=True, processes=3)
    async with Scenario("trackercrash", 10, "0", options, settings=settings) as run:
        (run.run_dir / "go").write_text("go")
        seen = run.observer.seen
        await wait_until(
            lambda: len(seen.positions) >= 11 and len(seen.fills) >= 60,
            timeout_s=60,
            what="positions of every account before the crash",
            observe=lambda: (len(seen.positions), len(seen.fills)),
        )
        run.kill_worker("tracker")
        fills = len(seen.fills)
        await wait_until(
            lambda: len(seen.fills) >= fills + 20,
            timeout_s=30,
            what="fills while no tracker runs",
            observe=lambda: len(seen.fills),
        )
        run.restart_worker("tracker")
        result = await run.trade(settle_timeout=90)

        distinct = {f.execution_id: f for f in seen.fills}.values()
        net: dict[tuple[str, str], int] = defaultdict(int)
        count: Counter[tuple[str, str]] = Counter()
        for fill in distinct:
            net[(fill.account_id, fill.symbol)] += fill.quantity if fill.side == "buy" else -fill.quantity
            count[(fill.account_id, fill.symbol)] += 1

        def counted() -> dict[tuple[str, str], tuple[int, int] | None]:
            return {k: (p.net_quantity, p.fills) if (p := seen.positions.get(k)) else None for k in net}

        await wait_until(
            lambda: counted() == {k: (net[k], count[k]) for k in net},
            timeout_s=30,
            what="positions.updates matching the distinct fills",
            observe=counted,
        )
    assert result["missing"] == 0 and result["duplicates"] == 0
    assert len(net) >= 11  # leader plus 10 followers traded
