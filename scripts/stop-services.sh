#!/usr/bin/env bash
# Stop the services scripts/services.sh started in this run (COPYTRADER_SERVICES_STARTED), and
# nothing else: a broker or database that was already running before the tests stays up.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
for service in ${COPYTRADER_SERVICES_STARTED:-}; do
    case "$service" in
        kafka) "$VENV/bin/copytrader" kafka stop >&2 ;;
        postgres) pg_ctlcluster "${PG_VERSION:-15}" main stop >&2 ;;
        redis) redis-cli -p 6379 shutdown nosave >/dev/null 2>&1 ;;
    esac
    echo "stop-services: stopped $service" >&2
done
