"""Signed webhooks on POST /api/signals (forged, stale and replayed ones refused) and the
control commands the dashboard publishes (pause/resume on copy.controls, flatten intents)."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from waiting import wait_until
from webtest_helpers import WEBHOOK_SECRET, KafkaWeb, Web

from copytrader.agents.fanout.planner import Controls
from copytrader.agents.shared.controls_feed import ControlCommand
from copytrader.core.records import OrderIntent, Position
from copytrader.web.webhook import sign

SIGNAL = orjson.dumps(
    {"signal_id": "wh-1", "leader_account": "leader-1", "symbol": "ESZ6", "side": "buy", "quantity": 1}
)


def signals(web: Web) -> list[bytes]:
    return [payload for _, payload in web.outbox.sent["signal"]]  # type: ignore[misc]  # (key, payload) tuples


async def test_a_signed_webhook_is_accepted_once(web: Web) -> None:
    header = sign(WEBHOOK_SECRET, SIGNAL)
    first = await web.client.post("/api/signals", data=SIGNAL, headers={"X-CopyTrader-Signature": header})
    assert first.status == 202, await first.text()
    assert orjson.loads(signals(web)[0])["source"] == "webhook"
    replay = await web.client.post("/api/signals", data=SIGNAL, headers={"X-CopyTrader-Signature": header})
    assert replay.status == 401 and "already used" in (await replay.json())["reason"]
    assert len(signals(web)) == 1


async def test_forged_stale_and_unsigned_signals_are_refused(web: Web) -> None:
    cases = {
        "wrong secret": sign("not-the-secret", SIGNAL),
        "body changed": sign(WEBHOOK_SECRET, SIGNAL + b" "),
        "too old": sign(
            WEBHOOK_SECRET, SIGNAL, int(time.time()) - 310
        ),  # whole seconds: ±1 s of truncation stays outside 300 s
        "from the future": sign(WEBHOOK_SECRET, SIGNAL, int(time.time()) + 310),
        "garbage": "v1=abc",
    }
    for name, header in cases.items():
        response = await web.client.post("/api/signals", data=SIGNAL, headers={"X-CopyTrader-Signature": header})
        assert response.status == 401, name
    unsigned = await web.client.post("/api/signals", data=SIGNAL)
    assert unsigned.status == 401
    assert signals(web) == []


async def test_a_logged_in_browser_may_post_a_signal_with_its_csrf_token(web: Web) -> None:
    await web.login()
    assert (await web.client.post("/api/signals", data=SIGNAL)).status == 403
    ok = await web.client.post("/api/signals", data=SIGNAL, headers=web.write_headers())
    assert ok.status == 202
    bad = await web.client.post("/api/signals", data=b'{"signal_id": "x"}', headers=web.write_headers())
    assert bad.status == 400 and "missing field" in (await bad.json())["reason"]


async def test_pause_and_resume_publish_state_commands_that_controls_apply(web: Web) -> None:
    await web.login()
    for path, account in (("pause", "f002"), ("pause", "*"), ("resume", "*")):
        response = await web.client.post(
            f"/api/controls/{path}", json={"account_id": account}, headers=web.write_headers()
        )
        assert response.status == 202
    assert (
        await web.client.post("/api/controls/pause", json={"account_id": "nobody"}, headers=web.write_headers())
    ).status == 404
    controls = Controls()
    for key, value in web.controls.sent:
        command = ControlCommand.decode(value)
        assert key == command.account_id.encode() and command.by == "admin"
        controls.set_paused(command.account_id, command.paused)
    assert controls.is_paused("f002") and not controls.is_paused("f001") and not controls.paused_all


async def test_flatten_all_sends_one_all_symbols_flatten_per_follower(web: Web) -> None:
    """Whatever the page last saw: f003 shows flat and is flattened anyway (a fill the page has
    not seen yet may have opened it); the leader is never touched."""
    live = web.ctx.live
    for offset, (account, symbol, net) in enumerate(
        [("f001", "ESZ6", 2), ("f002", "MESZ6", -3), ("f003", "ESZ6", 0), ("leader-1", "ESZ6", 1)]
    ):
        live.apply_position(Position(account_id=account, symbol=symbol, net_quantity=net), 0, offset)
    await web.login()
    response = await web.client.post("/api/controls/flatten", json={"account_id": "*"}, headers=web.write_headers())
    assert response.status == 202
    followers = web.ctx.commands.followers()
    assert "f003" in followers and "leader-1" not in followers
    assert (await response.json())["flatten_accounts"] == followers
    intents = [i for i in web.outbox.sent["intent"] if isinstance(i, OrderIntent)]
    assert [(i.account_id, i.symbol, i.action) for i in intents] == [(a, "", "flatten") for a in followers]
    assert len({i.client_order_id for i in intents}) == len(followers)
    assert all(i.signal_id.startswith("control:flatten:") and i.leader_account == "dashboard:admin" for i in intents)
    one = await web.client.post("/api/controls/flatten", json={"account_id": "f002"}, headers=web.write_headers())
    assert (await one.json())["flatten_accounts"] == ["f002"]
    again = [i for i in web.outbox.sent["intent"] if isinstance(i, OrderIntent)][len(intents) :]
    assert [(i.account_id, i.symbol) for i in again] == [("f002", "")]
    assert again[0].client_order_id not in {i.client_order_id for i in intents}  # a new command, a new id


@pytest.mark.kafka
async def test_a_rule_edit_is_published_and_changes_what_the_planner_sends(web: Web, kafka_web: KafkaWeb) -> None:
    from copytrader.agents.fanout.planner import FanoutPlanner
    from copytrader.agents.shared.controls_feed import RuleCommand, decode_command
    from copytrader.core.records import TradeSignal

    await web.login()
    body = {"rule": {"mode": "fixed", "quantity": 7, "symbol_map": {"ES": "MES"}}, "enabled": True}
    response = await web.client.put("/api/copy-groups/demo/followers/f001", json=body, headers=web.write_headers())
    assert response.status == 200
    body = {"rule": {"mode": "multiplier", "multiplier": 1}, "enabled": False}
    assert (
        await web.client.put("/api/copy-groups/demo/followers/f002", json=body, headers=web.write_headers())
    ).status == 200
    commands = [decode_command(value) for _, value in web.controls.sent]
    assert [type(c) for c in commands] == [RuleCommand, RuleCommand]
    assert [key for key, _ in web.controls.sent] == [b"rule:demo:f001", b"rule:demo:f002"]

    # What every fan-out worker does with those records (agents.fanout.controls.planner_applier):
    planner = FanoutPlanner(web.ctx.runtime.config)
    for command in commands:
        assert isinstance(command, RuleCommand)
        planner.controls.set_rule(command.group_id, command.account_id, command.parsed_rule(), command.enabled)
    signal = TradeSignal(
        signal_id="L:1:new", leader_account="leader-1", platform="paper", symbol="ESZ6", side="buy", quantity=2
    )
    intents, errors = planner.plan(signal)
    by_account = {i.account_id: i for i in intents}
    assert (by_account["f001"].quantity, by_account["f001"].symbol) == (7, "MESZ6")
    assert "f002" not in by_account and ("f002", "PAUSED") in {(e.account_id, e.code) for e in errors}

    # A restarted web worker (kafka_web) shows the edit again: its feed replays the compacted topic.
    restarted = kafka_web
    await restarted.login()

    async def f001_rule() -> dict[str, Any] | None:
        groups = (await (await restarted.client.get("/api/copy-groups")).json())["groups"]
        rule: dict[str, Any] = next(f for g in groups for f in g["followers"] if f["account"] == "f001")["rule"]
        return rule if rule.get("quantity") == 7 else None

    assert await f001_rule() is None  # before the replay: the configuration file's rule
    key, value = web.controls.sent[0]
    await restarted.publish("copy.controls", value, key=key)
    await restarted.start_feed()

    rule = await wait_until(f001_rule, timeout_s=20, what="f001's rule replayed from copy.controls")
    assert rule["mode"] == "fixed"


def test_malformed_rule_commands_are_refused_with_a_reason() -> None:
    import pytest

    from copytrader.agents.shared.controls_feed import RuleCommand, decode_command

    with pytest.raises(ValueError, match="rule command"):
        decode_command(orjson.dumps({"kind": "rule", "account_id": "f1"}))
    bad = RuleCommand("c", "demo", "f1", {"mode": "multiplier", "multiplier": -1}, True)
    with pytest.raises(ValueError, match="rule.multiplier"):
        decode_command(bad.encode()).parsed_rule()  # type: ignore[union-attr]  # a RuleCommand


async def test_disabling_an_account_stops_its_copying_in_every_group(web: Web) -> None:
    from copytrader.agents.shared.controls_feed import AccountCommand, RuleCommand, decode_command

    await web.login()
    response = await web.client.delete("/api/accounts/f003", headers=web.write_headers())
    assert response.status == 200 and (await response.json())["enabled"] is False
    commands = [decode_command(value) for _, value in web.controls.sent]
    account, *rules = commands
    assert isinstance(account, AccountCommand) and account.account_id == "f003" and not account.enabled
    assert rules and all(isinstance(c, RuleCommand) and c.account_id == "f003" and not c.enabled for c in rules)
    response = await web.client.patch("/api/accounts/f003", json={"enabled": True}, headers=web.write_headers())
    assert response.status == 200
    last = decode_command(web.controls.sent[-1][1])
    assert isinstance(last, RuleCommand) and last.enabled and last.by == "admin"
    assert last.rule["mode"] == "multiplier" and last.rule["symbol_map"] == {"ES": "MES", "NQ": "MNQ"}  # its rule kept
