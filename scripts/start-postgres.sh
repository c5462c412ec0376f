#!/usr/bin/env bash
# Start a local PostgreSQL 15 for the storage tests, idempotently, and print its URL.
#
# Why a script: the CI image has no Docker, so PostgreSQL comes from Debian's package and runs
# as the "main" cluster. Every step checks before acting, so running it twice is harmless.
# Needs root (apt-get, su postgres). Prints the SQLAlchemy URL as the last line of stdout:
#   export COPYTRADER_TEST_POSTGRES_URL=$(scripts/start-postgres.sh | tail -1)
set -euo pipefail

PG_VERSION="${PG_VERSION:-15}"
PG_USER="${PG_USER:-ct}"
PG_PASSWORD="${PG_PASSWORD:-ct}"
PG_DB="${PG_DB:-copytrader_test}"
PG_HOST=127.0.0.1
PG_PORT="${PG_PORT:-5432}"

log() { echo "start-postgres: $*" >&2; }

if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ ! -d "/usr/lib/postgresql/${PG_VERSION}" ]; then
    log "installing postgresql-${PG_VERSION} from Debian"
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
fi

if [ ! -d "/etc/postgresql/${PG_VERSION}/main" ]; then
    log "creating cluster ${PG_VERSION}/main"
    pg_createcluster "${PG_VERSION}" main >&2
fi

if ! pg_lsclusters -h | awk -v v="${PG_VERSION}" '$1==v && $2=="main" {print $4}' | grep -q online; then
    log "starting cluster ${PG_VERSION}/main"
    pg_ctlcluster "${PG_VERSION}" main start >&2
fi

for _ in $(seq 1 30); do
    if su postgres -c "pg_isready -q -h ${PG_HOST} -p ${PG_PORT}"; then break; fi
    sleep 1
done
su postgres -c "pg_isready -h ${PG_HOST} -p ${PG_PORT}" >&2

psql_admin() { su postgres -c "psql -v ON_ERROR_STOP=1 -p ${PG_PORT} -tAc \"$1\""; }

if [ "$(psql_admin "SELECT 1 FROM pg_roles WHERE rolname='${PG_USER}'")" != "1" ]; then
    log "creating role ${PG_USER}"
    psql_admin "CREATE USER ${PG_USER} WITH SUPERUSER PASSWORD '${PG_PASSWORD}'" >&2
fi
if [ "$(psql_admin "SELECT 1 FROM pg_database WHERE datname='${PG_DB}'")" != "1" ]; then
    log "creating database ${PG_DB}"
    su postgres -c "createdb -p ${PG_PORT} -O ${PG_USER} ${PG_DB}" >&2
fi

echo "postgresql+psycopg2://${PG_USER}:${PG_PASSWORD}@${PG_HOST}:${PG_PORT}/${PG_DB}"
