#!/usr/bin/env bash
# Vendor the dashboard's two browser libraries into web/static/vendor (no CDN at run time):
# TradingView's lightweight-charts (standalone build) and the Socket.IO client. Idempotent;
# the npm cache lives outside the repo. Called by scripts/test.sh and scripts/demo.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST="$ROOT/web/static/vendor"
CACHE=${COPYTRADER_WEB_NPM:-$HOME/.cache/copytrader-web}
LWC=5.2.1
SIO=4.8.4
want=("$DEST/lightweight-charts.standalone.production.js" "$DEST/socket.io.min.js")
if [ -f "${want[0]}" ] && [ -f "${want[1]}" ] && grep -q "$LWC" "$DEST/VERSIONS" 2>/dev/null; then
    exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "vendor-web: npm is required (apt-get install -y npm)" >&2; exit 1; }
mkdir -p "$CACHE" "$DEST"
npm install --silent --no-audit --no-fund --prefix "$CACHE" "lightweight-charts@$LWC" "socket.io-client@$SIO" >&2
cp "$CACHE/node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.js" "$DEST/"
cp "$CACHE/node_modules/socket.io-client/dist/socket.io.min.js" "$DEST/"
printf 'lightweight-charts %s (Apache-2.0)\nsocket.io-client %s (MIT)\n' "$LWC" "$SIO" > "$DEST/VERSIONS"
echo "vendor-web: $DEST" >&2
