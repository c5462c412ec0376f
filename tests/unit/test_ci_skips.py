"""Under CI=true a skip for a missing tool fails the run; a capability skip does not."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

CASES = '''
import pytest
from ci_skips import CAPABILITY_SKIP_PREFIX

def test_needs_a_tool():
    pytest.skip("chromium not installed")

def test_platform_lacks_a_feature():
    pytest.skip(CAPABILITY_SKIP_PREFIX + "paper lacks brackets")
'''


def _run(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    shutil.copy(TESTS / "conftest.py", tmp_path / "conftest.py")
    shutil.copy(TESTS / "ci_skips.py", tmp_path / "ci_skips.py")
    (tmp_path / "test_cases.py").write_text(CASES)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )


def test_under_ci_a_missing_tool_fails_and_a_capability_skip_stays(tmp_path: Path) -> None:
    done = _run(tmp_path, "true")
    assert done.returncode == 1, done.stdout
    assert "FAILED test_cases.py::test_needs_a_tool" in done.stdout
    assert "chromium not installed" in done.stdout
    assert "1 failed, 1 skipped" in done.stdout


def test_outside_ci_both_skip(tmp_path: Path) -> None:
    done = _run(tmp_path, None)
    assert done.returncode == 0, done.stdout
    assert "2 skipped" in done.stdout
