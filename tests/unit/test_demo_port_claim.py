"""Two runs started at the same moment must not both pick the dashboard's preferred port."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from copytrader.demo.runner import _CLAIMS, free_port, port_or_free


def claim_elsewhere(port: int, claims: Path) -> int:
    """What another run's ``port_or_free`` answers, from another process."""
    code = f"from pathlib import Path; from copytrader.demo.runner import port_or_free; print(port_or_free({port}, Path({str(claims)!r})))"
    return int(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)


def test_a_claimed_port_is_not_given_to_another_run_before_its_worker_binds(tmp_path: Path) -> None:
    preferred = free_port()
    try:
        assert port_or_free(preferred, tmp_path) == preferred  # nothing listens yet: ours
        other = claim_elsewhere(preferred, tmp_path)  # the port is still free, but claimed
        assert other != preferred
        assert port_or_free(preferred, tmp_path) != preferred  # a second web worker of this run too
    finally:
        _CLAIMS.pop(preferred).close()
    assert claim_elsewhere(preferred, tmp_path) == preferred  # released with the run
