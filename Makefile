# fastml-compile: the two commands that matter are `make demo` and `make test` (see README.md).
# Everything installs what it needs by itself: Verilator and Yosys with apt-get (`make deps`).

SHELL := /bin/bash
CARGO ?= cargo
RELEASE := target/release/fastml-compile
DEMO_MODEL := models/qkeras_3layer/model.json
SIM_CACHE := target/fastml-sim-cache
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: deps venv build test test-rust test-python demo bench refs clean

## deps: install Verilator and Yosys from Debian's packages when they are missing.
deps:
	@if ! command -v verilator >/dev/null || ! command -v yosys >/dev/null; then \
		echo "installing verilator and yosys with apt-get"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq verilator yosys >/dev/null; \
	fi
	@verilator --version && yosys -V

## venv: the exporter (python/) installed with its test tools in .venv (numpy, h5py, pytest; no TensorFlow).
venv: $(VENV)/.installed
$(VENV)/.installed: python/pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e 'python[test]'
	touch $@

## build: the optimised compiler.
build:
	$(CARGO) build --release -p fastml-compile

## test: every test (unit, property, snapshot, lint, co-simulation, real jets, conformance, exporter).
test: test-rust test-python

test-rust: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) test --workspace

test-python: venv build
	FASTML_COMPILE=$(CURDIR)/$(RELEASE) $(VENV)/bin/pytest -q python/tests

## demo: compile the shipped jet tagger, co-simulate it against the golden model, print the report.
demo: deps build
	$(RELEASE) $(DEMO_MODEL) --target xcvu9p --clock-ns 5 --cosim 100000 -o build/demo --cache-dir $(SIM_CACHE)
	@echo "Verilog, report.json and co-simulation results are in build/demo/"

## bench: compile time, golden-model and co-simulation throughput, Yosys resources, and fastml-compile
## vs da4ml on the peers' models (tens of minutes: Yosys on the big designs is slow).
bench: deps build venv
	$(CARGO) bench -p fastml-compile --bench compiler
	bash bench/run.sh
	bash bench/peers.sh
	bash bench/families.sh
	bash bench/estimate.sh

## refs: regenerate the framework reference outputs in tests/data/refs (creates pinned TensorFlow/JAX
## environments under .refs-venv; slow, needs PyPI; `make test` never needs it).
refs:
	bash refs/make_refs.sh

clean:
	rm -rf target build
