"""Accounts added in the dashboard are published for every worker and survive a restart."""

from __future__ import annotations

import pytest
from webtest_helpers import Web

from copytrader.core.control_records import AccountCommand, RuleCommand, decode_command
from copytrader.web.accounts import AccountRegistry


async def add_follower(web: Web) -> None:
    body = {
        "id": "new1",
        "platform": "tradovate",
        "broker_account": "TV-NEW",
        "size": 25000,
        "endpoint": "http://127.0.0.1:9",
        "credentials": {"username": "u-new", "secret": "s-new"},
    }
    created = await web.client.post("/api/accounts", json=body, headers=web.write_headers())
    assert created.status == 201, await created.text()
    joined = await web.client.put(
        "/api/copy-groups/demo/followers/new1",
        json={"rule": {"mode": "fixed", "quantity": 2}},
        headers=web.write_headers(),
    )
    assert joined.status == 200, await joined.text()


async def test_a_new_account_is_published_sealed_and_joins_its_group(web: Web) -> None:
    await web.login()
    await add_follower(web)
    account, rule = (decode_command(value) for _, value in web.controls.sent)
    assert isinstance(account, AccountCommand) and isinstance(rule, RuleCommand)
    assert [key for key, _ in web.controls.sent] == [b"account:new1", b"rule:demo:new1"]
    assert account.own_session and account.sealed and account.endpoint == "http://127.0.0.1:9"
    session = account.session(web.ctx.accounts.cipher)
    assert session is not None and (session.username, session.secret) == ("u-new", "s-new")
    groups = (await (await web.client.get("/api/copy-groups")).json())["groups"]
    assert "new1" in {f["account"] for g in groups for f in g["followers"]}
    assert "new1" in web.ctx.commands.followers()  # flatten-all reaches it too


async def test_a_restarted_web_worker_shows_the_dashboard_accounts_again(web: Web) -> None:
    await web.login()
    await add_follower(web)
    patched = await web.client.patch("/api/accounts/f002", json={"size": 75000}, headers=web.write_headers())
    assert patched.status == 200
    # A fresh registry on the file's config, fed the topic's records (what the replay does).
    from copytrader.core.config import parse_config
    from copytrader.demo.configgen import demo_config

    restarted = AccountRegistry(parse_config(demo_config(4), env={}), web.ctx.accounts.cipher)
    for _, value in web.controls.sent:
        restarted.apply_command(decode_command(value))  # type: ignore[arg-type]  # no pauses were sent
    new = restarted.get("new1").public()
    assert (new["platform"], new["broker_account"], new["source"], new["credentials"]) == (
        "tradovate",
        "TV-NEW",
        "dashboard",
        {"set": True},
    )
    assert restarted.get("f002").public()["size"] == "75000" and restarted.get("f002").source == "config"
    assert not restarted.get("f002").own_session  # a size edit keeps the file's session
    assert ("demo", "new1") in restarted.rules


async def test_credentials_without_a_server_key_are_refused_not_stored(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    await web.login()
    monkeypatch.setattr(web.ctx.accounts, "cipher", None)
    body = {"id": "nokey", "platform": "tradovate", "broker_account": "B", "credentials": {"secret": "s"}}
    response = await web.client.post("/api/accounts", json=body, headers=web.write_headers())
    assert response.status == 503
    assert "COPYTRADER_SECRET_KEY" in (await response.json())["fields"]["credentials"]
    assert web.controls.sent == [] and "nokey" not in {a["id"] for a in web.ctx.accounts.all()}
    plain = {"id": "paper1", "platform": "paper", "broker_account": "P1"}  # no login: fine without a key
    assert (await web.client.post("/api/accounts", json=plain, headers=web.write_headers())).status == 201
