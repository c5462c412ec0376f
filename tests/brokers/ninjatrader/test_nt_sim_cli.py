"""``copytrader sim ninjatrader``: one JSON line with the ATI endpoint, the instruction folders
and the accounts, and a simulator the adapter reaches on both routes with what the line says."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from copytrader.brokers.base import SessionConfig
from copytrader.brokers.model import OrderStatus, PlaceOrder, Side
from copytrader.brokers.ninjatrader.adapter import NinjaTraderAdapter
from copytrader.demo.cli import sim

CLI = str(Path(sys.executable).parent / "copytrader")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, Any]]:
    folder = tmp_path / "NinjaTrader 8"
    process = subprocess.Popen(
        [
            CLI,
            "sim",
            "ninjatrader",
            "--accounts",
            "3",
            "--incoming",
            str(folder / "incoming"),
            "--outgoing",
            str(folder / "outgoing"),
        ],  # fmt: skip
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


async def test_sim_ninjatrader_prints_its_endpoints_and_both_routes_work(
    served: dict[str, Any], tmp_path: Path
) -> None:
    assert served["platform"] == "ninjatrader" and served["base_url"].startswith("tcp://127.0.0.1:")
    assert served["ati_url"] == served["base_url"].replace("tcp://", "ati://")
    assert served["incoming"] == str(tmp_path / "NinjaTrader 8" / "incoming")
    assert served["oif_url"] == f"oif://{tmp_path / 'NinjaTrader 8'}"
    accounts = [a for login in served["logins"] for a in login["accounts"]]
    assert len(accounts) == 3 and served["instruments"][0].startswith("ES ")
    routes = ((served["base_url"], "CTCLI1"), (served["ati_url"], "CTCLI2"), (served["oif_url"], "CTCLI3"))
    for endpoint, client_id in routes:
        adapter = NinjaTraderAdapter(
            SessionConfig("ninjatrader", "cli", {"A": accounts[2]}, endpoint, options={"request_timeout_s": 5})
        )
        await adapter.connect()
        try:
            ack = await adapter.place(PlaceOrder("A", client_id, served["symbols"][0], Side.BUY, 1))
            assert ack.status in (OrderStatus.WORKING, OrderStatus.FILLED)
        finally:
            await adapter.disconnect()


def test_folders_are_refused_for_other_platforms() -> None:
    result = CliRunner().invoke(sim, ["dtc", "--incoming", "/tmp/x"])
    assert result.exit_code != 0 and "instruction folders" in result.output
