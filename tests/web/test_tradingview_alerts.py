"""TradingView alerts (issue #18 item 5): a per-copy-group URL with a long random token.

Made and revoked from the API, known to every web worker by its digest alone (replayed from
``copy.controls``), compared in constant time, rate-limited per token; an unknown, revoked or
over-rate token gets 401/429 and nothing is copied; a malformed alert gets 422 naming the field.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from webtest_helpers import Web

from copytrader.core.control_records import AlertTokenCommand, decode_command
from copytrader.core.signals import decode_signal
from copytrader.web.alerts import AlertRefused, AlertTokens, digest_of

#: TradingView's placeholders expand to text: numbers arrive as strings.
ALERT = {
    "action": "buy",
    "ticker": "ES1!",
    "contracts": "2",
    "id": "Long",
    "time": "2026-11-30T14:30:00Z",
    "interval": "5",  # extra placeholders traders paste are ignored
}


async def make_token(web: Web, **body: Any) -> dict[str, Any]:
    response = await web.client.post(
        "/api/copy-groups/demo/alert-tokens",
        json={"label": "ES strategy", "ticker_map": {"ES1!": "ESZ6"}, **body},
        headers=web.write_headers(),
    )
    assert response.status == 201, await response.text()
    made: dict[str, Any] = await response.json()
    return made


def signals(web: Web) -> list[Any]:
    return [decode_signal(payload) for _, payload in web.outbox.sent["signal"]]


async def test_an_alert_on_the_tokens_url_becomes_the_leaders_signal(web: Web) -> None:
    await web.login()
    made = await make_token(web)
    assert len(made["token"]) >= 43 and made["path"] == f"/hooks/tradingview/demo/{made['token']}"
    # The token is shown once: neither the list nor the published record holds it.
    listed = await (await web.client.get("/api/copy-groups/demo/alert-tokens")).json()
    assert [t["token_id"] for t in listed["tokens"]] == [made["token_id"]]
    assert made["token"] not in orjson.dumps(listed).decode()
    (key, record), *_ = web.controls.sent
    assert key == f"alert:{made['token_id']}".encode() and made["token"].encode() not in record
    assert orjson.loads(record)["digest"] == digest_of(made["token"])

    web.client.session.cookie_jar.clear()  # TradingView has no session
    answer = await web.client.post(made["path"], data=orjson.dumps(ALERT))
    assert answer.status == 202, await answer.text()
    (signal,) = signals(web)
    assert (signal.leader_account, signal.symbol, signal.side, signal.quantity) == ("leader-1", "ESZ6", "buy", 2)
    assert (signal.kind, signal.order_type, signal.source, signal.platform) == (
        "new",
        "market",
        "tradingview",
        "tradingview",
    )
    assert (await answer.json())["signal_id"] == signal.signal_id


async def test_a_repeated_delivery_is_the_same_signal_and_a_new_alert_is_another(web: Web) -> None:
    await web.login()
    made = await make_token(web)
    for body in (ALERT, ALERT, {**ALERT, "time": "2026-11-30T14:35:00Z"}):
        assert (await web.client.post(made["path"], data=orjson.dumps(body))).status == 202
    first, again, later = signals(web)
    assert first.signal_id == again.signal_id != later.signal_id


async def test_exits_limits_and_flatten(web: Web) -> None:
    await web.login()
    made = await make_token(web)
    bodies = [
        {**ALERT, "action": "sell", "order_type": "limit", "price": "5012.25", "id": "a"},
        {**ALERT, "action": "exit", "contracts": None, "id": "b"},
    ]
    for body in bodies:
        assert (await web.client.post(made["path"], data=orjson.dumps(body))).status == 202
    limit, flat = signals(web)
    assert (limit.side, limit.order_type, str(limit.limit_price)) == ("sell", "limit", "5012.25")
    assert (flat.kind, flat.symbol) == ("flatten", "ESZ6")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"contracts": "1e999999"}, "contracts"),
        ({"contracts": "Infinity"}, "contracts"),
        ({"contracts": "NaN"}, "contracts"),
        ({"contracts": 1e308}, "contracts"),
        ({"contracts": "2.5"}, "contracts"),
        ({"contracts": "0"}, "contracts"),
        ({"contracts": "-3"}, "contracts"),
        ({"contracts": "{{strategy.order.contracts}}"}, "contracts"),  # a placeholder TradingView did not fill
        ({"ticker": "NOPE1!"}, "ticker"),
        ({"ticker": "ES1!; DROP"}, "ticker"),
        ({"action": "short"}, "action"),
        ({"order_type": "limit"}, "price"),
        ({"order_type": "limit", "price": "1e999999"}, "price"),
        ({"order_type": "stop", "price": "-1"}, "price"),
    ],
)
async def test_a_malformed_alert_is_refused_naming_the_field_and_never_copied(
    web: Web, change: dict[str, Any], field: str
) -> None:
    await web.login()
    made = await make_token(web)
    answer = await web.client.post(made["path"], data=orjson.dumps({**ALERT, **change}))
    assert answer.status == 422, await answer.text()
    assert (await answer.json())["field"] == field
    assert signals(web) == []


async def test_not_json_and_too_large_are_refused(web: Web) -> None:
    await web.login()
    made = await make_token(web)
    assert (await web.client.post(made["path"], data=b"buy 2 ES")).status == 422
    assert (await web.client.post(made["path"], data=b"{" + b" " * 20_000 + b"}")).status == 413
    assert signals(web) == []


async def test_unknown_revoked_and_other_groups_tokens_get_401(web: Web) -> None:
    await web.login()
    made = await make_token(web)
    token = made["token"]
    wrong = [
        f"/hooks/tradingview/demo/{token[:-1]}x",
        f"/hooks/tradingview/other-group/{token}",
        "/hooks/tradingview/demo/",
    ]
    for path in wrong:
        assert (await web.client.post(path, data=orjson.dumps(ALERT))).status in (401, 404, 405), path
    revoked = await web.client.delete(
        f"/api/copy-groups/demo/alert-tokens/{made['token_id']}", headers=web.write_headers()
    )
    assert revoked.status == 200 and (await revoked.json())["revoked"] is True
    answer = await web.client.post(made["path"], data=orjson.dumps(ALERT))
    assert answer.status == 401
    assert signals(web) == []


async def test_over_its_rate_a_token_gets_429_with_retry_after(web: Web) -> None:
    await web.login()
    made = await make_token(web, per_minute=2)
    answers = [await web.client.post(made["path"], data=orjson.dumps({**ALERT, "id": str(n)})) for n in range(3)]
    assert [a.status for a in answers] == [202, 202, 429]
    assert 1 <= int(answers[2].headers["Retry-After"]) <= 60
    assert len(signals(web)) == 2


async def test_token_management_needs_a_session_and_csrf_and_a_known_group(web: Web) -> None:
    assert (await web.client.post("/api/copy-groups/demo/alert-tokens", json={})).status == 401
    await web.login()
    assert (await web.client.post("/api/copy-groups/demo/alert-tokens", json={})).status == 403
    missing = await web.client.post("/api/copy-groups/nope/alert-tokens", json={}, headers=web.write_headers())
    assert missing.status == 404
    bad = await web.client.post(
        "/api/copy-groups/demo/alert-tokens", json={"per_minute": 10_000}, headers=web.write_headers()
    )
    assert bad.status == 422 and "per_minute" in (await bad.json())["fields"]


def test_another_worker_knows_the_token_from_the_replayed_record_alone() -> None:
    token = "t" * 43
    command = AlertTokenCommand("c1", "tv-1", "demo", digest_of(token), per_minute=5, by="admin", at=1.0)
    replayed = decode_command(command.encode())
    assert isinstance(replayed, AlertTokenCommand)
    elsewhere = AlertTokens()
    elsewhere.apply(replayed)
    assert elsewhere.admit("demo", token).token_id == "tv-1"
    with pytest.raises(AlertRefused) as refused:
        elsewhere.admit("demo", "t" * 42 + "u")
    assert refused.value.status == 401
    # Revoked stays revoked, even if an older record arrives after the revocation.
    elsewhere.apply(AlertTokenCommand("c2", "tv-1", "demo", digest_of(token), revoked=True))
    elsewhere.apply(replayed)
    with pytest.raises(AlertRefused):
        elsewhere.admit("demo", token)


def test_a_record_cannot_re_point_a_token_id_at_another_token() -> None:
    tokens = AlertTokens()
    tokens.apply(AlertTokenCommand("c1", "tv-1", "demo", digest_of("first")))
    tokens.apply(AlertTokenCommand("c2", "tv-1", "demo", digest_of("second")))
    assert tokens.admit("demo", "first").token_id == "tv-1"
    with pytest.raises(AlertRefused):
        tokens.admit("demo", "second")
