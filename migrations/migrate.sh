#!/usr/bin/env bash
# Applies migrations/NNNN_*.sql in order to the database at $1 (a postgres://
# URL), each in its own transaction, recording it in schema_migrations.
# Applied files are skipped, so re-running is safe; one changed after it
# was applied stops the run (the database would not hold what the file
# says: write a new migration instead). The Kubernetes migration Job runs
# this same script.
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
-- The SHA-256 of the file as applied (recorded from here on; rows from
-- before take the file's at the next run).
ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS sha256 char(64);
SQL

applied=0
for file in "$dir"/[0-9][0-9][0-9][0-9]_*.sql; do
    version=$(basename "$file" .sql)
    sha256=$(sha256sum "$file" | cut -d' ' -f1)
    recorded=$("${psql_cmd[@]}" -At -c "SELECT coalesce(sha256, 'none') FROM schema_migrations WHERE version = '$version'")
    if [[ $recorded == none ]]; then
        # Applied before hashes were kept: the file as it is now is taken
        # as what was applied (said, so that it can be checked by hand).
        "${psql_cmd[@]}" -c "UPDATE schema_migrations SET sha256 = '$sha256' WHERE version = '$version'"
        echo "recorded the SHA-256 of $version, applied before hashes were kept"
        continue
    elif [[ -n $recorded ]]; then
        if [[ $recorded != "$sha256" ]]; then
            echo "migrate.sh: $version was changed after it was applied (applied $recorded, now $sha256); add a new migration instead" >&2
            exit 1
        fi
        continue
    fi
    # One transaction: the schema change and its record land together.
    { cat "$file"; echo; echo "INSERT INTO schema_migrations (version, sha256) VALUES ('$version', '$sha256');"; } |
        "${psql_cmd[@]}" --single-transaction -f -
    echo "applied $version"
    applied=$((applied + 1))
done
echo "migrations up to date ($applied applied)"
