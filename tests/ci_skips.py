"""The one place that says which skips exist and which of them CI accepts.

Two kinds of skip, and only two:

* **A missing tool** (Chromium, PostgreSQL, Redis, Node, helm, Kafka, a third-party client):
  every test that needs one calls :func:`require` (or :func:`require_module`, or carries the
  :func:`needs` mark). Locally the test skips with the reason; under ``CI=true`` it fails,
  because CI installs every tool in :data:`TOOLS` and a run must not go green without them.
* **A capability the platform lacks**, in the conformance suite only: what a scenario needs is
  declared in its own file (``requires:`` in ``tests/conformance/cases/CT-*.yaml``, and
  ``skip_if_unsupported`` on a step), what a platform has in its harness; nothing else lists
  them. Such a skip goes through :func:`skip_capability`, and its reason starts with
  :data:`CAPABILITY_SKIP_PREFIX`; CI accepts it.

``tests/conftest.py`` fails, under ``CI=true``, any other skip that slipped past these helpers.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import NoReturn

import pytest

CAPABILITY_SKIP_PREFIX = "capability: "
CAPABILITY_SUITE = "tests/conformance/"  # the only tests whose capability skips CI accepts

#: Every external tool a test may need, with how CI provides it (scripts/test.sh).
TOOLS: dict[str, str] = {
    "chromium": "Debian's chromium (apt-get install -y chromium; COPYTRADER_CHROMIUM)",
    "browser libraries": "the dashboard's vendored libraries (scripts/vendor-web.sh)",
    "kafka": "the broker at COPYTRADER_KAFKA_BROKER (scripts/services.sh)",
    "postgresql": "COPYTRADER_TEST_POSTGRES_URL (scripts/services.sh)",
    "redis": "COPYTRADER_TEST_REDIS_URL (scripts/services.sh)",
    "node": "node and npm on PATH, @microsoft/signalr under PROJECTX_NODE_MODULES (scripts/test.sh)",
    "dxlink js client": "node with --experimental-websocket, @dxfeed/dxlink-api@0.3.0 under DXLINK_NODE_MODULES (scripts/test.sh)",
    "helm": "helm and hadolint (scripts/validate-deploy.sh)",
    "third-party client": "a platform's published client library (pip extra `fidelity`, npm)",
}
MARK = "requires_tool"  # the mark :func:`needs` makes; tests/conftest.py checks it at set-up


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require(tool: str, reason: str, *, available: object) -> None:
    """Go on when ``available`` is truthy; else skip (locally) or fail (under ``CI=true``).

    ``tool`` must be one of :data:`TOOLS`, so the list of what CI has to provide stays whole.
    """
    if tool not in TOOLS:
        raise ValueError(f"unknown tool {tool!r}: add it to ci_skips.TOOLS with how CI provides it")
    if available:
        return
    message = f"needs {tool}: {reason}"
    if in_ci():
        pytest.fail(f"{message} (under CI=true a missing tool fails; CI provides {TOOLS[tool]})", pytrace=False)
    _skip(message)


def require_module(module: str, tool: str, reason: str) -> ModuleType:
    """``pytest.importorskip`` through :func:`require`: the module, or a skip/failure."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        require(tool, f"{reason} ({module}: {exc})", available=False)
        raise  # unreachable: require() skipped or failed


def needs(tool: str, reason: str, *, available: object) -> pytest.MarkDecorator:
    """The mark form of :func:`require` (for a module's ``pytestmark`` or a decorator): checked
    when each marked test sets up, so under ``CI=true`` it fails instead of skipping."""
    if tool not in TOOLS:
        raise ValueError(f"unknown tool {tool!r}: add it to ci_skips.TOOLS with how CI provides it")
    mark: pytest.MarkDecorator = getattr(pytest.mark, MARK)
    return mark(tool=tool, reason=reason, available=bool(available))


def skip_capability(reason: str) -> NoReturn:
    """Skip a conformance scenario the platform cannot run (accepted under ``CI=true``)."""
    _skip(CAPABILITY_SKIP_PREFIX + reason)


def _skip(message: str) -> NoReturn:
    """``pytest.skip``, reported at the test that skipped rather than at this helper's line (as
    pytest does for its own skip marks), so ``-rs`` still says which test did not run."""
    raise pytest.skip.Exception(message, allow_module_level=True, _use_item_location=True)
