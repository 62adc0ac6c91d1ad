#!/usr/bin/env bash
# A project-local PostgreSQL server, started and stopped by the project.
#
#   scripts/pg.sh start|stop|restart|status|url|psql
#
# PG_STATE_DIR (default .state/pg) holds the data directory, socket, log,
# generated password and the admin URL; PG_PORT (default 55432) is its port
# on 127.0.0.1; PG_STOP_MODE (default fast) is pg_ctl's shutdown mode for
# stop and restart (`immediate`: a crash, recovered from WAL on start). PostgreSQL refuses to run as root, so as root the server
# runs as the `postgres` user, which owns the data directory.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
state=$(realpath -m "${PG_STATE_DIR:-$root/.state/pg}")
port=${PG_PORT:-55432}
data=$state/data
run=$state/run

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [[ -z $bindir ]]; then
    "$root/scripts/install-deps.sh" postgresql postgresql-contrib
    bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi

owner=$(id -un)
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
if [[ $(id -u) -eq 0 ]]; then owner=postgres; fi

# The server runs as `postgres`, which must be able to walk down to the
# data directory. A clone in a private tree (root's home is mode 700) does
# not allow that, so grant `postgres` traversal (x, not read) of exactly
# the directories in the way, with an ACL.
grant_traversal() {
    [[ $(id -u) -eq 0 ]] || return 0
    local dir=/ part
    local -a parts
    IFS=/ read -ra parts <<<"${state#/}"
    for part in "${parts[@]}"; do
        [[ -n $part ]] || continue
        dir=${dir%/}/$part
        [[ -d $dir ]] || break
        if ! runuser -u postgres -- test -x "$dir"; then
            if ! command -v setfacl >/dev/null; then
                "$root/scripts/install-deps.sh" acl
            fi
            echo "granting the postgres user traversal of $dir (setfacl -m u:postgres:x), so PostgreSQL can reach $state" >&2
            if ! setfacl -m u:postgres:x "$dir" || ! runuser -u postgres -- test -x "$dir"; then
                echo "error: the postgres user cannot reach $state; clone the repository where the postgres user may traverse every parent directory (for example under /srv or /tmp)" >&2
                exit 1
            fi
        fi
    done
}

url() {
    echo "postgres://postgres:$(cat "$state/password")@127.0.0.1:$port/postgres"
}

init() {
    mkdir -p "$state"
    chmod 755 "$state"
    if [[ ! -f $state/password ]]; then
        head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$state/password"
    fi
    chmod 644 "$state/password"
    mkdir -p "$data" "$run"
    chown -R "$owner" "$data" "$run"
    chmod 700 "$data"
    as_owner "$bindir/initdb" -D "$data" -U postgres --pwfile="$state/password" \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    cat >> "$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$run'
max_connections = 300
shared_buffers = 128MB
log_min_messages = warning
CONF
    if [[ ${PG_THROWAWAY:-0} == 1 ]]; then
        # Test servers hold nothing worth an fsync. The `make up` server is
        # the product's embedded default and keeps every durability setting:
        # an acknowledged upload survives an OS crash.
        printf 'fsync = off\nfull_page_writes = off\nsynchronous_commit = off\n' >> "$data/postgresql.conf"
    fi
}

# Test servers count statements (pg_stat_statements: the tests that prove a
# list runs a bounded number of them) and can log plans (auto_explain).
test_settings() {
    if [[ ${PG_THROWAWAY:-0} == 1 ]] && ! grep -q '^shared_preload_libraries' "$data/postgresql.conf"; then
        echo "shared_preload_libraries = 'pg_stat_statements'" >> "$data/postgresql.conf"
    fi
}

# Servers made before durability was the default had commits asynchronous.
make_durable() {
    if [[ ${PG_THROWAWAY:-0} != 1 ]] && grep -q '^synchronous_commit = off' "$data/postgresql.conf"; then
        sed -i '/^synchronous_commit = off$/d' "$data/postgresql.conf"
    fi
}

# Autovacuum looks at each database every 10 s, not every minute: deleted
# content's space is reused only once vacuumed (migration 0010), and a
# minute of uploads can be gigabytes. Servers made before get it too.
vacuum_often() {
    if ! grep -q '^autovacuum_naptime' "$data/postgresql.conf"; then
        echo "autovacuum_naptime = 10s" >> "$data/postgresql.conf"
    fi
}

running() {
    [[ -f $data/postmaster.pid ]] && as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1
}

start() {
    mkdir -p "$state"
    grant_traversal
    [[ -f $data/PG_VERSION ]] || init
    make_durable
    test_settings
    vacuum_often
    if ! running; then
        touch "$state/postgres.log"
        chown "$owner" "$state/postgres.log"
        as_owner "$bindir/pg_ctl" -D "$data" -l "$state/postgres.log" -w -t 60 -o "-p $port" start >/dev/null
    fi
    url > "$state/url"
    echo "PostgreSQL on 127.0.0.1:$port (data in $data)"
}

stop() {
    if running; then
        as_owner "$bindir/pg_ctl" -D "$data" -m "${PG_STOP_MODE:-fast}" -w -t 60 stop >/dev/null
    fi
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    restart) stop; start ;;
    status) running && echo "running on 127.0.0.1:$port" || { echo stopped; exit 1; } ;;
    url) url ;;
    psql) shift; PGPASSWORD=$(cat "$state/password") exec psql -h 127.0.0.1 -p "$port" -U postgres "$@" ;;
    *) echo "usage: $0 start|stop|restart|status|url|psql" >&2; exit 2 ;;
esac
