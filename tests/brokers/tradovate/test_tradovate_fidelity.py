"""Fidelity: the simulator's payloads have the shapes of recorded public examples, and a
public third-party client (npm ``tradovate``) talks to it unchanged."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
from ci_skips import require

from copytrader.brokers.tradovate import codec
from copytrader.brokers.tradovate.simulator import TradovateSimulator

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures"
ACCT = "DEMO1001"


def fixture(name: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / name).read_text())
    assert data["source"], f"{name} must name its public source"
    return data


def kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def assert_shape(actual: Any, example: Any, path: str = "$") -> None:
    """Every field of the example is present in ``actual`` with the same JSON type."""
    assert kind(actual) == kind(example), f"{path}: {kind(actual)} != {kind(example)} ({actual!r})"
    if isinstance(example, dict):
        for key, value in example.items():
            assert key in actual, f"{path}.{key} missing from {sorted(actual)}"
            assert_shape(actual[key], value, f"{path}.{key}")


async def login(http: aiohttp.ClientSession, sim: TradovateSimulator) -> dict[str, Any]:
    creds = sim.demo_credentials()
    body = {k: creds[k] for k in ("name", "password", "appId", "appVersion", "cid", "sec", "deviceId")}
    reply = await http.post(f"{sim.base_url}/auth/accesstokenrequest", json=body)
    assert reply.status == 200
    return dict(await reply.json())


async def test_rest_payload_shapes(sim: TradovateSimulator) -> None:
    async with aiohttp.ClientSession() as http:
        token = await login(http, sim)
        assert_shape(token, fixture("access_token_response.json")["example"])
        bad = await (await http.post(f"{sim.base_url}/auth/accesstokenrequest", json={"name": "x"})).json()
        assert_shape(bad, fixture("access_token_error.json")["example"])
        headers = {"Authorization": f"Bearer {token['accessToken']}"}
        entities = fixture("entities.json")
        accounts = await (await http.get(f"{sim.base_url}/account/list", headers=headers)).json()
        assert_shape(accounts[0], entities["account"])
        order = {
            "accountSpec": ACCT,
            "accountId": accounts[0]["id"],
            "action": "Buy",
            "symbol": "ESZ6",
            "orderQty": 1,
            "orderType": "Market",
            "isAutomated": True,
        }
        placed = await (await http.post(f"{sim.base_url}/order/placeorder", json=order, headers=headers)).json()
        assert set(placed) == set(fixture("place_order_response.json")["example"])
        sim.faults(ACCT).reject_next = "SessionClosed"
        failed = await (await http.post(f"{sim.base_url}/order/placeorder", json=order, headers=headers)).json()
        assert_shape(failed, fixture("place_order_failure.json")["example"])
        sim.faults(ACCT).rate_limit_next = 1
        penalty = await (await http.post(f"{sim.base_url}/order/placeorder", json=order, headers=headers)).json()
        assert_shape(penalty, fixture("penalty_response.json")["example"])
        for name in (
            "order",
            "orderVersion",
            "executionReport",
            "fill",
            "position",
            "cashBalance",
            "command",
            "commandReport",
        ):
            rows = await (await http.get(f"{sim.base_url}/{name}/list", headers=headers)).json()
            assert rows, f"{name}/list is empty"
            assert_shape(rows[0], entities[name], name)


async def test_websocket_shapes(sim: TradovateSimulator) -> None:
    async with aiohttp.ClientSession() as http:
        token = await login(http, sim)
        ws = await http.ws_connect(sim.ws_url)
        assert await ws.receive_str() == "o"
        await ws.send_str(f"authorize\n0\n\n{token['accessToken']}")
        reply = json.loads((await ws.receive_str())[1:])[0]
        assert reply == fixture("ws_authorize_ok.json")["example"]
        await ws.send_str(codec.encode_request("user/syncrequest", 1, "", {"users": [token["userId"]]}))
        sync = json.loads((await ws.receive_str())[1:])[0]
        assert sync["s"] == 200 and sync["i"] == 1
        assert set(fixture("sync_response_keys.json")["example_keys"]) <= set(sync["d"])
        await ws.send_str(
            codec.encode_request(
                "order/placeorder",
                2,
                "",
                {
                    "accountSpec": ACCT,
                    "accountId": sim.account_id(ACCT),
                    "action": "Buy",
                    "symbol": "ESZ6",
                    "orderQty": 1,
                    "orderType": "Market",
                    "isAutomated": True,
                },
            )
        )
        seen: dict[str, Any] = {}
        while not {"order", "executionReport", "fill", "position"} <= set(seen):
            frame = codec.decode_server_frame(await asyncio.wait_for(ws.receive_str(), 5))
            if isinstance(frame, codec.DataFrame):
                for item in frame.items:
                    if isinstance(item, codec.Push):
                        assert_shape({"e": item.event, "d": item.data}, fixture("entities.json")["props_event"])
                        seen.setdefault(item.data["entityType"], item.data["entity"])
        for name, entity in seen.items():
            if name in fixture("entities.json"):
                assert_shape(entity, fixture("entities.json")[name], name)
        await ws.send_str("[]")  # client heartbeat: accepted silently, the socket stays open
        assert not ws.closed
        await ws.close()


# -- third-party client ----------------------------------------------------------------------


def npm_client_dir() -> Path:
    """Install the pinned npm client once per package.json content into a cache directory."""
    require("node", "node/npm not installed", available=shutil.which("node") and shutil.which("npm"))
    manifest = (HERE / "js" / "package.json").read_bytes()
    root = Path(os.environ.get("COPYTRADER_NPM_CACHE", Path.home() / ".cache" / "copytrader-npm"))
    target = root / hashlib.sha256(manifest).hexdigest()[:12]
    if not (target / "node_modules" / "tradovate").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        (target / "package.json").write_bytes(manifest)
        done = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=target,
            capture_output=True,
            text=True,
            timeout=300,
        )
        require(
            "third-party client",
            f"npm install of the tradovate client failed: {done.stderr[-300:]}",
            available=done.returncode == 0,
        )
    return target


async def test_npm_tradovate_client_unchanged(sim: TradovateSimulator) -> None:
    modules = npm_client_dir() / "node_modules"
    creds = sim.demo_credentials()
    env = {
        **os.environ,
        "SIM_REST": sim.base_url,
        "SIM_WS": sim.ws_url,
        "SIM_CREDS": json.dumps(creds),
        "SIM_ACCOUNT": ACCT,
        "NODE_PATH": str(modules),
    }
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(HERE / "js" / "client_check.js"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-2000:]
    line = next(ln for ln in out.decode().splitlines() if ln.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    assert result["accounts"] == creds["accounts"] and result["userId"] == 100001
    assert result["restOrder"]["orderId"] and result["wsStatus"] == 200 and result["wsOrder"]["orderId"]
    assert result["syncOrders"] == 2 and "executionReports" in result["syncKeys"]
    kernel = sim.exchange.account(ACCT).orders.values()
    assert {o.client_order_id for o in kernel} == {"npm-rest-1", "npm-ws-1"}
