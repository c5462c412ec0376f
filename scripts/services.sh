#!/usr/bin/env bash
# Start what the tests need on this machine, idempotently: Kafka (KRaft, jars from Maven),
# PostgreSQL and Redis (Debian packages). Prints `export NAME=value` lines for the test run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
log() { echo "services: $*" >&2; }

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
if [ ${#need_apt[@]} -gt 0 ]; then
    log "installing ${need_apt[*]}"
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${need_apt[@]}" >&2
fi

# What this run starts (and only that) is named in COPYTRADER_SERVICES_STARTED, so
# scripts/stop-services.sh stops exactly it and leaves a service someone else started alone.
started=()

# Kafka: the project's own command (resolves the broker jars through Maven once, then caches).
export COPYTRADER_DATA_DIR=${COPYTRADER_DATA_DIR:-$ROOT/var}
"$VENV/bin/copytrader" kafka status >/dev/null 2>&1 || started+=(kafka)
"$VENV/bin/copytrader" kafka start >&2
echo "export COPYTRADER_KAFKA_BROKER=kafka://127.0.0.1:9092"

# PostgreSQL cluster (Debian's postgresql package).
{ command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; } || started+=(postgres)
PG_URL=$("$ROOT/scripts/start-postgres.sh" | tail -1)
echo "export COPYTRADER_TEST_POSTGRES_URL=$PG_URL"

# Redis.
if ! redis-cli -p 6379 ping >/dev/null 2>&1; then
    log "starting redis-server"
    started+=(redis)
    redis-server --port 6379 --bind 127.0.0.1 --daemonize yes --save "" --appendonly no >&2
    for _ in $(seq 1 50); do redis-cli -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
echo "export COPYTRADER_TEST_REDIS_URL=redis://127.0.0.1:6379/0"
echo "export COPYTRADER_SERVICES_STARTED='${started[*]}'"
