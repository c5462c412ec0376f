#!/usr/bin/env bash
# The main job: set up the Python environment, then run the demo (local Kafka starts itself).
# Extra arguments go to `copytrader demo` (e.g. scripts/demo.sh --followers 200).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV=$(scripts/bootstrap.sh)
scripts/vendor-web.sh || echo "demo: npm missing, the dashboard's chart and live push are unavailable" >&2
exec "$VENV/bin/copytrader" demo "$@"
