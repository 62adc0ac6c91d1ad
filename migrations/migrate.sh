#!/usr/bin/env bash
# Applies migrations/NNNN_*.sql in order to the database at $1 (a postgres://
# URL), each in its own transaction, recording it in schema_migrations.
# Applied files are skipped, so re-running is safe. The Kubernetes migration
# Job runs this same script.
set -euo pipefail

url=${1:?usage: migrate.sh postgres://user:password@host:port/database [migrations-dir]}
dir=${2:-$(cd "$(dirname "$0")" && pwd)}
# Notices (e.g. "does not exist, skipping" from idempotent DDL) are noise here.
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
psql_cmd=(psql -X -q -v ON_ERROR_STOP=1 "$url")

"${psql_cmd[@]}" <<'SQL'
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     varchar(255) PRIMARY KEY,
    applied_at  timestamp    NOT NULL DEFAULT (now() AT TIME ZONE 'utc')
);
SQL

applied=0
for file in "$dir"/[0-9][0-9][0-9][0-9]_*.sql; do
    version=$(basename "$file" .sql)
    done_already=$("${psql_cmd[@]}" -At -c "SELECT 1 FROM schema_migrations WHERE version = '$version'")
    [[ -n $done_already ]] && continue
    # One transaction: the schema change and its record land together.
    { cat "$file"; echo; echo "INSERT INTO schema_migrations (version) VALUES ('$version');"; } |
        "${psql_cmd[@]}" --single-transaction -f -
    echo "applied $version"
    applied=$((applied + 1))
done
echo "migrations up to date ($applied applied)"
