#!/usr/bin/env bash
# mypy over the whole package, as CI runs it (issue #13): exits non-zero on any error.
#   scripts/typecheck.sh            # uses .venv
#   VENV=/path/to/venv scripts/typecheck.sh
# Why the temporary directory: the repository root IS the ``copytrader`` package, so mypy needs
# a parent directory in which it is importable under that name. A symlink gives it one.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
case "$VENV" in /*) ;; *) VENV=$ROOT/$VENV ;; esac
for tool in python mypy; do
    [ -x "$VENV/bin/$tool" ] || { echo "typecheck: $VENV/bin/$tool not found (set VENV)" >&2; exit 2; }
done
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
ln -s "$ROOT" "$TMP/copytrader"
cd "$TMP"
"$VENV/bin/mypy" --config-file "$ROOT/pyproject.toml" --python-executable "$VENV/bin/python" \
    -p copytrader.common -p copytrader.brokers -p copytrader.core -p copytrader.storage \
    -p copytrader.tables -p copytrader.agents -p copytrader.web -p copytrader.app -p copytrader.demo
# The scripts (benchmarks, measurements) import each other as top-level modules, so they are
# checked as such: linked into a directory of their own, outside the package.
mkdir "$TMP/scripts"
ln -s "$ROOT"/scripts/*.py "$TMP/scripts/"
MYPYPATH="$TMP/scripts" "$VENV/bin/mypy" --config-file "$ROOT/pyproject.toml" \
    --python-executable "$VENV/bin/python" --explicit-package-bases scripts/*.py
