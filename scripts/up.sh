#!/usr/bin/env bash
# `make up`: a project-local Postgres (unless SPIN_VARIABLE_DB_HOST points
# elsewhere), its `spindrive` role and database, the migrations, a
# project-local Redis (unless SPIN_VARIABLE_REDIS_HOST points elsewhere),
# then the app on http://127.0.0.1:3000. Ctrl-C stops everything this
# script started.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
listen=${LISTEN:-127.0.0.1:3000}

started_pg= started_redis= sweeper=
cleanup() {
    if [[ -n $sweeper ]]; then kill "$sweeper" 2>/dev/null || true; fi
    if [[ -n $started_pg ]]; then scripts/pg.sh stop; echo "stopped PostgreSQL"; fi
    if [[ -n $started_redis ]]; then scripts/redis.sh stop; echo "stopped Redis"; fi
}
trap cleanup EXIT

if [[ -z ${SPIN_VARIABLE_DB_HOST:-} ]]; then
    export PG_STATE_DIR=$root/.state/pg PG_PORT=${SPIN_VARIABLE_DB_PORT:-55432}
    started_pg=1
    scripts/pg.sh start
    admin=$(scripts/pg.sh url)
    secret=$PG_STATE_DIR/app-password
    [[ -f $secret ]] || head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$secret"
    password=$(cat "$secret")
    psql -X -q -v ON_ERROR_STOP=1 "$admin" <<SQL
SELECT format('CREATE ROLE spindrive LOGIN PASSWORD %L', '$password')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'spindrive') \gexec
SELECT 'CREATE DATABASE spindrive OWNER spindrive'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'spindrive') \gexec
SQL
    export SPIN_VARIABLE_DB_PORT=$PG_PORT SPIN_VARIABLE_DB_PASSWORD=$password
    app_url="postgres://spindrive:$password@127.0.0.1:$PG_PORT/spindrive"
else
    app_url="postgres://${SPIN_VARIABLE_DB_USER:-spindrive}:${SPIN_VARIABLE_DB_PASSWORD:?set SPIN_VARIABLE_DB_PASSWORD}@$SPIN_VARIABLE_DB_HOST:${SPIN_VARIABLE_DB_PORT:-5432}/${SPIN_VARIABLE_DB_NAME:-spindrive}"
fi
# Reads go where writes go unless a read address is given.
for part in HOST PORT; do
    write=SPIN_VARIABLE_DB_$part read=SPIN_VARIABLE_DB_READ_$part
    if [[ -n ${!write:-} && -z ${!read:-} ]]; then export "$read=${!write}"; fi
done
migrations/migrate.sh "$app_url"

# Redis only wakes the transformation worker: without it everything else
# serves, transformations answer 503, and the worker subscribes as soon as
# Redis is back.
if [[ -z ${SPIN_VARIABLE_REDIS_HOST:-} ]]; then
    export REDIS_STATE_DIR=$root/.state/redis REDIS_PORT=${SPIN_VARIABLE_REDIS_PORT:-56379}
    export SPIN_VARIABLE_REDIS_PORT=$REDIS_PORT
    if scripts/redis.sh start; then
        started_redis=1
        SPIN_VARIABLE_REDIS_PASSWORD=$(scripts/redis.sh password)
    else
        echo "warning: Redis did not start: transformations are unavailable until it runs on 127.0.0.1:$REDIS_PORT" >&2
        SPIN_VARIABLE_REDIS_PASSWORD=$(cat "$REDIS_STATE_DIR/password" 2>/dev/null || true)
    fi
    export SPIN_VARIABLE_REDIS_PASSWORD
fi

# The sweeps on a schedule (uploads and worker wake-ups also run them), so
# space from abandoned uploads and deleted files comes back and jobs of a
# worker that died are retried while the app is idle; then a wake-up for
# each worker, in case a job's or a notification's own was lost, and for
# webhook retries falling due.
(
    while sleep 60; do
        UPLOAD_STALE_SECONDS=${SPIN_VARIABLE_UPLOAD_STALE_SECONDS:-600} \
            RELEASE_GRACE_SECONDS=${SPIN_VARIABLE_RELEASE_GRACE_SECONDS:-600} \
            TRANSFORM_MAX_ATTEMPTS=${SPIN_VARIABLE_TRANSFORM_MAX_ATTEMPTS:-3} \
            migrations/sweep.sh "$app_url" || echo "sweep failed; retrying in a minute" >&2
        if [[ -n $started_redis ]]; then
            scripts/redis.sh cli PUBLISH "${SPIN_VARIABLE_TRANSFORM_CHANNEL:-spindrive-transformations}" tick >/dev/null || true
            scripts/redis.sh cli PUBLISH "${SPIN_VARIABLE_NOTIFY_CHANNEL:-spindrive-notifications}" tick >/dev/null || true
        fi
    done
) &
sweeper=$!

base=http://$listen
cat <<HELP

Try it:
  curl -s -X POST $base/api/auth/register -H 'content-type: application/json' \\
       -d '{"username":"ada","email":"ada@example.com","password":"correct horse battery"}'
  TOKEN=\$(curl -s -X POST $base/api/auth/login -H 'content-type: application/json' \\
       -d '{"login":"ada","password":"correct horse battery"}' | sed 's/.*"token":"\\([^"]*\\)".*/\\1/')
  curl -s $base/api/auth/me -H "authorization: Bearer \$TOKEN"
API description: $base/api/openapi.json
HELP
# Private networks stay blocked unless local webhooks were asked for.
runtime_config=(--runtime-config-file runtime-config.toml)
if [[ ${SPIN_VARIABLE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES:-false} == true ]]; then
    runtime_config=()
fi
# A Redis message's handler (one job, or one webhook delivery) is stopped
# past the job's own limit and a margin: a job stopped there fails at once.
message_timeout=$((${SPIN_VARIABLE_TRANSFORM_MAX_SECONDS:-60} + 30))s
target/release/spindrive-host up --from spin.toml --listen "$listen" --message-timeout "$message_timeout" \
    "${runtime_config[@]}"
