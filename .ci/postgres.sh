#!/usr/bin/env bash
# Install and start a local PostgreSQL server for the store's @pytest.mark.postgres tests, and
# print the URL to export. Usage from CI:   eval "$(.ci/postgres.sh)"
# Everything human-readable goes to stderr so stdout is only the `export` line.
# Idempotent: re-running reuses the installed package, the running cluster, role and database.
set -euo pipefail

PG_USER="${STARTUI_PG_USER:-startui}"
PG_PASS="${STARTUI_PG_PASSWORD:-startui}"
PG_DB="${STARTUI_PG_DB:-startui_test}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    echo "postgres.sh: installing Debian postgresql" >&2
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >&2
fi

# The Debian package creates a cluster (e.g. 15/main); make one if a minimal image did not.
if [ -z "$(pg_lsclusters -h 2>/dev/null)" ]; then
    VER="$(ls /usr/lib/postgresql | sort -V | tail -1)"
    $SUDO pg_createcluster "$VER" main >&2
fi
read -r VER NAME PORT STATUS _ < <(pg_lsclusters -h | head -1)
if [ "$STATUS" != "online" ]; then
    echo "postgres.sh: starting cluster $VER/$NAME on port $PORT" >&2
    $SUDO pg_ctlcluster "$VER" "$NAME" start >&2
fi
for _ in $(seq 1 30); do
    pg_isready -q -h localhost -p "$PORT" && break
    sleep 1
done
pg_isready -h localhost -p "$PORT" >&2

as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}
psql_admin() { as_postgres psql -p "$PORT" -v ON_ERROR_STOP=1 -qtA "$@"; }

if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname='$PG_USER'")" != "1" ]; then
    psql_admin -c "CREATE ROLE $PG_USER LOGIN PASSWORD '$PG_PASS' CREATEDB" >&2
fi
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname='$PG_DB'")" != "1" ]; then
    psql_admin -c "CREATE DATABASE $PG_DB OWNER $PG_USER" >&2
fi

echo "export STARTUI_TEST_PG_URL=postgresql+psycopg://$PG_USER:$PG_PASS@localhost:$PORT/$PG_DB"
