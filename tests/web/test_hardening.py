"""Issue #12 at the web doors: strict bodies (findings 1, 2), logins that cannot be redirected
(3), throttling that never locks the real user out (4) and the smaller hardening (5)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from webtest_helpers import PASSWORD, WEBHOOK_SECRET, FastUsers, Web

from copytrader.agents.shared.outbox import MemoryOutbox
from copytrader.app.factory import create_app
from copytrader.core.config import parse_config
from copytrader.core.metrics import serve_metrics
from copytrader.core.settings import Settings
from copytrader.demo.configgen import demo_config
from copytrader.web.redirects import safe_next
from copytrader.web.server import secure_cookies
from copytrader.web.webhook import sign


@pytest.fixture(autouse=True)
def _fast_logins(request: pytest.FixtureRequest) -> None:
    """Logins here test what follows them, not scrypt (seconds each on a busy machine)."""
    if "web" in request.fixturenames:
        request.getfixturevalue("web").ctx.auth.users = FastUsers()


GOOD = {"signal_id": "h-1", "leader_account": "leader-1", "symbol": "ESZ6", "side": "buy", "quantity": 1}


def splice(body: dict[str, Any], field: str, raw: str) -> bytes:
    rest = orjson.dumps({k: v for k, v in body.items() if k != field}).decode()[:-1]
    return f'{rest}, "{field}": {raw}}}'.encode()


async def post_signed(web: Web, body: bytes) -> Any:
    return await web.client.post(
        "/api/signals", data=body, headers={"X-CopyTrader-Signature": sign(WEBHOOK_SECRET, body)}
    )


# ------------------------------------------------------------------ findings 1 and 2: values


@pytest.mark.parametrize(
    ("field", "raw"),
    [
        ("limit_price", '"Infinity"'),
        ("limit_price", '"NaN"'),
        ("quantity", "1e30"),
        ("quantity", "1e308"),
        ("quantity", "1.5"),
        ("quantity", '"5"'),
        ("quantity", "true"),
        ("signal_id", '["a"]'),
        ("symbol", '"' + "E" * 60_000 + '"'),
        ("stamps", "[" * 1000 + "]" * 1000),
        ("stamps", '"1.0"'),
    ],
)
async def test_a_signed_signal_with_a_bad_value_is_refused_naming_the_field(web: Web, field: str, raw: str) -> None:
    body = splice({**GOOD, "order_type": "limit", "limit_price": "5000"}, field, raw)
    response = await post_signed(web, body)
    assert response.status == 400, await response.text()
    assert (await response.json())["field"] == field
    assert not web.outbox.sent["signal"]


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"multiplier": "Infinity"}, "rule.multiplier"),
        ({"multiplier": "NaN"}, "rule.multiplier"),
        ({"multiplier": 1e308}, "rule.multiplier"),
        ({"quantity": 1.5}, "rule.quantity"),
        ({"quantity": "5"}, "rule.quantity"),
        ({"quantity": True}, "rule.quantity"),
        ({"inverse": "no"}, "rule.inverse"),
    ],
)
async def test_a_rule_edit_with_a_bad_value_is_refused_and_never_published(
    web: Web, rule: dict[str, Any], field: str
) -> None:
    await web.login()
    response = await web.client.put(
        "/api/copy-groups/demo/followers/f001", json={"rule": rule}, headers=web.write_headers()
    )
    assert response.status == 422, await response.text()
    assert field in (await response.json())["fields"]
    assert not web.controls.sent


async def test_account_sizes_must_be_finite_and_sane(web: Web) -> None:
    await web.login()
    for size in ("1e999999", "Infinity", "NaN", 1e308):
        body = {"id": "big", "platform": "paper", "broker_account": "B", "size": size}
        response = await web.client.post("/api/accounts", json=body, headers=web.write_headers())
        assert response.status == 422 and "size" in (await response.json())["fields"], size


async def test_a_body_sent_in_two_tcp_segments_is_read_whole(web: Web) -> None:
    body = orjson.dumps({**GOOD, "signal_id": "two-segments"})
    head = (
        f"POST /api/signals HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-CopyTrader-Signature: {sign(WEBHOOK_SECRET, body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    server = web.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(head + body[:20])
    await writer.drain()
    await asyncio.sleep(0.1)  # paces the scenario, gates no assertion: the first read() sees one segment
    writer.write(body[20:])
    await writer.drain()
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 202"), answer[:300]


# --------------------------------------------------------- finding 3: a login cannot be redirected


async def _listener() -> tuple[asyncio.Server, list[bytes]]:
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            received.append(await asyncio.wait_for(reader.read(65536), 1.0))
        except TimeoutError:
            pass
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0), received


async def test_changing_the_endpoint_clears_the_stored_login_so_test_cannot_send_it_elsewhere(web: Web) -> None:
    secret, user = "S3cr3t-Redirect-Pa55", "redirect-login-1"
    await web.login()
    body = {
        "id": "acctR",
        "platform": "tradovate",
        "broker_account": "DEMO1",
        "endpoint": "http://127.0.0.1:9",
        "credentials": {"username": user, "secret": secret},
    }
    assert (await web.client.post("/api/accounts", json=body, headers=web.write_headers())).status == 201
    server, received = await _listener()
    port = server.sockets[0].getsockname()[1]
    async with server:
        patched = await web.client.patch(
            "/api/accounts/acctR", json={"endpoint": f"http://127.0.0.1:{port}"}, headers=web.write_headers()
        )
        assert patched.status == 200
        assert (await patched.json())["credentials"] == {"set": False}  # must be entered again
        await web.client.post("/api/accounts/acctR/test", headers=web.write_headers())
    assert web.ctx.accounts.get("acctR").sealed is None
    assert all(secret.encode() not in data and user.encode() not in data for data in received)


async def test_a_new_login_sent_with_the_new_endpoint_is_kept_and_other_edits_keep_the_login(web: Web) -> None:
    await web.login()
    body = {"id": "acctK", "platform": "paper", "broker_account": "B", "credentials": {"secret": "one"}}
    assert (await web.client.post("/api/accounts", json=body, headers=web.write_headers())).status == 201
    kept = await web.client.patch(
        "/api/accounts/acctK", json={"size": 1000, "broker_account": "B2"}, headers=web.write_headers()
    )
    assert (await kept.json())["credentials"] == {"set": True}
    both = {"endpoint": "https://demo.example/v1", "credentials": {"secret": "two"}}
    moved = await web.client.patch("/api/accounts/acctK", json=both, headers=web.write_headers())
    assert (await moved.json())["credentials"] == {"set": True}
    for change in ({"platform": "tradovate"}, {"options": {"cid": 7}}):
        await web.client.patch(
            "/api/accounts/acctK", json={"credentials": {"secret": "again"}}, headers=web.write_headers()
        )
        cleared = await web.client.patch("/api/accounts/acctK", json=change, headers=web.write_headers())
        assert (await cleared.json())["credentials"] == {"set": False}, change


@pytest.mark.parametrize(
    "endpoint", ["javascript:alert(1)", "file:///etc/passwd", "ftp://h/", "http://", "https://u:p@h/"]
)
async def test_endpoints_must_be_web_urls(web: Web, endpoint: str) -> None:
    await web.login()
    body = {"id": "acctE", "platform": "paper", "broker_account": "B", "endpoint": endpoint}
    response = await web.client.post("/api/accounts", json=body, headers=web.write_headers())
    assert response.status == 422 and "endpoint" in (await response.json())["fields"]


async def test_an_endpoint_host_allow_list_is_a_setting(web: Web) -> None:
    await web.login()
    web.ctx.accounts.allowed_hosts = frozenset({"demo.tradovateapi.com"})
    body = {"id": "acctA", "platform": "tradovate", "broker_account": "B", "endpoint": "https://evil.example/v1"}
    refused = await web.client.post("/api/accounts", json=body, headers=web.write_headers())
    assert refused.status == 422 and "not allowed" in (await refused.json())["fields"]["endpoint"]
    body["endpoint"] = "https://demo.tradovateapi.com/v1"
    assert (await web.client.post("/api/accounts", json=body, headers=web.write_headers())).status == 201


# ---------------------------------------------------- finding 4: nobody can lock the admin out


async def test_failures_from_one_address_slow_it_down_and_never_another(
    web: Web, monkeypatch: pytest.MonkeyPatch
) -> None:
    import copytrader.web.auth as auth_module

    waits: list[tuple[str, float]] = []
    client = {"now": ""}

    async def no_sleep(seconds: float) -> None:
        waits.append((client["now"], seconds))

    monkeypatch.setattr(auth_module.asyncio, "sleep", no_sleep)
    auth = web.ctx.auth
    client["now"] = "203.0.113.7"
    for _ in range(8):
        with pytest.raises(auth_module.LoginRefused, match="wrong"):
            await auth.login("admin", "wrong", client["now"])
    slowed = [s for who, s in waits if who == "203.0.113.7"]
    assert len(slowed) == 8 - auth_module.LOGIN_FREE_FAILURES and slowed == sorted(slowed) and slowed[0] > 0
    client["now"] = "198.51.100.2"
    await auth.login("admin", PASSWORD, client["now"])  # another address: not slowed at all
    assert not [s for who, s in waits if who == "198.51.100.2"]
    client["now"] = "203.0.113.7"
    await auth.login("admin", PASSWORD, client["now"])  # the slowed address: slowed, still let in
    assert waits[-1][0] == "203.0.113.7" and waits[-1][1] >= slowed[-1]


async def test_wrong_passwords_for_the_admin_from_many_addresses_do_not_lock_the_admin_out(web: Web) -> None:
    for i in range(10):
        with pytest.raises(Exception, match="wrong"):
            await web.ctx.auth.login("admin", "wrong", f"192.0.2.{i}")
    assert (await web.login()).status == 200


# ------------------------------------------------------------------ finding 5: smaller hardening


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "/trading"),
        ("/accounts", "/accounts"),
        ("/reports?x=1", "/reports?x=1"),
        ("//evil.example/", "/trading"),
        ("/\\evil.example/", "/trading"),
        ("/%5Cevil.example/x", "/trading"),
        ("/%2F%2Fevil.example", "/trading"),
        ("%2F%2Fevil.example", "/trading"),
        ("https://evil.example/", "/trading"),
        ("javascript:alert(1)", "/trading"),
        ("/%255Cevil.example", "/trading"),
        ("/\tevil", "/trading"),
        ("", "/trading"),
    ],
)
def test_the_redirect_after_login_stays_on_the_site(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


async def test_login_answers_where_to_go_and_never_off_site(web: Web) -> None:
    page = await web.client.get("/login")
    token = page.cookies["ct_login"].value
    response = await web.client.post(
        "/api/session",
        json={"username": "admin", "password": PASSWORD, "next": "/%5Cevil.example/x"},
        headers={"X-CSRF-Token": token},
    )
    assert (await response.json())["next"] == "/trading"


def test_the_secure_cookie_flag_is_on_unless_plain_http_on_loopback() -> None:
    assert secure_cookies({}, "0.0.0.0") is True
    assert secure_cookies({}, "10.1.2.3") is True
    assert secure_cookies({}, "127.0.0.1") is False and secure_cookies({}, "::1") is False
    assert secure_cookies({"COPYTRADER_SECURE_COOKIES": "1"}, "127.0.0.1") is True
    assert secure_cookies({"COPYTRADER_SECURE_COOKIES": "0"}, "0.0.0.0") is False


async def test_a_secure_server_sets_secure_cookies(web: Web) -> None:
    from http.cookies import SimpleCookie

    web.ctx.auth.secure_cookie = True
    page = await web.client.get("/login")
    assert "Secure" in page.headers["Set-Cookie"]
    token = SimpleCookie(page.headers["Set-Cookie"])["ct_login"].value
    response = await web.client.post(
        "/api/session",
        json={"username": "admin", "password": PASSWORD},
        headers={"X-CSRF-Token": token, "Cookie": f"ct_login={token}"},
    )
    assert response.status == 200, await response.text()
    assert any("ct_session=" in c and "Secure" in c for c in response.headers.getall("Set-Cookie"))


async def test_csv_exports_are_not_stored(web: Web) -> None:
    await web.login()
    response = await web.client.get("/api/reports/pnl?format=csv")
    assert response.status == 200 and response.headers["Cache-Control"] == "no-store"


async def test_metrics_can_have_their_own_port_and_then_leave_the_dashboard_port(tmp_path: Any) -> None:
    settings = Settings(data_dir=tmp_path, roles=("web",), app_id="metrics-port", metrics_port=1)
    app = create_app(settings, parse_config(demo_config(2), env={}), outbox=MemoryOutbox())
    client = TestClient(TestServer(app.web.web_app))
    await client.start_server()
    try:
        response = await client.get("/metrics", allow_redirects=False)
        assert response.status in (302, 401, 404)  # not public on the dashboard's port
    finally:
        await client.close()
    server = await asyncio.get_running_loop().create_server(asyncio.Protocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    runner = await serve_metrics("127.0.0.1", port)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = await reader.read()
        writer.close()
        assert answer.startswith(b"HTTP/1.1 200") and b"copytrader_" in answer
    finally:
        await runner.cleanup()
