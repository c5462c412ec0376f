"""A trade placed on a simulated Tradovate leader is copied to ProjectX followers, and back.

The leader's own platform feed (Tradovate's WebSocket ``props``, ProjectX's SignalR
``GatewayUserOrder``/``GatewayUserTrade``) is the signal source; the followers' orders go out
over the other platform's wire protocol. Every copy must arrive once with the right size.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from copytrader.core.scaling import follower_symbol, scaled_quantity
from copytrader.core.settings import Settings
from copytrader.demo.configgen import MIXED
from copytrader.demo.runner import Scenario, ScenarioOptions

pytestmark = [pytest.mark.kafka]


@pytest.mark.parametrize(("leader", "followers"), [("tradovate", "projectx"), ("projectx", "tradovate")])
async def test_leader_on_one_platform_followers_on_another(
    kafka_bootstrap: str, tmp_path: Path, leader: str, followers: str
) -> None:
    settings = Settings(kafka_broker=f"kafka://{kafka_bootstrap}", data_dir=tmp_path)
    options = ScenarioOptions(trades=12, interval=0.15, quiet=True, platform=followers, leader_platform=leader)
    async with Scenario("xplat", 6, "0", options, settings=settings) as run:
        result = await run.trade(settle_timeout=60)
    assert result["missing"] == 0 and result["duplicates"] == 0
    assert result["orders_placed"] == result["orders_expected"] >= 6 * 12
    assert set(result["broker_call_ms_by_platform"]) == {followers}
    seen, config = run.observer.seen, run.config
    assert {s.platform for s in seen.signals.values()} == {leader}
    for (signal_id, account_id), outcomes in seen.outcomes.items():
        signal = seen.signals[signal_id]
        if signal.kind != "new":
            continue
        rule = next(f.rule for _, f in config.followers_by_leader[signal.leader_account] if f.account_id == account_id)
        sizes = config.accounts[signal.leader_account].size, config.accounts[account_id].size
        assert outcomes[0].quantity == scaled_quantity(rule, signal.quantity, *sizes)
        assert outcomes[0].symbol == follower_symbol(rule, signal.symbol)


async def test_a_rithmic_leader_is_copied_to_followers_on_every_order_platform(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Issue #14 item 6: ``--platform mixed`` with a Rithmic leader, dxLink as the price source."""
    settings = Settings(kafka_broker=f"kafka://{kafka_bootstrap}", data_dir=tmp_path)
    options = ScenarioOptions(trades=10, interval=0.15, quiet=True, platform="mixed", leader_platform="rithmic")
    async with Scenario("mixed", 10, "0", options, settings=settings) as run:
        result = await run.trade(settle_timeout=60)
    assert result["missing"] == 0 and result["duplicates"] == 0 and result["rejected"] == 0
    assert result["orders_placed"] == result["orders_expected"] >= 10 * 10
    assert set(result["broker_call_ms_by_platform"]) == set(MIXED)  # every order platform placed copies
    assert {s.platform for s in run.observer.seen.signals.values()} == {"rithmic"}
    assert {a.platform for a in run.config.accounts.values()} == {"rithmic", *MIXED}
