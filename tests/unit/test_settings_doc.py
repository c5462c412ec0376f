"""docs/platform-settings.md is the platforms' settings schemas, rendered: a setting added,
renamed or bounded differently in a schema fails here until the reference is rewritten."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_settings_reference_is_what_the_schemas_check() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "settings_doc.py"), "--check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    text = (ROOT / "docs" / "platform-settings.md").read_text()
    for platform in ("tradovate", "projectx", "rithmic", "dtc", "dxlink", "ninjatrader", "fix", "paper"):
        assert f"\n## {platform}\n" in text
    assert "| `heartbeat_s` | number ≥ 0.1, ≤ 10 | 2.5 |" in text  # Tradovate's, bounds and default
