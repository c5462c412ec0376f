"""Alerts where the trader is (issue #17 item 5): rejects, unknown outcomes, disconnects and the
kill switch reach Discord-, Slack-compatible and generic webhooks, rate-limited, coalesced and
retried, against a local test server; a failing target never slows anything else."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from waiting import wait_until

from copytrader.agents.notify.formats import payload
from copytrader.agents.notify.notices import ConnectionWatch, Notice, from_error, kill_switch
from copytrader.agents.notify.sender import MAX_QUEUE, TargetSender
from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.app.factory import create_app
from copytrader.core.config import ConfigError, parse_config
from copytrader.core.notifications import NotificationTarget
from copytrader.core.records import AccountStatus, ErrorBatch, OrderError
from copytrader.core.settings import Settings
from copytrader.demo.configgen import demo_config


class Hooks:
    """A webhook receiver whose answers a test scripts (status, headers), recording every post."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.script: list[tuple[int, dict[str, str], dict[str, Any] | None]] = []
        self.app = web.Application()
        self.app.router.add_post("/hook/{name}", self.receive)

    async def receive(self, request: web.Request) -> web.Response:
        self.posts.append({"path": request.path, "body": await request.json()})
        if self.script:
            status, headers, body = self.script.pop(0)
            return web.json_response(body or {}, status=status, headers=headers)
        return web.Response(status=204)


@pytest_asyncio.fixture
async def hooks() -> AsyncIterator[tuple[Hooks, Callable[[str], str]]]:
    receiver = Hooks()
    server = TestServer(receiver.app)
    await server.start_server()
    try:
        yield receiver, lambda name: str(server.make_url(f"/hook/{name}"))
    finally:
        await server.close()


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def error(code: str, account: str = "f001", stage: str = "execute", reason: str = "broker said no") -> OrderError:
    return OrderError(error_id=uuid.uuid4().hex, stage=stage, reason=reason, account_id=account, code=code)


def test_what_is_worth_a_notice() -> None:
    assert from_error(error("PAUSED", stage="fanout")) is None
    assert from_error(error("REJECTED")).kind == "reject"  # type: ignore[union-attr]
    unknown = from_error(error("OUTCOME_UNKNOWN"))
    assert unknown is not None and (unknown.kind, unknown.severity) == ("outcome_unknown", "critical")
    assert from_error(error("DRIFT", stage="track")).kind == "drift"  # type: ignore[union-attr]
    for code in ("DRIFT_POSITION", "ORPHAN_ORDER", "MISSING_ORDER"):  # what reconciliation reports
        assert from_error(error(code, stage="execute")).kind == "drift"  # type: ignore[union-attr]
    unavailable = from_error(error("RECONCILE_UNAVAILABLE", stage="execute"))
    assert unavailable is not None and unavailable.title.startswith("Cannot reconcile")
    assert from_error(error("GUARD_DAILY_LOSS", stage="fanout")).kind == "guard"  # type: ignore[union-attr]
    assert from_error(error("BAD_ANSWER")).kind == "error"  # type: ignore[union-attr]


def test_connections_announce_changes_not_beats() -> None:
    watch = ConnectionWatch()

    def status(connection: str, circuit: str = "closed") -> AccountStatus:
        return AccountStatus(account_id="f001", platform="tradovate", connection=connection, circuit=circuit)

    assert watch.see(status("connected")) is None  # a restarted notifier does not announce the healthy
    down = watch.see(status("disconnected"))
    assert down is not None and down.kind == "disconnect" and "f001" in down.title
    assert watch.see(status("disconnected")) is None
    back = watch.see(status("connected"))
    assert back is not None and back.kind == "reconnect"
    assert watch.see(status("connected", circuit="open")).kind == "disconnect"  # type: ignore[union-attr]
    first_seen_down = ConnectionWatch().see(status("disconnected"))
    assert first_seen_down is not None


def test_payloads_fit_each_target() -> None:
    notice = Notice(
        "reject", "warning", "Copy rejected on f001", "@everyone " + "x" * 5000, "f001", fields={"code": "R"}
    )
    discord = payload("discord", notice)
    assert len(discord["content"]) <= 2000 and len(discord["embeds"][0]["description"]) <= 4096
    assert discord["allowed_mentions"] == {"parse": []}  # a broker's text never pings a channel
    slack = payload("slack", notice)
    assert set(slack) == {"text"} and len(slack["text"]) <= 3000
    generic = payload("generic", notice)
    assert (generic["event"], generic["account_id"], generic["fields"]) == ("reject", "f001", {"code": "R"})


def sender_for(url: str, session: aiohttp.ClientSession, clock: FakeTime, **target: Any) -> TargetSender:
    spec = NotificationTarget(target_id="t", kind=target.pop("kind", "generic"), url=url, **target)
    return TargetSender(spec, lambda: session, clock=clock.clock, sleep=clock.sleep)


async def test_retries_honour_retry_after_and_a_broken_target_is_not_retried(
    hooks: tuple[Hooks, Callable[[str], str]],
) -> None:
    receiver, url = hooks
    clock = FakeTime()
    async with aiohttp.ClientSession() as session:
        sender = sender_for(url("a"), session, clock)
        receiver.script = [(500, {}, None), (429, {"Retry-After": "7"}, None)]
        assert await sender.deliver(kill_switch(True, "admin"))
        assert len(receiver.posts) == 3 and 7.0 in clock.slept
        receiver.script = [(404, {}, None)]
        assert not await sender.deliver(kill_switch(False, "admin"))
        assert len(receiver.posts) == 4  # a 404 is not retried
        receiver.script = [(429, {}, {"retry_after": 2.5})]  # Discord's body form
        assert await sender.deliver(kill_switch(False, "admin"))
        assert 2.5 in clock.slept
        assert (sender.sent, sender.failed) == (2, 1)


