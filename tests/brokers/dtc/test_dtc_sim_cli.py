"""``copytrader sim dtc``: one JSON line with the endpoint and the demo logins, and a server that
the adapter can log on to with exactly what the line says."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from copytrader.brokers.base import SessionConfig
from copytrader.brokers.dtc.adapter import DtcAdapter
from copytrader.brokers.model import ConnectionState

CLI = str(Path(sys.executable).parent / "copytrader")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, Any]]:
    process = subprocess.Popen(
        [CLI, "sim", "dtc", "--accounts", "4", "--accounts-per-login", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={"PATH": "/usr/bin:/bin", "COPYTRADER_DATA_DIR": str(tmp_path)},
    )
    try:
        assert process.stdout is not None
        yield json.loads(process.stdout.readline())
    finally:
        process.terminate()
        process.wait(10)


async def test_sim_dtc_prints_its_endpoint_and_logins(served: dict[str, Any]) -> None:
    assert served["platform"] == "dtc" and served["base_url"].startswith("dtc://127.0.0.1:")
    assert [len(login["accounts"]) for login in served["logins"]] == [2, 2]
    assert served["symbols"] and all(isinstance(s, str) for s in served["symbols"])
    second = served["logins"][1]
    adapter = DtcAdapter(
        SessionConfig(
            platform="dtc",
            session_id="cli",
            accounts={"A": second["accounts"][0]},
            endpoint=served["base_url"],
            username=second["username"],
            secret=second["password"],
        )
    )
    await adapter.connect()
    try:
        assert adapter.state is ConnectionState.CONNECTED
        snapshot = await adapter.snapshot("A")
        assert snapshot.balance > 0 and snapshot.open_orders == ()
    finally:
        await adapter.disconnect()
