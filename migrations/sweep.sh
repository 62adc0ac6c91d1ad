#!/usr/bin/env bash
# Runs the sweeps once against the database at $1 (a postgres:// URL):
# uploads idle longer than UPLOAD_STALE_SECONDS and released content older
# than RELEASE_GRACE_SECONDS give their space back, and transformation jobs
# whose worker stopped (lease expired) go back to the queue, or fail after
# TRANSFORM_MAX_ATTEMPTS claims. Uploads and worker wake-ups run the same
# sweeps; this is the schedule's half, which needs neither the app nor
# Redis: `make up` runs it every minute, Kubernetes as a CronJob.
set -euo pipefail
url=${1:?usage: sweep.sh postgres://user:password@host:port/database}
psql -X -q -At -v ON_ERROR_STOP=1 "$url" \
    -v stale="${UPLOAD_STALE_SECONDS:-600}" -v grace="${RELEASE_GRACE_SECONDS:-600}" \
    -v attempts="${TRANSFORM_MAX_ATTEMPTS:-3}" >/dev/null <<'SQL'
SELECT sweep_content(:stale, :grace);
SELECT sweep_transformations(:attempts);
SQL
