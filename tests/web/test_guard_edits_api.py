"""Editing a follower's risk guards from the dashboard (issue #18 item 1): ``GET``/``PUT
/api/guards/{account_id}``, through the YAML's own schema, behind the same gate as every write,
published on ``copy.controls`` and shown in the standing at once."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from hostile_values import json_fragments, splice
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from waiting import wait_until
from webtest_helpers import FastUsers, KafkaWeb, RecordingTopic, Web

from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.app.factory import create_app
from copytrader.core import schemas
from copytrader.core.config import parse_config
from copytrader.core.control_records import GuardsCommand, decode_command
from copytrader.core.guard_state import AccountGuard
from copytrader.core.guards import build
from copytrader.core.schemas.guards import GuardsIn
from copytrader.core.settings import Settings
from copytrader.web.server import WebContext

CONFIG = {
    "sessions": [{"id": "p", "platform": "paper"}],
    "accounts": [{"id": "L", "session": "p"}, {"id": "f1", "session": "p"}, {"id": "f2", "session": "p"}],
    "copy_groups": [
        {
            "leader": "L",
            "guards": {"max_orders_per_minute": 30},
            "followers": [{"account": "f1", "guards": {"max_contracts_per_symbol": 4}}, {"account": "f2"}],
        }
    ],
    "market_data": {"platform": "dxlink", "endpoint": "ws://127.0.0.1:1", "symbols": {"ESZ6": "/ESZ26:XCME"}},
}


@pytest_asyncio.fixture
async def guard_web(tmp_path: Path) -> AsyncIterator[Web]:
    app = create_app(
        Settings(data_dir=tmp_path, roles=("web",), app_id="guardedit"), parse_config(CONFIG, env={}), outbox=None
    )
    ctx: WebContext = app.runtime.web  # type: ignore[assignment]
    ctx.auth.users = FastUsers()  # type: ignore[assignment]  # the guards are under test, not scrypt
    controls = RecordingTopic()
    ctx.commands.controls_topic = controls  # type: ignore[assignment]  # records instead of producing
    client = TestClient(TestServer(app.web.web_app))
    await client.start_server()
    try:
        web = Web(client, ctx, MemoryOutbox(), controls)
        await web.login()
        yield web
    finally:
        await client.close()


async def put(web: Web, account: str, body: Any) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await web.client.put(
        f"/api/guards/{account}", data=data, headers={**web.write_headers(), "Content-Type": "application/json"}
    )


async def test_the_form_reads_the_rules_in_force_with_the_groups_defaults_merged(guard_web: Web) -> None:
    answer = await (await guard_web.client.get("/api/guards/f1")).json()
    assert answer["guards"]["max_contracts_per_symbol"] == 4 and answer["guards"]["max_orders_per_minute"] == 30
    assert answer["source"] == "config" and answer["updated_by"] is None and answer["market_data"] is True
    assert "max 4 contracts per symbol" in answer["rules"]
    assert (await (await guard_web.client.get("/api/guards/f2")).json())["guards"]["max_orders_per_minute"] == 30


async def test_a_saved_edit_is_published_and_shown_in_the_standing_at_once(guard_web: Web) -> None:
    body = {
        "max_contracts_total": 3,
        "daily_loss": {"limit": "750.50", "on_breach": "block"},
        "window": {"start": "17:00", "end": "16:00", "days": ["sun", "mon"], "tz": "America/Chicago"},
    }
    response = await put(guard_web, "f2", body)
    assert response.status == 200, await response.text()
    answer = await response.json()
    assert answer["source"] == "dashboard" and answer["updated_by"] == "admin"
    assert answer["guards"]["max_contracts_total"] == 3 and answer["guards"]["daily_loss"]["limit"] == "750.50"
    assert answer["guards"]["max_orders_per_minute"] is None  # the saved set replaces the group's default
    assert "total 0/3" in answer["standing"]
    ((key, value),) = guard_web.controls.sent
    assert key == b"guards:f2"
    record = decode_command(value)
    assert isinstance(record, GuardsCommand) and record.by == "admin" and record.guards is not None
    assert record.guards.max_contracts_total == 3 and record.guards.window is not None
    board = await (await guard_web.client.get("/api/guards")).json()
    assert board["accounts"]["f2"]["rules"] == answer["rules"]
    assert "total 0/3" in board["accounts"]["f2"]["standing"]


async def test_an_empty_set_removes_every_rule(guard_web: Web) -> None:
    response = await put(guard_web, "f1", {})
    assert response.status == 200
    assert (await response.json())["guards"] is None
    record = decode_command(guard_web.controls.sent[-1][1])
    assert isinstance(record, GuardsCommand) and (record.account_id, record.guards) == ("f1", None)
    assert "f1" not in (await (await guard_web.client.get("/api/guards")).json())["accounts"]


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"daily_loss": {"limit": "Infinity"}}, "daily_loss.limit", "finite"),
        ({"daily_loss": {"limit": "NaN"}}, "daily_loss.limit", "finite"),
        ({"trailing_drawdown": {"limit": "-Infinity"}}, "trailing_drawdown.limit", "finite"),
        (b'{"daily_loss": {"limit": 1e999}}', "daily_loss.limit", "at most"),
        ({"trailing_drawdown": {"limit": -5}}, "trailing_drawdown.limit", "positive"),
        (
            {"trailing_drawdown": {"limit": 100, "stop_trailing_at": "1e12"}},
            "trailing_drawdown.stop_trailing_at",
            "at most",
        ),
        ({"max_contracts_per_symbol": -1}, "max_contracts_per_symbol", ">= 1"),
        ({"max_contracts_total": 0}, "max_contracts_total", ">= 1"),
        ({"max_orders_per_minute": 10_001}, "max_orders_per_minute", "<= 10000"),
        ({"max_contracts_total": "3"}, "max_contracts_total", "got str"),
        ({"max_orders_per_minute": 2.5}, "max_orders_per_minute", "got float"),
        ({"max_contracts_per_symbol": True}, "max_contracts_per_symbol", "got bool"),
        ({"daily_loss": {"limit": 100, "on_breach": "explode"}}, "daily_loss.on_breach", "explode"),
        ({"daily_loss": 500}, "daily_loss", "got int"),
        ({"tz": "Mars/Base"}, "tz", "unknown time zone"),
        ({"window": {"start": "09:30", "end": "16:00", "tz": "Europe/Nowhere"}}, "window.tz", "unknown time zone"),
        ({"window": {"start": "9:30", "end": "16:00"}}, "window.start", "regex"),
        ({"window": {"start": "09:30", "end": "24:00"}}, "window.end", "regex"),
        ({"window": {"start": "09:30", "end": "09:30"}}, "window.end", "differ"),
        ({"window": {"start": "09:30"}}, "window.end", "required"),
        ({"window": {"start": "09:30", "end": "16:00", "days": ["mon", "someday"]}}, "window.days[1]", "someday"),
        ({"window": {"start": "09:30", "end": "16:00", "days": []}}, "window.days", "length"),
        ({"day_starts": "5pm"}, "day_starts", "regex"),
        ({"max_loss": 5}, "max_loss", "unknown field"),
    ],
)
async def test_a_rule_that_does_not_parse_is_refused_with_the_fields_path(
    guard_web: Web, body: Any, field: str, reason: str
) -> None:
    response = await put(guard_web, "f1", body)
    assert response.status == 422, await response.text()
    fields = (await response.json())["fields"]
    assert list(fields) == [field], fields
    assert reason in fields[field], fields
    assert guard_web.controls.sent == []  # nothing published
    assert (await (await guard_web.client.get("/api/guards/f1")).json())["source"] == "config"


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
async def test_bare_nan_and_infinity_are_not_json(guard_web: Web, literal: bytes) -> None:
    response = await put(guard_web, "f1", b'{"daily_loss": {"limit": ' + literal + b"}}")
    assert response.status == 400
    assert (await response.json())["error"] == "body is not valid JSON"
    assert guard_web.controls.sent == []


async def test_unknown_accounts_leaders_and_rules_this_deployment_cannot_price_are_refused(
    guard_web: Web, web: Web
) -> None:
    for account in ("nobody", "L"):
        assert (await guard_web.client.get(f"/api/guards/{account}")).status == 404
        assert (await put(guard_web, account, {"max_contracts_total": 1})).status == 404
    # The demo config has no market_data: a loss rule there would only ever refuse entries.
    await web.login()
    for rule, field in (("daily_loss", "daily_loss"), ("trailing_drawdown", "trailing_drawdown")):
        response = await web.client.put("/api/guards/f001", json={rule: {"limit": 500}}, headers=web.write_headers())
        assert response.status == 422
        assert "market_data" in (await response.json())["fields"][field]
    assert guard_web.controls.sent == [] and web.controls.sent == []


async def test_the_write_needs_a_session_and_the_csrf_token(guard_web: Web) -> None:
    no_token = await guard_web.client.put("/api/guards/f1", json={"max_contracts_total": 1})
    assert no_token.status == 403
    await guard_web.client.delete("/api/session", headers=guard_web.write_headers())
    signed_out = await put(guard_web, "f1", {"max_contracts_total": 1})
    assert signed_out.status == 401
    assert guard_web.controls.sent == []


async def test_a_record_from_another_web_worker_applies_and_an_older_one_does_not_undo_a_newer(
    guard_web: Web,
) -> None:
    editor = guard_web.ctx.guard_edits
    assert guard_web.ctx.feed.on_command is not None
    newer = GuardsCommand("g2", "f1", GuardsIn(max_contracts_total=7), "bob", 2_000_000_000.0)
    older = GuardsCommand("g1", "f1", GuardsIn(max_contracts_total=1), "carol", 1_900_000_000.0)
    guard_web.ctx.feed.on_command(decode_command(newer.encode()))  # type: ignore[arg-type]
    guard_web.ctx.feed.on_command(decode_command(older.encode()))  # type: ignore[arg-type]
    answer = editor.current("f1")
    assert answer["guards"]["max_contracts_total"] == 7 and answer["updated_by"] == "bob"


async def test_a_web_worker_applies_guards_records_read_from_the_real_topic(kafka_web: KafkaWeb) -> None:
    record = GuardsCommand("g-kafka", "f003", GuardsIn(max_contracts_per_symbol=2), "ops", 0.0)
    await kafka_web.publish("copy.controls", record.encode(), key=record.key.encode())
    await kafka_web.start_feed()
    editor = kafka_web.ctx.guard_edits
    await wait_until(lambda: editor.current("f003")["guards"] is not None, timeout_s=20, what="guards applied")
    assert editor.current("f003")["rules"] == ["max 2 contracts per symbol"]
    assert editor.current("f003")["updated_by"] == "ops"


GOOD = {
    "max_contracts_per_symbol": 4,
    "max_contracts_total": 6,
    "max_orders_per_minute": 30,
    "daily_loss": {"limit": "500", "on_breach": "flatten_and_pause"},
    "trailing_drawdown": {"limit": 2000, "basis": "intraday", "stop_trailing_at": 2100, "on_breach": "block"},
    "window": {"start": "17:00", "end": "16:00", "days": ["sun", "mon"], "tz": "America/Chicago"},
    "tz": "America/Chicago",
    "day_starts": "17:00",
}
FIELDS = [
    *GOOD,
    *(f"{outer}.{inner}" for outer in ("daily_loss", "trailing_drawdown", "window") for inner in GOOD[outer]),  # type: ignore[attr-defined]
    "surprise",
]


def spoiled(field: str, fragment: str) -> bytes:
    if "." not in field:
        return splice(GOOD, field, fragment)
    outer, inner = field.split(".", 1)
    nested = splice(GOOD[outer], inner, fragment).decode("utf-8", "surrogatepass")  # type: ignore[arg-type]
    return splice({k: v for k, v in GOOD.items() if k != outer}, outer, nested)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FIELDS), fragment=json_fragments)
async def test_property_a_hostile_value_is_refused_naming_its_field_or_makes_rules_that_work(
    guard_web: Web, field: str, fragment: str
) -> None:
    response = await put(guard_web, "f1", spoiled(field, fragment))
    assert response.status in (200, 400, 413, 422), (field, fragment[:80], await response.text())
    if response.status == 422:
        fields = (await response.json())["fields"]
        outer = field.split(".")[0]
        assert all(name == outer or name.startswith(outer + ".") for name in fields), (field, fields)
    if response.status == 200:  # what passes must work: the check, the monitor's marks, the standing
        rules = build(schemas.decode(spoiled(field, fragment), GuardsIn))
        guard = AccountGuard("f1", rules, lambda _symbol, _net: Decimal("5000.25"))
        guard.fill("c1", "ESZ6", "buy", 1, Decimal("5010"), 0, at=datetime.now(UTC))
        guard.check("place", "ESZ6", "buy", 1, None, datetime.now(UTC))
        guard.evaluate(datetime.now(UTC))
        assert isinstance(guard.standing(datetime.now(UTC)), list)
        assert (await guard_web.client.get("/api/guards/f1")).status == 200
    again = await put(guard_web, "f1", GOOD)
    assert again.status == 200, await again.text()
