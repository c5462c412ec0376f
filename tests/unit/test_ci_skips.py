"""Under CI=true a missing tool fails the run; only a conformance capability skip stays a skip."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ci_skips import TOOLS, needs, require

TESTS = Path(__file__).resolve().parents[1]

TOOL_CASES = """
import pytest
from ci_skips import needs, require, require_module

def test_needs_a_tool():
    require("chromium", "no chromium at /nowhere", available=False)

def test_has_the_tool():
    require("redis", "set", available="redis://here")

@needs("helm", "helm not found", available=False)
def test_marked_as_needing_a_tool():
    pass

def test_needs_a_client_library():
    require_module("no_such_client_library", "third-party client", "the platform's client")

def test_bare_skip():
    pytest.skip("went around ci_skips")

def test_capability_claimed_outside_conformance():
    pytest.skip("capability: not a conformance test")
"""

CAPABILITY_CASE = """
from ci_skips import skip_capability

def test_platform_lacks_a_feature():
    skip_capability("paper lacks brackets")
"""


def _run(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    tests = tmp_path / "tests"
    (tests / "conformance").mkdir(parents=True)
    shutil.copy(TESTS / "conftest.py", tests / "conftest.py")
    shutil.copy(TESTS / "ci_skips.py", tests / "ci_skips.py")
    (tests / "test_tools.py").write_text(TOOL_CASES)
    (tests / "conformance" / "test_capability.py").write_text(CAPABILITY_CASE)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", str(tests)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_under_ci_a_missing_tool_fails_and_only_a_conformance_capability_skip_stays(tmp_path: Path) -> None:
    done = _run(tmp_path, "true")
    assert done.returncode == 1, done.stdout
    for name in (
        "test_needs_a_tool",
        "test_marked_as_needing_a_tool",
        "test_needs_a_client_library",
        "test_bare_skip",
        "test_capability_claimed_outside_conformance",
    ):
        # a mark fails the set-up (an ERROR), the others the call (FAILED): either fails the run
        assert any(f"{kind} tests/test_tools.py::{name}" in done.stdout for kind in ("FAILED", "ERROR")), (
            name,
            done.stdout,
        )
    assert "needs chromium: no chromium at /nowhere" in done.stdout
    skipped = [line for line in done.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) == 1 and "capability: paper lacks brackets" in skipped[0], skipped
    assert "4 failed, 1 passed, 1 skipped, 1 error" in done.stdout, done.stdout


def test_outside_ci_they_skip(tmp_path: Path) -> None:
    done = _run(tmp_path, None)
    assert done.returncode == 0, done.stdout
    assert "1 passed, 6 skipped" in done.stdout, done.stdout
    assert "needs helm: helm not found" in done.stdout


def test_a_tool_ci_does_not_know_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown tool"):
        require("docker", "not installed", available=False)
    with pytest.raises(ValueError, match="unknown tool"):
        needs("docker", "not installed", available=False)
    assert {"chromium", "postgresql", "redis", "node", "helm", "kafka", "third-party client"} <= set(TOOLS)


def test_no_test_skips_around_the_helpers() -> None:
    """Every skip in tests/ goes through ci_skips (the helpers live there, this file quotes them)."""
    here = Path(__file__).resolve()
    offenders = [
        f"{path.relative_to(TESTS)}:{n}"
        for path in TESTS.rglob("*.py")
        if path not in (TESTS / "ci_skips.py", here)
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if any(word in line for word in ("pytest.skip(", "mark.skipif", "importorskip(", "mark.skip("))
    ]
    assert offenders == []
