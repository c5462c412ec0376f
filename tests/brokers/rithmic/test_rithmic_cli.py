"""``copytrader sim rithmic``: one JSON line with the endpoint and the demo logins, which work."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from copytrader.brokers.base import SessionConfig
from copytrader.brokers.model import ConnectionState
from copytrader.brokers.rithmic.adapter import RithmicAdapter

COPYTRADER = Path(sys.executable).parent / "copytrader"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, Any]]:
    process = subprocess.Popen(
        [str(COPYTRADER), "sim", "rithmic", "--accounts", "3", "--accounts-per-login", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={"PATH": "/usr/bin:/bin", "COPYTRADER_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)},
    )
    try:
        assert process.stdout is not None
        yield json.loads(process.stdout.readline())
    finally:
        process.terminate()
        process.wait(10)


async def test_sim_prints_one_json_line_whose_logins_work(served: dict[str, Any]) -> None:
    info = served
    assert info["platform"] == "rithmic" and info["base_url"].startswith("ws://127.0.0.1:")
    assert [len(login["accounts"]) for login in info["logins"]] == [2, 1]
    assert any(s.startswith("ES") and len(s) == 4 for s in info["symbols"])  # e.g. ESZ6
    for login in info["logins"]:
        adapter = RithmicAdapter(
            SessionConfig(
                platform="rithmic",
                session_id=login["username"],
                accounts={f"a{n}": name for n, name in enumerate(login["accounts"])},
                endpoint=info["base_url"],
                username=login["username"],
                secret=login["password"],
                # no system_name: the adapter asks the gateway (16 → 17), as RG has clients do
                options={"app_name": "ct:cli-test", "timeout_s": 5.0},
            )
        )
        await asyncio.wait_for(adapter.connect(), 10)
        try:
            assert adapter.state is ConnectionState.CONNECTED
            snapshot = await adapter.snapshot("a0")
            assert snapshot.balance > 0 and snapshot.open_orders == ()
        finally:
            await adapter.disconnect()
