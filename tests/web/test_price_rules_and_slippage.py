"""The web doors of price protection: the rule editor's API takes the band fields (and refuses
hostile ones), the control record carries them through a replay, and the live order log and
the slippage report show each copy's slippage (unknown until the leader's fill is seen)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from waiting import wait_until
from webtest_helpers import KafkaWeb, Web

from copytrader.agents.fanout.controls import planner_applier
from copytrader.agents.fanout.planner import FanoutPlanner
from copytrader.core import ids
from copytrader.core.config import parse_config
from copytrader.core.control_records import RuleCommand, decode_command
from copytrader.core.records import Execution
from copytrader.demo.configgen import demo_config

RULE_PATH = "/api/copy-groups/demo/followers/f002"


async def test_rule_band_fields_are_saved_published_and_survive_a_replay(web: Web) -> None:
    await web.login()
    body = {"rule": {"mode": "fixed", "quantity": 1, "price_band_ticks": 6, "on_no_quote": "skip"}}
    saved = await web.client.put(RULE_PATH, json=body, headers=web.write_headers())
    assert saved.status == 200, await saved.text()
    assert {k: (await saved.json())["rule"][k] for k in ("price_band_ticks", "on_no_quote")} == {
        "price_band_ticks": 6,
        "on_no_quote": "skip",
    }
    groups = (await (await web.client.get("/api/copy-groups")).json())["groups"]
    (shown,) = [f["rule"] for g in groups for f in g["followers"] if f["account"] == "f002"]
    assert (shown["price_band_ticks"], shown["on_no_quote"]) == (6, "skip")
    # The record on copy.controls, replayed by a fresh fan-out worker, gives the same rule.
    ((key, raw),) = web.controls.sent
    assert key == b"rule:demo:f002"
    command = decode_command(raw)
    assert isinstance(command, RuleCommand)
    planner = FanoutPlanner(parse_config(demo_config(4), env={}))
    planner_applier(planner)(command)
    rule, _ = planner.controls.rules[("demo", "f002")]
    assert (rule.price_band_ticks, rule.on_no_quote) == (6, "skip")
    # Switching the band off again is a rule like any other.
    off = await web.client.put(RULE_PATH, json={"rule": {"price_band_ticks": None}}, headers=web.write_headers())
    assert (await off.json())["rule"]["price_band_ticks"] is None


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"price_band_ticks": -1}, "rule.price_band_ticks"),
        ({"price_band_ticks": 100000}, "rule.price_band_ticks"),
        ({"price_band_ticks": 2.5}, "rule.price_band_ticks"),
        ({"price_band_ticks": "4"}, "rule.price_band_ticks"),
        ({"on_no_quote": "maybe"}, "rule.on_no_quote"),
    ],
)
async def test_hostile_band_values_get_a_422_naming_the_field(web: Web, rule: dict[str, Any], field: str) -> None:
    await web.login()
    response = await web.client.put(RULE_PATH, json={"rule": rule}, headers=web.write_headers())
    assert response.status == 422, await response.text()
    assert field in (await response.json())["fields"]
    assert web.controls.sent == []


def _fill(account: str, n: int, price: str, *, leader: bool = False) -> Execution:
    signal = ids.signal_id("leader-1", "L77", "new")
    return Execution(
        execution_id=f"{account}|x|fill|{n}",
        account_id=account,
        platform="paper",
        kind="fill",
        client_order_id=None if leader else ids.client_order_id(signal, account),
        broker_order_id="L77" if leader else f"B{n}",
        signal_id=ids.signal_id("leader-1", "L77", "fill", n) if leader else signal,
        symbol="ESZ6",
        side="buy",
        quantity=1,
        price=Decimal(price),
        is_leader=leader,
        reference_price=None if leader else Decimal("5000.125"),
        occurred_at=datetime.now(UTC),
    )


async def test_live_order_log_and_report_show_slippage_unknown_until_the_leader_fill(web: Web) -> None:
    await web.login()
    live = web.ctx.live
    live.apply_execution(_fill("f001", 1, "5000.75"), partition=0, offset=1)
    executions = (await (await web.client.get("/api/executions?account=f001")).json())["executions"]
    assert executions[0]["slippage_leader_ticks"] is None  # unknown, not 0
    assert Decimal(executions[0]["slippage_ref_ticks"]) == Decimal("2.5")
    live.apply_execution(_fill("leader-1", 1, "5000.25", leader=True), partition=1, offset=1)
    executions = (await (await web.client.get("/api/executions?account=f001")).json())["executions"]
    row = executions[0]
    assert (Decimal(row["leader_price"]), Decimal(row["slippage_leader_ticks"])) == (Decimal("5000.25"), Decimal(2))
    assert Decimal(row["slippage_leader_amount"]) == Decimal(25)
    report = await (await web.client.get("/api/reports/slippage")).json()
    rows = {(r["scope"], r["key"]): r for r in report["rows"]}
    assert report["source"] == "live"
    assert Decimal(rows[("account", "f001")]["leader_worst_ticks"]) == 2
    assert rows[("group", "demo")]["copies"] == 1
    csv_text = await (await web.client.get("/api/reports/slippage?format=csv")).text()
    assert csv_text.splitlines()[0].startswith("scope,key,copies,leader_known")


async def test_slippage_through_the_real_feed_whichever_fill_comes_first(kafka_web: KafkaWeb) -> None:
    """Follower fill first (unknown), then the leader's fill on another partition: the row the
    API serves is completed; the order log's push carried the fill with its reference figure."""
    web = kafka_web
    await web.start_feed()
    await web.login()
    await web.publish("trade.executions", _fill("f001", 1, "5000.75"), key=b"f001")

    async def served() -> dict[str, Any] | None:
        rows = (await (await web.client.get("/api/executions?account=f001")).json())["executions"]
        return rows[0] if rows else None

    first = await wait_until(served, timeout_s=20, what="the follower fill in the live order log")
    assert first["slippage_leader_ticks"] is None and Decimal(first["slippage_ref_ticks"]) == Decimal("2.5")
    await web.publish("trade.executions", _fill("leader-1", 1, "5000.25", leader=True), key=b"leader-1")

    async def settled() -> dict[str, Any] | None:
        row = await served()
        return row if row is not None and row["slippage_leader_ticks"] is not None else None

    row = await wait_until(settled, timeout_s=20, what="the leader fill completing the follower's slippage")
    assert (Decimal(row["slippage_leader_ticks"]), Decimal(row["slippage_leader_amount"])) == (Decimal(2), Decimal(25))
