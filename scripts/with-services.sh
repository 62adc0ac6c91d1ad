#!/usr/bin/env bash
# Runs a command with the project's test servers up, and always stops them:
#   scripts/with-services.sh cargo test --release
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export PG_STATE_DIR=$root/.state/pg-test PG_PORT=${SPINDRIVE_TEST_PG_PORT:-55433} PG_THROWAWAY=1
trap '"$root/scripts/pg.sh" stop' EXIT
"$root/scripts/pg.sh" start
export SPINDRIVE_TEST_DATABASE_URL=$("$root/scripts/pg.sh" url)
"$@"