async def test_over_the_rate_waiting_notices_go_out_as_one_summary(hooks: tuple[Hooks, Callable[[str], str]]) -> None:
    receiver, url = hooks
    clock = FakeTime()
    async with aiohttp.ClientSession() as session:
        sender = sender_for(url("b"), session, clock, kind="slack", per_minute=2)
        runner = asyncio.ensure_future(sender.run())
        try:
            sender.offer(from_error(error("REJECTED", "f001")))  # type: ignore[arg-type]
            sender.offer(from_error(error("REJECTED", "f002")))  # type: ignore[arg-type]
            await wait_until(lambda: len(receiver.posts) == 2, timeout_s=10, what="the first two, one by one")
            for n in range(7):
                sender.offer(from_error(error("OUTCOME_UNKNOWN" if n % 2 else "REJECTED", f"f{n:03d}")))  # type: ignore[arg-type]
            await wait_until(lambda: len(receiver.posts) == 3, timeout_s=10, what="one summary of the seven")
        finally:
            runner.cancel()
    text = receiver.posts[2]["body"]["text"]
    assert "7 more alerts" in text and "3 outcome_unknown" in text and "4 reject" in text
    assert any(s >= 59 for s in clock.slept)  # it waited for the window, not hammered the target


async def test_a_target_only_gets_the_kinds_it_asked_for_and_the_queue_is_bounded() -> None:
    clock = FakeTime()
    async with aiohttp.ClientSession() as session:
        sender = sender_for("http://127.0.0.1:9/none", session, clock, events=frozenset({"disconnect"}))
        sender.offer(from_error(error("REJECTED")))  # type: ignore[arg-type]
        assert not sender.queue
        down = Notice("disconnect", "critical", "down", "down", "f001")
        for _ in range(MAX_QUEUE + 5):
            sender.offer(down)
        assert len(sender.queue) == MAX_QUEUE and sender.dropped == 5


def test_targets_come_from_the_environment_and_must_be_http() -> None:
    data = demo_config(2)
    data["notifications"] = [{"id": "ops", "kind": "discord", "url_env": "OPS_HOOK", "events": ["reject"]}]
    config = parse_config(data, env={"OPS_HOOK": "https://discord.example/api/webhooks/1/abc"})
    (target,) = config.notifications
    assert target.events == frozenset({"reject"}) and "abc" not in repr(target)
    for env, field in (
        ({}, "notifications[0].url_env"),
        ({"OPS_HOOK": "file:///etc/passwd"}, "notifications[0].url_env"),
    ):
        with pytest.raises(ConfigError) as refused:
            parse_config(data, env=env)
        assert refused.value.path == field
    data["notifications"][0]["events"] = ["everything"]
    with pytest.raises(ConfigError) as refused:
        parse_config(data, env={"OPS_HOOK": "https://x.example/"})
    assert refused.value.path.startswith("notifications[0].events")


async def test_the_tracker_role_announces_records_to_every_target(
    hooks: tuple[Hooks, Callable[[str], str]], tmp_path: Path
) -> None:
    receiver, url = hooks
    data = demo_config(2)
    data["notifications"] = [
        {"id": "discord", "kind": "discord", "url_env": "D_HOOK"},
        {"id": "pager", "kind": "generic", "url_env": "G_HOOK", "events": ["outcome_unknown", "disconnect"]},
    ]
    config = parse_config(data, env={"D_HOOK": url("discord"), "G_HOOK": url("pager")})
    settings = Settings(
        app_id=f"notify-{uuid.uuid4().hex[:8]}", kafka_broker="kafka://127.0.0.1:1", data_dir=tmp_path, roles=("track",)
    )
    app = create_app(settings, config, outbox=MemoryOutbox())
    app.finalize()
    app.conf.store = "memory://"
    app.flow_control.resume()
    stage = app.runtime.notify
    assert stage is not None
    runners = [asyncio.ensure_future(s.run()) for s in stage.senders]
    try:
        async with app.agents["notify-errors"].test_context() as agent:
            await agent.put(b"not a record")  # skipped, and the agent reads on
            await agent.put(error("REJECTED", "f001").dumps())  # a bare error (older producers)
            batch = ErrorBatch(errors=[error("PAUSED", "f002", stage="fanout"), error("OUTCOME_UNKNOWN", "f002")])
            await agent.put(batch.dumps())  # the executor's batch
        async with app.agents["notify-status"].test_context() as agent:
            await agent.put(AccountStatus(account_id="f001", platform="paper", connection="disconnected"))
        await wait_until(lambda: len(receiver.posts) == 5, timeout_s=10, what="3 to discord, 2 to the pager")
    finally:
        for runner in runners:
            runner.cancel()
        await stage.close()
    by_target: dict[str, list[dict[str, Any]]] = {}
    for post in receiver.posts:
        by_target.setdefault(post["path"].rsplit("/", 1)[1], []).append(post["body"])
    assert [b["embeds"][0]["title"].split(" on ")[0] for b in by_target["discord"]][:2] == [
        "Copy rejected",
        "Copy outcome unknown",
    ]
    assert sorted(b["event"] for b in by_target["pager"]) == ["disconnect", "outcome_unknown"]


async def test_no_targets_no_stage(tmp_path: Path) -> None:
    settings = Settings(app_id="n", kafka_broker="kafka://127.0.0.1:1", data_dir=tmp_path, roles=("track",))
    app = create_app(settings, parse_config(demo_config(2), env={}), outbox=MemoryOutbox())
    assert app.runtime.notify is None and "notify-errors" not in app.agents
