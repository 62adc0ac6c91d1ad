#!/usr/bin/env bash
# Renders deploy/spinkube with kustomize and checks it offline: Kubernetes
# schemas, SpinKube CRD schemas (from ../shared/crds when present), the
# wiring between objects, and checkov's policies (deploy/validate.py).
# Run by `make test`; no cluster needed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if ! command -v kubectl >/dev/null; then
    # Debian packages kubectl; elsewhere see https://kubernetes.io/docs/tasks/tools/.
    "$root/scripts/install-deps.sh" kubectl
fi

# Python tools in a project venv, (re)installed only when the pins change.
venv=$root/.state/venv
requirements=$root/deploy/requirements.txt
if ! cmp -s "$requirements" "$venv/requirements.txt" 2>/dev/null; then
    echo "==> installing deploy/requirements.txt into .state/venv"
    if ! python3 -m venv "$venv" 2>/dev/null; then
        # Debian's python3 splits venv support into its own package.
        "$root/scripts/install-deps.sh" python3-venv
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$venv/requirements.txt"
fi

mkdir -p .state/deploy
rendered=.state/deploy/spinkube.yaml
echo "==> kubectl kustomize deploy/spinkube"
if ! kubectl kustomize deploy/spinkube >"$rendered"; then
    echo "error: kustomize could not render deploy/spinkube (see above)" >&2
    exit 1
fi
"$venv/bin/python" deploy/validate.py "$rendered"
