#!/usr/bin/env bash
# The test command: set up the Python environment and the services, then run the whole suite.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/unit -q).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export VENV=${VENV:-$ROOT/.venv}
EXTRAS=test,postgres,fidelity scripts/bootstrap.sh >/dev/null

# Third-party clients the fidelity tests point at the simulators (npm registry).
export COPYTRADER_NPM_CACHE=${COPYTRADER_NPM_CACHE:-$HOME/.cache/copytrader-npm}
export PROJECTX_NODE_MODULES=${PROJECTX_NODE_MODULES:-$HOME/.cache/copytrader-node/node_modules}
if command -v npm >/dev/null 2>&1 && [ ! -d "$PROJECTX_NODE_MODULES/@microsoft/signalr" ]; then
    mkdir -p "$(dirname "$PROJECTX_NODE_MODULES")"
    npm install --silent --no-audit --no-fund --prefix "$(dirname "$PROJECTX_NODE_MODULES")" @microsoft/signalr@8 >&2
fi
export DXLINK_NODE_MODULES=${DXLINK_NODE_MODULES:-$HOME/.cache/copytrader-dxlink-node/node_modules}
if command -v npm >/dev/null 2>&1 && [ ! -d "$DXLINK_NODE_MODULES/@dxfeed/dxlink-api" ]; then
    mkdir -p "$(dirname "$DXLINK_NODE_MODULES")"
    npm install --silent --no-audit --no-fund --prefix "$(dirname "$DXLINK_NODE_MODULES")" @dxfeed/dxlink-api@0.3.0 >&2
fi

# Browser tests: Debian's Chromium (Playwright drives it; its own browser download is never used)
# and the dashboard's vendored browser libraries from the npm registry.
if ! command -v chromium >/dev/null 2>&1; then
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >&2
fi
scripts/vendor-web.sh

# Deployment checks need hadolint and helm (built from its Go module once, then cached). A
# failed validation fails the run: under CI nothing may pass by being only echoed.
if ! PYTHON="$VENV/bin/python" scripts/validate-deploy.sh >/tmp/copytrader-validate-deploy.log 2>&1; then
    cat /tmp/copytrader-validate-deploy.log >&2
    echo "test: scripts/validate-deploy.sh failed (output above)" >&2
    exit 1
fi

# Static checks (ruff, mypy) on a full run; a run of chosen tests skips them.
if [ $# -eq 0 ]; then
    VENV=$VENV scripts/lint.sh
fi

eval "$(scripts/services.sh)"
trap 'scripts/stop-services.sh' EXIT   # leave the machine as we found it
status=0
"$VENV/bin/python" -m pytest "${@:-tests}" || status=$?
exit "$status"
