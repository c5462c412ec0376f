"""Simulators as a sandbox: ``copytrader sim <platform>`` and the demo's simulator followers.

Real prop accounts come one login per firm, and the platforms count sessions and request
budgets per user. So the sandbox gives every session of the config (one follower firm, or the
leader) its own login on the simulator (:class:`SimLogin`), and each adapter then has its own
sessions, sockets and request windows, exactly as in production. A simulator that does not yet
take ``logins`` is served the old way: one shared login, with ProjectX's budget raised so twenty
followers do not throttle each other through it (:data:`SHARED_LOGIN_OPTIONS`). Both simulators
take logins now, so that fallback only serves a simulator added later.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid
from collections.abc import Sequence
from typing import Any

import orjson

from ..brokers.registry import simulator_factory
from ..brokers.simkernel.exchange import SimExchange
from ..brokers.simkernel.logins import SimLogin, plan_logins

#: Only for a simulator that cannot give each firm its own login: every follower then shares
#: one login's window, which per-user limits would throttle, so the budget is raised on both sides.
SHARED_LOGIN_OPTIONS: dict[str, dict[str, Any]] = {
    "projectx": {"rate_limit": [100_000, 60]},
    "tradovate": {},
}
#: Kept for callers of the old name.
SANDBOX_OPTIONS = SHARED_LOGIN_OPTIONS
#: The login fields each platform's adapter reads from a session's options.
_APP_FIELDS = ("appId", "appVersion", "cid", "sec", "deviceId")
#: FIX: each login's CompIDs, version and FileStore namespace (session options).
_FIX_FIELDS = ("sender_comp_id", "target_comp_id", "fix_version", "store_namespace")


def _secret_env(platform: str, session_id: str) -> str:
    return f"COPYTRADER_SIM_{platform.upper()}_SECRET_{re.sub(r'[^A-Z0-9]', '_', session_id.upper())}"


def session_logins(platform: str, config_data: dict[str, Any] | None) -> dict[str, SimLogin]:
    """One login per session of ``platform`` in the config, holding that session's accounts."""
    sessions = [s["id"] for s in (config_data or {}).get("sessions", []) if s.get("platform") == platform]
    accounts = (config_data or {}).get("accounts", [])
    logins = {}
    for session_id in sessions:
        names = tuple(a["broker_account"] for a in accounts if a.get("session") == session_id)
        if names:
            logins[session_id] = SimLogin(f"{session_id}", str(uuid.uuid4()), names)
    return logins


def _takes_logins(simulator: Any, logins: Sequence[SimLogin]) -> bool:
    """Did the simulator accept the logins (rather than ignore an unknown option)?"""
    served = getattr(simulator, "logins", None)
    if isinstance(served, dict):  # ProjectX keeps them by user name
        served = list(served.values())
    if not served:
        return False
    return {x.username for x in served} == {x.username for x in logins}


async def start_sandbox(
    platform: str, latency: str, config_data: dict[str, Any] | None = None, **simulator_options: Any
) -> tuple[Any, dict[str, Any]]:
    """Start ``platform``'s simulator with one login per config session of that platform.

    Returns the running simulator and the session fields that point adapters at it: with
    per-session logins ``{"endpoint", "options", "sessions": {id: {"username", "secret_env",
    "options"}}}``, else the shared login's ``{"endpoint", "username", "secret_env", "options"}``.
    Secrets go into this process's environment, which the workers inherit, never into the file.
    """
    create = simulator_factory(platform)
    logins = session_logins(platform, config_data)
    simulator = create(exchange=SimExchange(seed=7), latency=latency, logins=list(logins.values()), **simulator_options)  # type: ignore[operator]  # factory from registry
    if _takes_logins(simulator, list(logins.values())):
        await simulator.start()
        return simulator, _per_session_fields(platform, simulator, logins)
    names = [n for login in logins.values() for n in login.accounts]
    extra = SHARED_LOGIN_OPTIONS.get(platform, {})
    simulator = create(exchange=SimExchange(seed=7), latency=latency, accounts=names, **extra)  # type: ignore[operator]  # factory from registry
    await simulator.start()
    credentials = simulator.demo_credentials()
    secret_env = f"COPYTRADER_SIM_{platform.upper()}_SECRET"
    os.environ[secret_env] = str(credentials.get("password") or credentials.get("apiKey") or "")
    options = {k: v for k, v in credentials.items() if k in _APP_FIELDS}
    options.update(extra)
    return simulator, {
        "endpoint": simulator.base_url,
        "username": credentials.get("name") or credentials.get("userName"),
        "secret_env": secret_env,
        "options": options,
    }


def _per_session_fields(platform: str, simulator: Any, logins: dict[str, SimLogin]) -> dict[str, Any]:
    sessions: dict[str, Any] = {}
    common: dict[str, Any] = {}
    for session_id, login in logins.items():
        secret_env = _secret_env(platform, session_id)
        own = simulator.credentials_for(login.username) if hasattr(simulator, "credentials_for") else {}
        # The secret the simulator serves: DTC's logon holds 31 bytes, so its simulator shortens ours.
        os.environ[secret_env] = str(own.get("password") or login.secret)
        common = {k: v for k, v in own.items() if k in _APP_FIELDS and k != "deviceId"}
        options = {"deviceId": own["deviceId"]} if "deviceId" in own else {}
        options.update({k: own[k] for k in _FIX_FIELDS if k in own})
        sessions[session_id] = {"username": login.username, "secret_env": secret_env, "options": options}
    return {"endpoint": simulator.base_url, "options": common, "sessions": sessions}


def sim_options(
    platform: str, accounts: int | None, accounts_per_login: int | None, rate_limit: tuple[int, float] | None
) -> dict[str, Any]:
    """``copytrader sim`` options → simulator options (logins planned, the request budget per user)."""
    options: dict[str, Any] = {}
    if accounts:
        prefix = {"tradovate": "DEMO", "projectx": "PX"}.get(platform, "SIM")
        names = [f"{prefix}{1000 + n}" for n in range(1, accounts + 1)]
        options["logins"] = plan_logins(names, accounts_per_login, prefix="trader")
    if rate_limit:
        requests, seconds = rate_limit
        options["rate_limits" if platform == "tradovate" else "rate_limit"] = (
            [[requests, seconds]] if platform == "tradovate" else [requests, seconds]
        )
    return options


async def serve_simulator(platform: str, host: str, port: int, latency: str, **options: Any) -> None:
    create = simulator_factory(platform)
    simulator = create(exchange=SimExchange(seed=7), host=host, port=port, latency=latency, **options)  # type: ignore[operator]  # factory from registry
    await simulator.start()
    info = {"platform": platform, "base_url": simulator.base_url, **simulator.demo_credentials()}
    planned = options.get("logins")
    if planned and not _takes_logins(simulator, planned):
        print(
            f"note: the {platform} simulator serves one login; --accounts/--accounts-per-login ignored", file=sys.stderr
        )
    for key in ("ws_url", "user_hub_url"):
        if hasattr(simulator, key):
            info[key] = getattr(simulator, key)
    print(f"{platform} simulator listening on {simulator.base_url}", file=sys.stderr)
    print(orjson.dumps(info).decode(), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await simulator.stop()
