#!/usr/bin/env bash
# Runs a command with the project's test servers up (PostgreSQL and Redis),
# and always stops them:
#   scripts/with-services.sh cargo test --release
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export PG_STATE_DIR=$root/.state/pg-test PG_PORT=${SPINDRIVE_TEST_PG_PORT:-55433} PG_THROWAWAY=1
export REDIS_STATE_DIR=$root/.state/redis-test REDIS_PORT=${SPINDRIVE_TEST_REDIS_PORT:-56380}
trap '"$root/scripts/pg.sh" stop; "$root/scripts/redis.sh" stop' EXIT
"$root/scripts/pg.sh" start
"$root/scripts/redis.sh" start
export SPINDRIVE_TEST_DATABASE_URL=$("$root/scripts/pg.sh" url)
export SPINDRIVE_TEST_REDIS_URL=$("$root/scripts/redis.sh" url)
"$@"
