#!/usr/bin/env bash
# A project-local Redis server, started and stopped by the project.
#
#   scripts/redis.sh start|stop|restart|status|password|url|cli
#
# REDIS_STATE_DIR (default .state/redis) holds its configuration, generated
# password, pid file and log; REDIS_PORT (default 56379) is its port on
# 127.0.0.1. Redis only wakes the workers up (the database rows are the
# truth), so it keeps nothing on disk: a restart loses no work.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
state=$(realpath -m "${REDIS_STATE_DIR:-$root/.state/redis}")
port=${REDIS_PORT:-56379}

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    "$root/scripts/install-deps.sh" redis-server redis-tools
fi

password() { cat "$state/password"; }

url() { echo "redis://:$(password)@127.0.0.1:$port"; }

cli() { REDISCLI_AUTH=$(password) redis-cli -h 127.0.0.1 -p "$port" "$@"; }

running() { [[ -f $state/password ]] && cli ping 2>/dev/null | grep -qx PONG; }

configure() {
    mkdir -p "$state"
    chmod 700 "$state"
    if [[ ! -f $state/password ]]; then
        (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$state/password")
    fi
    # The password lives in the configuration, never on a command line
    # that `ps` would show.
    (umask 077 && cat > "$state/redis.conf" <<CONF
bind 127.0.0.1
port $port
protected-mode yes
requirepass $(password)
daemonize yes
pidfile $state/redis.pid
logfile $state/redis.log
dir $state
save ""
appendonly no
CONF
    )
}

start() {
    configure
    if ! running; then
        redis-server "$state/redis.conf"
        for _ in $(seq 100); do
            running && break
            sleep 0.1
        done
        running || { echo "Redis did not start; see $state/redis.log" >&2; exit 1; }
    fi
    echo "Redis on 127.0.0.1:$port (state in $state)"
}

stop() {
    if running; then
        cli shutdown nosave >/dev/null 2>&1 || true
    fi
    if [[ -f $state/redis.pid ]]; then
        local pid
        pid=$(cat "$state/redis.pid")
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        rm -f "$state/redis.pid"
    fi
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    restart) stop; start ;;
    status) running && echo "running on 127.0.0.1:$port" || { echo stopped; exit 1; } ;;
    password) password ;;
    url) url ;;
    cli) shift; cli "$@" ;;
    *) echo "usage: $0 start|stop|restart|status|password|url|cli" >&2; exit 2 ;;
esac
