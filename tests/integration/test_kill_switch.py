"""The kill switch through real Kafka (issue #18 item 1): ``copytrader kill`` pauses all copying,
cancels every follower's working orders and closes every follower position — counted in the
Tradovate simulator's books, not in what the workers say — and no entry is copied after it."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from asyncio.subprocess import PIPE
from pathlib import Path

import pytest
from waiting import wait_until

from copytrader.core.settings import Settings
from copytrader.demo.runner import Scenario, ScenarioOptions

pytestmark = [pytest.mark.kafka]


def copytrader_cli() -> list[str]:
    found = shutil.which("copytrader", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "copytrader.app.cli"]


async def test_kill_flattens_every_follower_and_stops_copying(kafka_bootstrap: str, tmp_path: Path) -> None:
    settings = Settings(kafka_broker=f"kafka://{kafka_bootstrap}", data_dir=tmp_path)
    options = ScenarioOptions(trades=160, interval=0.25, quiet=True, platform="tradovate")
    async with Scenario("kill", 6, "0", options, settings=settings) as run:
        (sandbox,) = [s for s in run.sandboxes if type(s).__module__.startswith("copytrader.brokers.tradovate")]
        exchange = sandbox.exchange
        followers = {a.broker_account for a in run.config.accounts.values() if a.account_id != "leader-1"}

        def exposure() -> dict[str, tuple[int, int]]:
            """Per follower account at the broker: (open orders, |net position| summed)."""
            out = {}
            for name in followers:
                account = exchange.account(name)
                net = sum(abs(p.net_quantity) for p in account.positions.values())
                out[name] = (len(exchange.open_orders(name)), net)
            return out

        (run.run_dir / "go").write_text("go")
        await wait_until(
            lambda: sum(o for o, _ in exposure().values()) >= 3 and sum(n for _, n in exposure().values()) >= 3,
            timeout_s=60,
            what="followers holding positions and resting orders at the broker",
            observe=exposure,
        )
        env = {**os.environ, **run.worker_env, "COPYTRADER_ROLES": "fanout", "COPYTRADER_APP_ID": "kill-cli"}
        cli = await asyncio.create_subprocess_exec(
            *copytrader_cli(), "kill", "--yes", "--by", "test", env=env, stdout=PIPE, stderr=PIPE
        )
        assert cli.stdout is not None
        line = await asyncio.wait_for(cli.stdout.readline(), 120)  # the report, printed once engaged
        assert line, (await cli.stderr.read()).decode()[-2000:] if cli.stderr else "no report"
        report = json.loads(line)
        assert report["paused_all"] and sorted(report["flatten_accounts"]) == sorted(
            a for a in run.config.accounts if a != "leader-1"
        )
        await wait_until(
            lambda: all(value == (0, 0) for value in exposure().values()),
            timeout_s=30,
            what="every follower flat with no working order at the broker",
            observe=exposure,
        )
        flat_after_s = time.time() - report["at"]  # from the moment the switch was engaged
        assert await asyncio.wait_for(cli.wait(), 60) == 0
        result = await run.trade(settle_timeout=60)  # the leader keeps trading to its end
        assert all(value == (0, 0) for value in exposure().values()), exposure()
    seen = run.observer.seen
    late_entries = [
        (pair, o.client_order_id)
        for pair, outcomes in seen.outcomes.items()
        for o in outcomes
        if seen.signals.get(pair[0]) is not None
        and seen.signals[pair[0]].kind == "new"
        and seen.signals[pair[0]].stamps.get("detected", 0) > report["at"] + 1.0
        and o.kind != "reject"
    ]
    refusals = sorted(r.stamps.get("detected", 0) - report["at"] for r in seen.refusals.values() if r.code == "PAUSED")
    assert late_entries == [], f"entries copied after the kill switch; paused refusals from {refusals[:3]} s"
    after = [s.kind for s in seen.signals.values() if s.stamps.get("detected", 0) > report["at"] + 1.0]
    assert "new" in after, "the leader stopped before the kill: the test proved nothing"
    paused_refusals = [r for r in seen.refusals.values() if r.code == "PAUSED"]
    assert paused_refusals, "the leader traded on, yet no copy was refused as paused"
    assert result["duplicates"] == 0
    kills = [o for (sid, _), outs in seen.outcomes.items() if sid.startswith("control:kill:") for o in outs]
    assert len({o.account_id for o in kills}) == len(followers)  # one flatten outcome per follower
    acked = sorted(o.stamps.get("acked", 0) - report["at"] for o in kills)
    stamps = [{k: round(v - report["at"], 3) for k, v in o.stamps.items()} for o in kills[:2]]
    print(
        json.dumps(
            {"followers": len(followers), "kill_to_flat_s": round(flat_after_s, 2), "acked_s": acked, "stamps": stamps}
        )
    )
