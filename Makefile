# fastml-compile: the two commands that matter are `make demo` and `make test` (see README.md).
# Everything installs what it needs by itself: Verilator and Yosys with apt-get (`make deps`).

SHELL := /bin/bash
CARGO ?= cargo
RELEASE := target/release/fastml-compile
DEMO_MODEL := models/qkeras_3layer/model.json
SIM_CACHE := target/fastml-sim-cache
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps build test demo bench lint fmt clean

## deps: install Verilator and Yosys from Debian's packages when they are missing.
deps:
	@if ! command -v verilator >/dev/null || ! command -v yosys >/dev/null; then \
		echo "installing verilator and yosys with apt-get"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq verilator yosys >/dev/null; \
	fi
	@verilator --version && yosys -V

## build: the optimised compiler.
build:
	$(CARGO) build --release -p fastml-compile

## test: every test (unit, property, snapshot, lint, co-simulation, real jets).
test: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) test --workspace

## demo: compile the shipped jet tagger, co-simulate it against the golden model, print the report.
demo: deps build
	$(RELEASE) $(DEMO_MODEL) --target xcvu9p --clock-ns 5 --cosim 100000 -o build/demo --cache-dir $(SIM_CACHE)
	@echo "Verilog, report.json and co-simulation results are in build/demo/"

## bench: compile time, golden-model and co-simulation throughput, Yosys resources (minutes).
bench: deps build
	$(CARGO) bench -p fastml-compile --bench compiler
	bash bench/run.sh

clean:
	rm -rf target build
