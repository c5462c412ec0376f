"""``copytrader demo --keep-running`` stopped with SIGTERM (not a terminal's Ctrl-C, which
signals the whole process group) stops its workers too: nothing is left running as an orphan."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from waiting import wait_until_sync

pytestmark = pytest.mark.kafka


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigterm_stops_the_demo_and_its_workers(kafka_bootstrap: str, tmp_path: Path) -> None:
    env = {**os.environ, "COPYTRADER_KAFKA_BROKER": f"kafka://{kafka_bootstrap}", "COPYTRADER_DATA_DIR": str(tmp_path)}
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "copytrader.app.cli",
            "demo",
            "--followers",
            "2",
            "--trades",
            "4",
            "--keep-running",
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert demo.stdout is not None
        deadline = time.monotonic() + 240
        for line in demo.stdout:  # the summary line comes once the workers copied everything
            if line.startswith("{") and '"orders_expected"' in line:
                break
            assert time.monotonic() < deadline, "demo printed no summary"
        workers = _children(demo.pid)
        assert len(workers) >= 3, workers
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=60) is not None
        wait_until_sync(
            lambda: not any(_alive(w) for w in workers),
            timeout_s=30,
            what="every worker gone",
            observe=lambda: [w for w in workers if _alive(w)],
        )
    finally:
        if demo.poll() is None:
            demo.kill()
