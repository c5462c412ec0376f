"""The layout's import rules, checked on every module (issue #13: imports run one way).

Layers, lowest first: ``common`` ← ``brokers`` ← ``core`` ← ``storage``/``tables`` ←
``agents``/``web`` ← ``app`` (the wiring) ← ``demo`` (the harness). A module may import its
own layer and lower ones, never a higher one — including imports inside functions and under
``TYPE_CHECKING`` (a type-only arrow is still an arrow). Inside ``agents``, the stages
(``ingest``, ``fanout``, ``execution``, ``tracking``) import ``agents.shared`` but never each
other. No module imports a private name (``_x``) from another package.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS: dict[str, int] = {
    "common": 0,
    "brokers": 1,
    "core": 2,
    "storage": 3,
    "tables": 3,
    "agents": 4,
    "web": 4,
    "app": 5,
    "demo": 6,
}
STAGES = ("ingest", "fanout", "execution", "tracking", "notify")
# web sits beside the stages: it may use their shared plumbing, not a stage itself.
WEB_MAY_USE = ("agents.shared",)


def modules() -> Iterator[tuple[str, Path]]:
    for top in LAYERS:
        for path in sorted((ROOT / top).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            yield ".".join(parts), path


def imports(module: str, path: Path) -> Iterator[tuple[str, list[str], int]]:
    """(imported module, names, line) for every import, relative ones resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            elif node.module and node.module.startswith("copytrader."):
                target = node.module.removeprefix("copytrader.")
            else:
                continue
            yield target, [alias.name for alias in node.names], node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("copytrader."):
                    yield alias.name.removeprefix("copytrader."), [], node.lineno


def violations() -> Iterator[str]:
    for module, path in modules():
        top = module.split(".")[0]
        for target, names, line in imports(module, path):
            where = f"{path.relative_to(ROOT)}:{line}"
            target_top = target.split(".")[0]
            if target_top not in LAYERS:
                continue
            if LAYERS[target_top] > LAYERS[top]:
                yield f"{where}: {top} (layer {LAYERS[top]}) imports {target} (layer {LAYERS[target_top]})"
            if top == "web" and target_top == "agents" and not target.startswith(WEB_MAY_USE):
                yield f"{where}: web imports the stage module {target}"
            if top == "agents" and target_top == "agents":
                own = module.split(".")[1] if module.count(".") else ""
                other = target.split(".")[1] if target.count(".") else ""
                if own in STAGES and other in STAGES and own != other:
                    yield f"{where}: stage {own} imports stage {other} ({target})"
                if own == "shared" and other in STAGES:
                    yield f"{where}: agents.shared imports the stage {target}"
            if target_top != top:
                for name in names:
                    if name.startswith("_") and not name.startswith("__"):
                        yield f"{where}: imports the private name {name} from {target}"


def test_imports_run_one_way() -> None:
    found = list(violations())
    assert not found, "\n".join(found)


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_every_layer_has_modules(layer: str) -> None:
    assert any(module.split(".")[0] == layer for module, _ in modules())


AIOKAFKA_PRIVATE = re.compile(
    r"\._(client|fetcher|coordinator|subscription|fetch_max_wait_ms|in_flight|sender|transport)\b"
    r"|getattr\([^)]*[\"']_(client|fetcher|coordinator|subscription|in_flight)[\"']"
)
INTERNALS = ROOT / "agents" / "shared" / "aiokafka_internals.py"


def test_only_one_module_reads_aiokafka_private_attributes() -> None:
    """aiokafka's private attributes are read in ``agents/shared/aiokafka_internals.py`` only
    (tested against the installed aiokafka there); everywhere else uses its public API."""
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for _, path in modules()
        if path != INTERNALS and "brokers" not in path.parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if AIOKAFKA_PRIVATE.search(line) and not line.lstrip().startswith("#")
    ]
    assert not found, "\n".join(found)
