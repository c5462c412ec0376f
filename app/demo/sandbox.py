"""Simulators as a sandbox: ``copytrader sim <platform>`` and the demo's simulator followers."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import orjson

from ...brokers.registry import simulator_factory
from ...brokers.simkernel.exchange import SimExchange


# A sandbox login serves all demo followers; real per-login limits would throttle a 20-account
# demo, so the sandbox raises ProjectX's request budget on both sides (and says so here).
SANDBOX_OPTIONS: dict[str, dict[str, Any]] = {
    "projectx": {"rate_limit": [100_000, 60]},
    "tradovate": {},
}


async def start_sandbox(platform: str, latency: str, config_data: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
    """Start ``platform``'s simulator with the config's follower accounts opened on it.

    Returns the running simulator and the session fields (endpoint, username, secret_env,
    options) that point an adapter at it; the secret goes into this process's environment,
    which the workers inherit, and never into the config file.
    """
    create = simulator_factory(platform)
    sessions = (f"followers-{platform}", f"leader-{platform}")
    names = [a["broker_account"] for a in (config_data or {}).get("accounts", []) if a.get("session") in sessions]
    extra = SANDBOX_OPTIONS.get(platform, {})
    simulator = create(exchange=SimExchange(seed=7), latency=latency, accounts=names, **extra)  # type: ignore[operator]  # factory from registry
    await simulator.start()
    credentials = simulator.demo_credentials()
    secret_env = f"COPYTRADER_SIM_{platform.upper()}_SECRET"
    os.environ[secret_env] = str(credentials.get("password") or credentials.get("apiKey") or "")
    options = {k: v for k, v in credentials.items() if k in ("appId", "appVersion", "cid", "sec")}
    options.update(extra)
    session = {
        "endpoint": simulator.base_url,
        "username": credentials.get("name") or credentials.get("userName"),
        "secret_env": secret_env,
        "options": options,
    }
    return simulator, session


async def serve_simulator(platform: str, host: str, port: int, latency: str) -> None:
    create = simulator_factory(platform)
    simulator = create(exchange=SimExchange(seed=7), host=host, port=port, latency=latency)  # type: ignore[operator]  # factory from registry
    await simulator.start()
    info = {"platform": platform, "base_url": simulator.base_url, **simulator.demo_credentials()}
    for key in ("ws_url", "user_hub_url"):
        if hasattr(simulator, key):
            info[key] = getattr(simulator, key)
    print(f"{platform} simulator listening on {simulator.base_url}", file=sys.stderr)
    print(orjson.dumps(info).decode(), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await simulator.stop()
