"""``copytrader sim fix``: one JSON line with the endpoint and the demo settings (CompIDs, FIX
version, logins), and an acceptor the adapter logs on to with exactly what the line says."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from copytrader.brokers.base import SessionConfig
from copytrader.brokers.fix.adapter import FixAdapter
from copytrader.brokers.model import ConnectionState, OrderStatus, OrderType, PlaceOrder, Side

CLI = str(Path(sys.executable).parent / "copytrader")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, Any]]:
    process = subprocess.Popen(
        [CLI, "sim", "fix", "--fix-version", "FIX.4.2", "--sender-comp-id", "DESK1", "--target-comp-id", "BROKER"],
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


async def test_sim_fix_prints_its_endpoint_and_settings(served: dict[str, Any], tmp_path: Path) -> None:
    assert served["platform"] == "fix" and served["base_url"].startswith("fix://127.0.0.1:")
    assert (served["sender_comp_id"], served["target_comp_id"], served["fix_versions"]) == (
        "DESK1",
        "BROKER",
        ["FIX.4.2"],
    )
    adapter = FixAdapter(
        SessionConfig(
            platform="fix",
            session_id="cli",
            accounts={"A": served["accounts"][0]},
            endpoint=served["base_url"],
            username=served["username"],
            secret=served["password"],
            options={
                "fix_version": served["fix_version"],
                "sender_comp_id": served["sender_comp_id"],
                "target_comp_id": served["target_comp_id"],
                "store_dir": str(tmp_path / "store"),
            },
        )
    )
    await adapter.connect()
    try:
        assert adapter.state is ConnectionState.CONNECTED
        # far below any simulated ES price: the order rests
        order = PlaceOrder("A", "CLI1", "ESZ6", Side.BUY, 1, OrderType.LIMIT, Decimal("1000.00"))
        ack = await adapter.place(order)
        assert ack.status is OrderStatus.WORKING
    finally:
        await adapter.disconnect()
