#!/usr/bin/env bash
# The production leg of the test suite: start PostgreSQL and Redis on loopback as ordinary users,
# run the given command (the tests) against them, and stop them whatever happens.
#
# Usage: tests/production_leg.sh COMMAND [ARGS...]
# Servers come from Debian's packages and are installed when missing (as root). Under CI=true a
# server that cannot be installed or started fails the run; elsewhere the leg is skipped with a
# warning.
set -euo pipefail

PG_PORT=${PG_TEST_PORT:-55432}
REDIS_PORT=${REDIS_TEST_PORT:-56379}
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}

fail_or_skip() {
    if [ "${CI:-}" = "true" ]; then
        echo "production leg: $1" >&2
        exit 1
    fi
    echo "production leg SKIPPED: $1 (set CI=true to make this fatal)" >&2
    exit 0
}

install_missing() {
    local missing=()
    [ -x "${PG_BIN}/postgres" ] || missing+=(postgresql)
    command -v redis-server >/dev/null || missing+=(redis-server)
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || fail_or_skip "missing ${missing[*]} and not root to install them"
    echo "production leg: installing ${missing[*]} from Debian's packages"
    apt-get update -qq || fail_or_skip "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null || fail_or_skip "apt-get install ${missing[*]} failed"
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
}

install_missing

# The servers refuse to (or should not) run as root: run them as their packages' users.
as_user() {
    local user=$1
    shift
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$user" -- "$@"
    else
        "$@"
    fi
}

WORK=$(mktemp -d /tmp/linkis-prod-leg.XXXXXX)
chmod 755 "$WORK"
PG_USER=postgres
REDIS_USER=redis
id "$REDIS_USER" >/dev/null 2>&1 || REDIS_USER=$PG_USER
if [ "$(id -u)" = 0 ]; then
    install -d -o "$PG_USER" "$WORK/pg" "$WORK/pgsock"
    install -d -o "$REDIS_USER" "$WORK/redis"
else
    mkdir -p "$WORK/pg" "$WORK/pgsock" "$WORK/redis"
fi

cleanup() {
    set +e
    if [ -f "$WORK/pg/postmaster.pid" ]; then
        as_user "$PG_USER" "$PG_BIN/pg_ctl" -D "$WORK/pg" -m immediate stop >/dev/null 2>&1
    fi
    if [ -f "$WORK/redis/redis.pid" ]; then
        kill "$(cat "$WORK/redis/redis.pid")" 2>/dev/null
        for _ in $(seq 50); do [ -f "$WORK/redis/redis.pid" ] || break; sleep 0.1; done
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

as_user "$PG_USER" "$PG_BIN/initdb" -D "$WORK/pg" -U postgres -A trust -E UTF8 >/dev/null \
    || fail_or_skip "initdb failed"
as_user "$PG_USER" "$PG_BIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pgsock/pg.log" -w -t 60 \
    -o "-p $PG_PORT -k $WORK/pgsock -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null || { cat "$WORK/pgsock/pg.log" >&2; fail_or_skip "PostgreSQL did not start"; }
"$PG_BIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "CREATE ROLE linkis LOGIN SUPERUSER PASSWORD 'linkis'" \
    || fail_or_skip "could not create the test role"
"$PG_BIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "CREATE DATABASE linkis OWNER linkis" \
    || fail_or_skip "could not create the test database"

as_user "$REDIS_USER" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --save "" \
    --appendonly no --dir "$WORK/redis" --pidfile "$WORK/redis/redis.pid" --logfile "$WORK/redis/redis.log" \
    || fail_or_skip "Redis did not start"
for _ in $(seq 100); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
done
redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 || fail_or_skip "Redis does not answer"

echo "production leg: PostgreSQL on 127.0.0.1:$PG_PORT, Redis on 127.0.0.1:$REDIS_PORT"
export DATABASE_URL="postgres://linkis:linkis@127.0.0.1:$PG_PORT/linkis"
export CELERY_BROKER_URL="redis://127.0.0.1:$REDIS_PORT/0"
export CELERY_RESULT_BACKEND="redis://127.0.0.1:$REDIS_PORT/1"
export DATA_DIR="$WORK/data"
export PRODUCTION_LEG=1
"$@"
