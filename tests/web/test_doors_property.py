"""Property tests at the web doors (issue #12): the signed webhook and every REST write route,
fed generated hostile values one field at a time. Each is refused with a 4xx naming the field,
or handled; never a 500, and the next good request still works. Also: the OpenAPI document
serves the very schemas the server decodes with."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
import yaml
from hostile_values import json_fragments, splice
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from webtest_helpers import WEBHOOK_SECRET, FastUsers, Web

from copytrader.core.schemas import WRITE_BODIES
from copytrader.web.openapi import OPENAPI, body_components, document
from copytrader.web.webhook import MemoryReplayCache, sign

PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
GOOD_SIGNAL = {
    "signal_id": "p-1",
    "leader_account": "leader-1",
    "symbol": "ESZ6",
    "side": "buy",
    "quantity": 1,
    "order_type": "limit",
    "limit_price": "5000.25",
    "stamps": {"published": 1.0},
}
# One good body per write route; the property spoils one field at a time.
ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    (
        "POST",
        "/api/accounts",
        {
            "id": "pp1",
            "platform": "tradovate",  # its settings: cid, and the secret sec
            "broker_account": "B",
            "size": 50000,
            "endpoint": "https://demo.example/v1",
            "options": {"cid": 1},
            "credentials": {"username": "u", "secret": "s", "options": {"sec": "x"}},
        },
    ),
    (
        "PATCH",
        "/api/accounts/f002",
        {
            "size": 1000,
            "enabled": True,
            "endpoint": "https://demo.example/v1",
            "options": {"cid": 1},
            "platform": "tradovate",
            "broker_account": "B",
        },
    ),
    (
        "PUT",
        "/api/copy-groups/demo/followers/f003",
        {
            "rule": {
                "mode": "multiplier",
                "multiplier": "0.5",
                "quantity": 1,
                "max_quantity": 3,
                "min_quantity": 1,
                "symbol_map": {"ES": "MES"},
                "inverse": False,
            },
            "enabled": True,
        },
    ),
    ("POST", "/api/controls/pause", {"account_id": "f001"}),
    ("POST", "/api/controls/resume", {"account_id": "f001"}),
    ("POST", "/api/controls/flatten", {"account_id": "f001"}),
    ("POST", "/api/session", {"username": "admin", "password": "x", "next": "/trading"}),
]


@pytest.fixture(autouse=True)
def _fast_logins(web: Web) -> None:
    web.ctx.auth.users = FastUsers()  # type: ignore[assignment]  # the doors are under test, not scrypt
    web.ctx.auth.base_delay_s = 0.0


def _fields(route: tuple[str, str, dict[str, Any]]) -> list[str]:
    body = route[2]
    nested = [f"rule.{k}" for k in body.get("rule", {})] + [f"credentials.{k}" for k in body.get("credentials", {})]
    return [*body, *nested, "surprise"]


def spoil(body: dict[str, Any], field: str, fragment: str) -> bytes:
    if "." in field:
        outer, inner = field.split(".", 1)
        return splice(
            {k: v for k, v in body.items() if k != outer},
            outer,
            splice(body[outer], inner, fragment).decode("utf-8", "surrogatepass"),
        )
    return splice(body, field, fragment)


@PROPERTY
@given(field=st.sampled_from([*GOOD_SIGNAL, "kind", "fill_price", "occurred_at", "surprise"]), fragment=json_fragments)
async def test_property_the_webhook_refuses_naming_the_field_or_accepts(web: Web, field: str, fragment: str) -> None:
    web.ctx.webhook.cache = MemoryReplayCache()  # hypothesis may replay an example within the same second
    body = spoil(GOOD_SIGNAL, field, fragment)
    response = await web.client.post(
        "/api/signals", data=body, headers={"X-CopyTrader-Signature": sign(WEBHOOK_SECRET, body)}
    )
    assert response.status in (202, 400, 413), (field, fragment[:80], await response.text())
    if response.status == 400:
        answer = await response.json()
        assert answer.get("field") or answer["error"] == "body is not valid JSON"
    good = json.dumps({**GOOD_SIGNAL, "signal_id": f"good-{len(web.outbox.sent['signal'])}"}).encode()
    after = await web.client.post(
        "/api/signals", data=good, headers={"X-CopyTrader-Signature": sign(WEBHOOK_SECRET, good)}
    )
    assert after.status == 202


@PROPERTY
@given(data=st.data(), fragment=json_fragments)
async def test_property_every_write_route_refuses_naming_the_field_or_handles_it(
    web: Web, data: st.DataObject, fragment: str
) -> None:
    route = data.draw(st.sampled_from(ROUTES))
    field = data.draw(st.sampled_from(_fields(route)))
    if not web.csrf:
        await web.login()
    method, path, body = route
    headers = web.write_headers()
    if path == "/api/session":
        page = await web.client.get("/login")
        headers = {"X-CSRF-Token": page.cookies["ct_login"].value}
    response = await web.client.request(method, path, data=spoil(body, field, fragment), headers=headers)
    assert response.status < 500, (route[:2], field, fragment[:80], await response.text())
    if response.status == 422:
        fields = (await response.json())["fields"]
        assert any(
            name == field or name.startswith((field + ".", field.split(".")[0])) or name in ("body", "account")
            for name in fields
        ), (field, fields)
    if path == "/api/session" and response.status == 200:
        web.csrf = (await response.json())["csrf"]  # a new session: its token from now on
    again = await web.client.post("/api/controls/resume", json={"account_id": "f001"}, headers=web.write_headers())
    assert again.status == 202, await again.text()


async def test_the_served_openapi_document_carries_the_schemas_the_server_decodes_with(web: Web) -> None:
    await web.login()
    served = yaml.safe_load(await (await web.client.get("/api/openapi.yaml")).text())
    components = served["components"]["schemas"]
    generated = json.loads(json.dumps(body_components()))
    for name, schema in generated.items():
        assert components[name] == schema, name
    raw = yaml.safe_load(OPENAPI.read_text())
    assert not set(raw["components"]["schemas"]) & set(generated)  # never hand-written beside them
    for (method, path), schema in WRITE_BODIES.items():
        ref = served["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{schema.__name__}", (method, path)
    assert document()["openapi"].startswith("3.1")


def test_every_documented_write_route_has_a_body_schema() -> None:
    spec = yaml.safe_load(OPENAPI.read_text())
    with_bodies = {
        (m, p)
        for p, item in spec["paths"].items()
        for m, op in item.items()
        if isinstance(op, dict) and "requestBody" in op
    }
    assert with_bodies == set(WRITE_BODIES)
    assert all(issubclass(t, msgspec.Struct) for t in WRITE_BODIES.values())
