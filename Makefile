# gridledger: every entry point. `make demo` runs the system, `make test` passes every test; each sets itself up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROTOS := build/protos
SITE = $(shell $(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# Fabric and Go's build cache live outside the checkout, keyed by the pinned Fabric version.
export GRIDLEDGER_CACHE ?= $(HOME)/.cache/gridledger
PYTEST_ARGS ?=

.PHONY: setup protos fabric network-up network-down network-status test test-unit demo bench clean

setup: $(VENV)/.installed $(PROTOS)/.generated

$(VENV)/.installed: pyproject.toml
	@echo "setup: creating $(VENV) and installing the pinned Python dependencies"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

protos: $(PROTOS)/.generated

$(PROTOS)/.generated: $(VENV)/.installed network/protos.py network/fabric-build/go.sum network/fabric-build/protoset/main.go
	$(PY) network/protos.py $(PROTOS)
	echo "$(CURDIR)/$(PROTOS)" > "$(SITE)/gridledger-fabric-protos.pth"
	touch $@

fabric:
	$(PYTHON) -m network.fabric

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

demo: setup fabric
	$(VENV)/bin/gridledger network up
	@echo "demo: a DR command with 60 simulated consumers; the aggregation system misrecords 2% of readings"
	$(VENV)/bin/gridledger dr simulate --consumers 60 --discrepancy-rate 0.02
	@echo "demo: the network keeps running; try 'gridledger dr command list --as TSO',"
	@echo "      'gridledger dr aggregates --as RA1 --command <id>', 'gridledger network status';"
	@echo "      web pages and market rounds are not built yet. 'make network-down' stops it all."

test: setup fabric
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: setup
	$(PY) -m pytest -m 'not fabric' $(PYTEST_ARGS)

clean:
	rm -rf build $(VENV) run
