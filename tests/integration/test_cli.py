"""The one entry point: Faust's commands and the project's own under ``copytrader``."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "copytrader.app.cli"]


def run(*args: str, tmp_path: Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "COPYTRADER_DATA_DIR": str(tmp_path), "HOME": str(tmp_path), **extra_env}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, env=env, check=False)


def test_help_lists_faust_and_project_commands(tmp_path: Path) -> None:
    out = run("--help", tmp_path=tmp_path).stdout
    for command in ("worker", "agents", "tables", "send", "kafka", "demo", "bench", "sim", "table", "db", "audit"):
        assert f"  {command} " in out, command


def test_agents_command_lists_the_copy_pipeline(tmp_path: Path) -> None:
    out = run("agents", tmp_path=tmp_path).stdout
    for agent in ("tracker", "health"):
        assert agent in out
    assert "@executor" not in out  # by default the executor reads orders.requests outside Faust
    assert "@fanout" not in out  # and the fan-out trade.signals
    out = run(
        "agents", tmp_path=tmp_path, COPYTRADER_EXECUTOR_CONSUMER="faust", COPYTRADER_FANOUT_CONSUMER="faust"
    ).stdout
    assert "@executor" in out and "@fanout" in out


def test_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("sessions: [{id: s, platform: paper}]\naccounts: [{id: a}]\n")
    result = subprocess.run(
        [*CLI, "agents"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "COPYTRADER_CONFIG": str(bad), "COPYTRADER_DATA_DIR": str(tmp_path)},
    )
    assert result.returncode == 2
    assert "accounts[0].session" in result.stderr


@pytest.mark.parametrize("platform", ["tradovate", "projectx"])
def test_sim_prints_where_it_listens_and_serves_logins(platform: str, tmp_path: Path) -> None:
    process = subprocess.Popen(
        [*CLI, "sim", platform],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={"PATH": "/usr/bin:/bin", "COPYTRADER_DATA_DIR": str(tmp_path)},
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        assert info["platform"] == platform and info["base_url"].startswith("http://127.0.0.1:")
        if platform == "tradovate":
            url, body = (
                info["base_url"] + "/auth/accesstokenrequest",
                {
                    "name": info["name"],
                    "password": info["password"],
                    "appId": info["appId"],
                    "appVersion": info["appVersion"],
                    "cid": info["cid"],
                    "sec": info["sec"],
                    "deviceId": info["deviceId"],
                },
            )
            key = "accessToken"
        else:
            url, body = (
                info["base_url"] + "/api/Auth/loginKey",
                {"userName": info["userName"], "apiKey": info["apiKey"]},
            )
            key = "token"
        request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback simulator
            assert json.loads(response.read())[key]
    finally:
        process.terminate()
        process.wait(10)


def test_worker_without_kafka_is_one_line(tmp_path: Path) -> None:
    result = run("worker", "-l", "warn", tmp_path=tmp_path, COPYTRADER_KAFKA_BROKER="kafka://127.0.0.1:1")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "127.0.0.1:1" in result.stderr and "copytrader kafka start" in result.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--platform", "foo"), "'foo' is not one of"),
        (("--leader-platform", "mixed"), "'mixed' is not one of"),
        (("--followers", "0"), "at least 1 follower"),
        (("--followers", "two"), "whole numbers"),
    ],
)
def test_demo_refuses_bad_options_without_a_traceback(args: tuple[str, ...], says: str, tmp_path: Path) -> None:
    result = run("demo", *args, tmp_path=tmp_path)
    assert result.returncode == 2 and says in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.kafka
async def test_send_honours_the_topic_prefix(kafka_bootstrap: str, tmp_path: Path) -> None:
    import uuid

    from aiokafka import AIOKafkaConsumer

    from copytrader.core.topics import ensure_topics

    prefix = f"send-{uuid.uuid4().hex[:8]}."
    await ensure_topics(kafka_bootstrap, prefix)
    body = '{"signal_id": "cli-1", "leader_account": "leader-1", "platform": "cli", "symbol": "ESZ6", "side": "buy", "quantity": 2}'
    result = run(
        "send",
        "--key",
        "ESZ6",
        "trade.signals",
        body,
        tmp_path=tmp_path,
        COPYTRADER_KAFKA_BROKER=f"kafka://{kafka_bootstrap}",
        COPYTRADER_TOPIC_PREFIX=prefix,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["topic"] == f"{prefix}trade.signals"
    consumer = AIOKafkaConsumer(
        f"{prefix}trade.signals",
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=10_000)
        values = [json.loads(r.value) for records in batches.values() for r in records]
    finally:
        await consumer.stop()
    assert [v["signal_id"] for v in values] == ["cli-1"]
