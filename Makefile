# The two commands a developer needs: `make run` and `make test`. CI runs `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two installs, each with its stamp: serving needs only the gateway and its runtime
# dependencies; tests, lint and types add the `dev` extras. `make test` marks both done,
# so a `make run` after it installs nothing; a `make test` after `make run` adds the extras.
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
# `make run HOST=... PORT=...`; else GATEWAY_HOST / GATEWAY_PORT, as `serve` reads them.
HOST ?= $(or $(GATEWAY_HOST),127.0.0.1)
PORT ?= $(or $(GATEWAY_PORT),8000)
## The runtime dependencies, pinned with hashes (what the Docker image installs).
LOCK := requirements.lock
UV_VERSION := 0.13.9

NODE_DEPS := tests/federation/js/node_modules/.installed
CLIENT_NODE_DEPS := tests/clients/js/node_modules/.installed

.PHONY: run test check pytest schema assets dist lock bench clean redis-server

$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUN_STAMP)

$(DEV_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(DEV_STAMP) $(RUN_STAMP)

## GraphiQL's React/GraphiQL bundles, from the npm registry at build time (never at run time).
assets:
	bash scripts/build-graphiql-assets.sh

## A wheel of the gateway, GraphiQL assets included (what the Docker image installs).
dist: assets
	rm -rf dist
	$(PYTHON) -m pip wheel --quiet --no-deps --wheel-dir dist .

## Regenerate $(LOCK) from pyproject.toml's runtime dependencies: exact versions, every
## file's sha256, no index or download address (tests/test_packaging.py checks all three).
## uv is installed into the venv the first time this runs; nothing else needs it.
lock: $(RUN_STAMP)
	test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet 'uv==$(UV_VERSION)'
	$(BIN)/uv pip compile pyproject.toml --quiet --universal --python-version 3.11 \
	  --generate-hashes --custom-compile-command 'make lock' --output-file $(LOCK)

## Apollo Gateway and graphql-js for the federation tests (exact versions, no lock file).
## Without npm the step says so and the tests that need Node report themselves skipped.
$(NODE_DEPS): tests/federation/js/package.json
	@if command -v npm >/dev/null 2>&1; then \
	  cd tests/federation/js && npm install --no-package-lock --no-audit --no-fund --loglevel=error \
	  && touch node_modules/.installed; \
	else echo "npm not found: the federation tests will be skipped"; fi

## relay-compiler, Apollo Client and their peers for the client tests (exact versions, no
## lock file). Without npm the step says so and those tests report themselves skipped.
$(CLIENT_NODE_DEPS): tests/clients/js/package.json
	@if command -v npm >/dev/null 2>&1; then \
	  cd tests/clients/js && npm install --no-package-lock --no-audit --no-fund --loglevel=error \
	  && touch node_modules/.installed; \
	else echo "npm not found: the client tests will be skipped"; fi

## Start the gateway; with no KOMBO_API_KEY it runs on the embedded Kombo sandbox.
## Options: make run PORT=9000 HOST=0.0.0.0. Ctrl-C (or SIGTERM) stops it after draining.
run: $(RUN_STAMP) assets
	$(BIN)/kombo-gateway serve --host $(HOST) --port $(PORT)

## Everything CI checks: format, lint, types, then the test suite.
test: $(DEV_STAMP) assets check pytest

check: $(DEV_STAMP)
	$(BIN)/ruff format --check gateway tests bench
	$(BIN)/ruff check gateway tests bench
	$(BIN)/mypy

## Two processes, a test file each at a time (module state such as the fuzz counts stays in
## one process); then the tests marked `serial`, which measure time or memory under load,
## alone. `make pytest PYTEST_ARGS=...` passes arguments to both runs.
pytest: $(DEV_STAMP) assets $(NODE_DEPS) $(CLIENT_NODE_DEPS) redis-server
	$(BIN)/pytest -n 2 --dist loadfile -m "not serial" $(PYTEST_ARGS)
	$(BIN)/pytest -m serial $(PYTEST_ARGS)

## Debian's redis-server for the tests that share state through a real Redis (they start
## their own on a free loopback port, persistence off). Installed with apt when missing.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
redis-server:
	@command -v redis-server >/dev/null 2>&1 || \
	  ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends redis-server)

## Regenerate schema.graphql from the code (a test fails when it is stale).
schema: $(RUN_STAMP)
	$(BIN)/kombo-gateway schema > schema.graphql

## Benchmark (not part of `make test`): in-process ratios, gateway vs pass-through proxy over
## HTTP, upstream calls, peak RSS, two replicas without and with Redis; writes
## bench/results/bench.md. wrk is the load generator (installed with apt when missing and
## possible; else a Python fallback is used); the replica section needs redis-server.
## Options: make bench BENCH_ARGS="--quick" (see python -m bench.run --help).
bench: $(DEV_STAMP) assets redis-server
	@command -v wrk >/dev/null 2>&1 || ((apt-get update -qq && apt-get install -y -qq wrk) || true)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) gateway/http/static/graphiql tests/federation/js/node_modules \
	  tests/clients/js/node_modules dist .mypy_cache .ruff_cache .pytest_cache
