#!/usr/bin/env bash
# Create .venv and install CopyTrader into it (idempotent; re-run after pulling changes).
#   EXTRAS="test,postgres,fidelity" scripts/bootstrap.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
EXTRAS=${EXTRAS:-}
PYTHON=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
    echo "bootstrap: creating $VENV" >&2
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip >&2
fi
spec="$ROOT"
[ -n "$EXTRAS" ] && spec="$ROOT[$EXTRAS]"
stamp="$VENV/.installed-$(cat "$ROOT/setup.cfg" "$ROOT/setup.py" | sha1sum | cut -c1-12)-${EXTRAS//,/_}"
if [ ! -f "$stamp" ]; then
    echo "bootstrap: installing copytrader${EXTRAS:+[$EXTRAS]}" >&2
    "$VENV/bin/pip" install -q -e "$spec" >&2
    touch "$stamp"
fi
echo "$VENV"
