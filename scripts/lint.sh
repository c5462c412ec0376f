#!/usr/bin/env bash
# Static checks, all of which must be clean: ruff lint, ruff format check, and mypy (strict, every
# layer; see pyproject.toml). scripts/test.sh runs this before the suite.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
cd "$ROOT"
echo "lint: ruff check" >&2
"$VENV/bin/ruff" check .
echo "lint: ruff format --check" >&2
"$VENV/bin/ruff" format --check .
echo "lint: mypy" >&2
VENV=$VENV scripts/typecheck.sh
