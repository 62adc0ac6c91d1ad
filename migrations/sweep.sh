#!/usr/bin/env bash
# Runs the content sweep once against the database at $1 (a postgres://
# URL): uploads idle longer than UPLOAD_STALE_SECONDS and released content
# older than RELEASE_GRACE_SECONDS give their space back. Uploads run the
# same sweep; this is the schedule's half, so an idle system frees space
# too: `make up` runs it every minute, Kubernetes as a CronJob.
set -euo pipefail
url=${1:?usage: sweep.sh postgres://user:password@host:port/database}
psql -X -q -At -v ON_ERROR_STOP=1 "$url" \
    -v stale="${UPLOAD_STALE_SECONDS:-600}" -v grace="${RELEASE_GRACE_SECONDS:-600}" \
    >/dev/null <<<"SELECT sweep_content(:stale, :grace);"
