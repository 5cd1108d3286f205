# The two commands a developer needs: `make run` and `make test`. CI runs `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

NODE_DEPS := tests/federation/js/node_modules/.installed

.PHONY: run test check pytest schema assets dist bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## GraphiQL's React/GraphiQL bundles, from the npm registry at build time (never at run time).
assets:
	bash scripts/build-graphiql-assets.sh

## A wheel of the gateway, GraphiQL assets included (what the Docker image installs).
dist: assets
	rm -rf dist
	$(PYTHON) -m pip wheel --quiet --no-deps --wheel-dir dist .

## Apollo Gateway and graphql-js for the federation tests (exact versions, no lock file).
## Without npm the step says so and the tests that need Node report themselves skipped.
$(NODE_DEPS): tests/federation/js/package.json
	@if command -v npm >/dev/null 2>&1; then \
	  cd tests/federation/js && npm install --no-package-lock --no-audit --no-fund --loglevel=error \
	  && touch node_modules/.installed; \
	else echo "npm not found: the federation tests will be skipped"; fi

## Start the gateway; with no KOMBO_API_KEY it runs on the embedded Kombo sandbox.
run: $(STAMP) assets
	$(BIN)/kombo-gateway serve --host $(HOST) --port $(PORT)

## Everything CI checks: format, lint, types, then the test suite.
test: $(STAMP) assets check pytest

check: $(STAMP)
	$(BIN)/ruff format --check gateway tests bench
	$(BIN)/ruff check gateway tests bench
	$(BIN)/mypy

pytest: $(STAMP) assets $(NODE_DEPS)
	$(BIN)/pytest

## Regenerate schema.graphql from the code (a test fails when it is stale).
schema: $(STAMP)
	$(BIN)/kombo-gateway schema > schema.graphql

## Benchmark (not part of `make test`): in-process ratios, gateway vs pass-through proxy over
## HTTP, upstream calls, peak RSS; writes bench/results/bench.md. wrk is the load generator
## (installed with apt when missing and possible; else a Python fallback is used).
## Options: make bench BENCH_ARGS="--quick" (see python -m bench.run --help).
bench: $(STAMP) assets
	@command -v wrk >/dev/null 2>&1 || ((apt-get update -qq && apt-get install -y -qq wrk) || true)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) gateway/static/graphiql tests/federation/js/node_modules dist \
	  .mypy_cache .ruff_cache .pytest_cache
