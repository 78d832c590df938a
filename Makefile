# gridledger: every entry point. `make demo` runs the system, `make test` passes every test; each sets itself up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Fabric's binaries live outside the checkout in $(GRIDLEDGER_CACHE)/fabric-<version>; FABRIC_SOURCE (a path or a URL)
# names the source archive to build from (default ../shared/fabric/fabric-v3.1.5.tar.gz when present, else GitHub's
# tag archive); its tree is checked against a pinned digest before anything is built.
export GRIDLEDGER_CACHE ?= $(HOME)/.cache/gridledger
PYTEST_ARGS ?=

.PHONY: setup fabric chromium network-up network-down network-status lint format test test-unit demo bench caliper chaos clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@echo "setup: creating $(VENV) and installing the pinned Python dependencies"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

fabric:
	$(PYTHON) -m network.fabric

# Debian's chromium for the browser tests (Playwright drives it through executable_path; it never downloads one).
chromium:
	@command -v chromium >/dev/null || { echo "setup: installing Debian's chromium"; \
		$$([ "$$(id -u)" = 0 ] || echo sudo) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }

network-up: setup fabric
	$(VENV)/bin/gridledger network up

network-down: setup
	$(VENV)/bin/gridledger network down

network-status: setup
	$(VENV)/bin/gridledger network status

# Every benchmark in tests/bench brings up its own network (or none), bounded in time, and writes JSON.
bench: setup fabric
	mkdir -p bench-results
	set -e; for script in tests/bench/bench_*.py; do \
		name=$$(basename $$script .py); name=$${name#bench_}; \
		echo "== $$name"; $(PY) $$script --out bench-results/$$name.json; \
	done

# Hyperledger Caliper 0.6.0 and its Fabric connector's fabric-gateway binding, installed once (npm ci of the versions
# tests/bench/caliper/package-lock.json pins, then `caliper bind`) into $(GRIDLEDGER_CACHE)/caliper-0.6.0; its rounds
# run on a fresh network (ports at GRIDLEDGER_BENCH_PORT_BASE, default 11100), its HTML report is kept in
# bench-results/caliper/, the figures (successful transactions only) are printed and written to bench-results/caliper.json.
caliper: setup fabric
	set -e; dir="$(GRIDLEDGER_CACHE)/caliper-0.6.0"; \
	if ! cmp -s tests/bench/caliper/package-lock.json "$$dir/.installed"; then \
		echo "caliper: installing Hyperledger Caliper 0.6.0 into $$dir"; mkdir -p "$$dir"; \
		cp tests/bench/caliper/package.json tests/bench/caliper/package-lock.json "$$dir/"; \
		(cd "$$dir" && npm ci --ignore-scripts --no-audit --no-fund && \
			npx --no-install caliper bind --caliper-bind-sut fabric:fabric-gateway); \
		cp tests/bench/caliper/package-lock.json "$$dir/.installed"; \
	fi
	mkdir -p bench-results/caliper
	$(PY) tests/bench/caliper/run.py --caliper-dir "$(GRIDLEDGER_CACHE)/caliper-0.6.0" \
		--report-dir bench-results/caliper --out bench-results/caliper.json

demo: setup fabric
	$(VENV)/bin/gridledger network up
	@echo "demo: a live DR command, a 3-minute window starting within the next 20-80 s, 60 simulated consumers;"
	@echo "      readings go out as each minute ends, settlement a minute after the window (about 5 minutes);"
	@echo "      the aggregation system misrecords 2% of readings; a process per organisation's part (the TSO's"
	@echo "      command, its meters, each RA's relay)"
	$(VENV)/bin/gridledger dr demo --consumers 60 --minutes 3 --discrepancy-rate 0.02
	@echo "demo: trading rounds every minute, a process per organisation's part (the TSO's gates, matchers"
	@echo "      RA1-RA3, each RA's prosumers, each organisation's web server); Ctrl-C stops them,"
	@echo "      'make network-down' stops the network"
	$(VENV)/bin/gridledger demo

# Long fault runs under load and many more fuzz cases; prints the figures, writes bench-results/chaos/*.json.
chaos: setup fabric
	mkdir -p bench-results/chaos
	GRIDLEDGER_CHAOS=1 GRIDLEDGER_FUZZ_EXAMPLES=1000 GRIDLEDGER_FUZZ_RANDOM=1 GRIDLEDGER_GATEWAY_FUZZ_EXAMPLES=100 \
	GRIDLEDGER_FIGURES_DIR=bench-results/chaos $(PY) -m pytest -m chaos tests/fault tests/security $(PYTEST_ARGS)

# One layout (ruff format), lint (ruff), types (mypy: consortium, gateway, the shim, the solver) and the layers
# (import-linter: a room imports only rooms below it). `make test` runs it first.
lint: setup
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: lint fabric chromium
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: lint
	$(PY) -m pytest -m 'not fabric' $(PYTEST_ARGS)

clean:
	rm -rf build $(VENV) run
