#!/usr/bin/env bash
# The migration Job's entry point. Waits for a writable primary, makes sure
# the application role and database exist (as the superuser; the role's
# password is reset to the spindrive-db Secret's, so rotating it is a re-run),
# then applies migrations/ with the project's own migrations/migrate.sh as that
# role. Every step is idempotent: the Job may run any number of times.
# Connection settings come from PG* variables set in migrate/job.yaml.
set -euo pipefail

read_secret() {
    local value
    value=$(<"$1")
    [[ -n $value ]] || { echo "error: $1 is empty: fill the Secret first (deploy/spinkube/README.md)" >&2; exit 1; }
    printf '%s' "$value"
}

app_password=$(read_secret /secrets/db/password)
export PGPASSWORD
PGPASSWORD=$(read_secret /secrets/pg/superuser-password)
tries=0
until answer=$(psql -X -At -U postgres -d postgres -c 'SELECT pg_is_in_recovery()' 2>&1) && [[ $answer == f ]]; do
    [[ $answer == t ]] && answer="reached a replica"
    if ((++tries > 150)); then
        echo "error: no writable primary at $PGHOST:$PGPORT after 5 minutes: $answer" >&2
        exit 1
    fi
    echo "waiting for the primary at $PGHOST:$PGPORT: ${answer//$'\n'/ }"
    sleep 2
done

# psql reads the password itself (backquotes in \set), so it appears on no
# command line, and the session stops logging statements before using it.
psql -X -q -v ON_ERROR_STOP=1 -U postgres -d postgres -v role="$APP_USER" -v db="$APP_DATABASE" <<'SQL'
\set password `cat /secrets/db/password`
SET log_statement = 'none';
SELECT format('CREATE ROLE %I LOGIN', :'role')
    WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', :'role', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
    WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
echo "role $APP_USER and database $APP_DATABASE ready"

PGPASSWORD=$app_password
exec bash /migrations/migrate.sh "postgresql://$APP_USER@$PGHOST:$PGPORT/$APP_DATABASE" /migrations
