"""The API's contract and its gate: OpenAPI coverage, 401 everywhere without a session, login
cookies, CSRF, rate limits, field-level validation (never a 500), write-only credentials."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from webtest_helpers import PASSWORD, FastUsers, Web

SPEC = yaml.safe_load((Path(__file__).resolve().parents[2] / "web" / "openapi.yaml").read_text())
METHODS = {"get", "post", "put", "patch", "delete"}


def api_routes(web: Web) -> set[tuple[str, str]]:
    routes = set()
    for route in web.client.server.app.router.routes():  # type: ignore[union-attr]  # TestServer has an app
        path = route.resource.canonical if route.resource else ""
        if path.startswith(("/api/", "/hooks/")) and route.method.lower() in METHODS:
            routes.add((route.method.lower(), path))
    return routes


def concrete(path: str) -> str:
    return (
        path.replace("{account_id}", "f001")
        .replace("{group_id}", "demo")
        .replace("{report}", "pnl")
        .replace("{token_id}", "tv-000000000000")
        .replace("{token}", "not-a-token")
    )


async def test_every_api_route_is_documented_and_every_documented_route_exists(web: Web) -> None:
    documented = {(m, p) for p, item in SPEC["paths"].items() for m in item if m in METHODS}
    assert api_routes(web) == documented


async def test_unauthenticated_requests_to_any_api_route_get_401(web: Web) -> None:
    for method, path in sorted(api_routes(web)):
        if (method, path) == ("post", "/api/session"):
            continue  # the login itself
        response = await web.client.request(method.upper(), concrete(path), json={})
        assert response.status == 401, (method, path, response.status)
        assert (await response.json())["error"]


async def test_unauthenticated_socket_handshake_gets_401(web: Web) -> None:
    response = await web.client.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
    assert response.status == 401
    forged = await web.client.get(
        "/socket.io/", params={"EIO": "4", "transport": "polling"}, headers={"Cookie": "ct_session=not-a-session"}
    )
    assert forged.status == 401


async def test_pages_redirect_to_login_and_static_assets_are_public(web: Web) -> None:
    response = await web.client.get("/trading", allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == "/login"
    assert (await web.client.get("/static/js/login.js")).status == 200
    login = await web.client.get("/login")
    assert "default-src 'self'" in login.headers["Content-Security-Policy"]


async def test_login_sets_an_httponly_samesite_cookie_and_logout_ends_the_session(web: Web) -> None:
    response = await web.login()
    assert response.status == 200
    cookie = response.cookies["ct_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    assert (await web.client.get("/api/grid")).status == 200
    assert (await web.client.delete("/api/session", headers=web.write_headers())).status == 200
    assert (await web.client.get("/api/grid")).status == 401


async def test_login_needs_the_login_csrf_token_and_is_throttled_never_refused(web: Web) -> None:
    no_token = await web.client.post("/api/session", json={"username": "admin", "password": PASSWORD})
    assert no_token.status == 403
    web.ctx.auth.base_delay_s = 0.05
    web.ctx.auth.users = FastUsers()  # type: ignore[assignment]  # the throttle is under test, not scrypt
    for _ in range(6):
        assert (await web.login(password="wrong")).status == 401
    started = time.perf_counter()
    admitted = await web.login()  # the right password still gets in, only later
    assert admitted.status == 200
    assert time.perf_counter() - started >= web.ctx.auth.delay_for(6) > 0


async def test_writes_need_the_csrf_token(web: Web) -> None:
    await web.login()
    body = {"account_id": "f001"}
    assert (await web.client.post("/api/controls/pause", json=body)).status == 403
    assert (await web.client.post("/api/controls/pause", json=body, headers={"X-CSRF-Token": "nope"})).status == 403
    assert (await web.client.post("/api/controls/pause", json=body, headers=web.write_headers())).status == 202


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/api/accounts", {"id": "x1", "platform": "nope", "broker_account": "B"}, "platform"),
        ("POST", "/api/accounts", {"id": "bad id!", "platform": "paper", "broker_account": "B"}, "id"),
        ("POST", "/api/accounts", {"id": "x2", "platform": "paper", "broker_account": "B", "size": -5}, "size"),
        (
            "POST",
            "/api/accounts",
            {"id": "x3", "platform": "paper", "broker_account": "B", "credentials": {"secret": 7}},
            "credentials.secret",
        ),
        ("POST", "/api/accounts", {"id": "x4", "platform": "paper", "broker_account": "B", "colour": "red"}, "colour"),
        ("PATCH", "/api/accounts/f001", {"enabled": "yes"}, "enabled"),
        (
            "PUT",
            "/api/copy-groups/demo/followers/f001",
            {"rule": {"mode": "multiplier", "multiplier": -1}},
            "rule.multiplier",
        ),
        ("PUT", "/api/copy-groups/demo/followers/f001", {"rule": {"mode": "sideways"}}, "rule.mode"),
        ("POST", "/api/controls/pause", {}, "account_id"),
        ("POST", "/api/controls/flatten", {"account_id": 5}, "account_id"),
        ("GET", "/api/orders?limit=0", None, "limit"),
        ("GET", "/api/reports/pnl?start=yesterday", None, "start"),
    ],
)
async def test_bad_input_gets_a_4xx_naming_the_field(web: Web, method: str, path: str, body: Any, field: str) -> None:
    await web.login()
    response = await web.client.request(method, path, json=body, headers=web.write_headers())
    assert response.status == 422, await response.text()
    assert field in (await response.json())["fields"]


async def test_a_body_that_is_not_json_is_a_400(web: Web) -> None:
    await web.login()
    response = await web.client.post("/api/accounts", data=b"{not json", headers=web.write_headers())
    assert response.status == 400
    assert (await web.client.post("/api/accounts", json=[1, 2], headers=web.write_headers())).status == 422


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
WRITE_ROUTES = [
    ("POST", "/api/accounts"),
    ("PATCH", "/api/accounts/f002"),
    ("PUT", "/api/copy-groups/demo/followers/f003"),
    ("POST", "/api/controls/pause"),
    ("POST", "/api/controls/flatten"),
    ("POST", "/api/signals"),
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(WRITE_ROUTES), body=json_values)
async def test_no_body_ever_causes_a_500(web: Web, route: tuple[str, str], body: Any) -> None:
    if not web.csrf:
        await web.login()
    response = await web.client.request(route[0], route[1], data=json.dumps(body), headers=web.write_headers())
    assert response.status < 500, (route, body, await response.text())


async def test_credentials_are_write_only_and_never_logged(web: Web, caplog: pytest.LogCaptureFixture) -> None:
    secret, login = "S3cr3t-Broker-Pa55", "broker-login-77"
    caplog.set_level(logging.DEBUG)
    await web.login()
    body = {
        "id": "acct9",
        "platform": "tradovate",
        "broker_account": "DEMO9",
        "size": 25000,
        "endpoint": "http://127.0.0.1:9",
        "credentials": {"username": login, "secret": secret},
    }
    created = await web.client.post("/api/accounts", json=body, headers=web.write_headers())
    assert created.status == 201
    texts = [await created.text()]
    for path in ("/api/accounts", "/api/accounts/acct9", "/api/copy-groups", "/api/grid"):
        texts.append(await (await web.client.get(path)).text())
    tested = await web.client.post("/api/accounts/acct9/test", headers=web.write_headers())
    texts.append(await tested.text())
    patched = await web.client.patch(
        "/api/accounts/acct9", json={"credentials": {"secret": secret + "2"}}, headers=web.write_headers()
    )
    texts.append(await patched.text())
    assert (await created.json())["credentials"] == {"set": True}
    published = [value.decode() for _, value in web.controls.sent]  # what every worker reads on copy.controls
    assert len(published) == 2
    for text in texts + published + [caplog.text, repr(web.ctx.accounts.get("acct9"))]:
        assert secret not in text and login not in text
