# Intercom Relay. `make run` starts the relay, `make test` runs the whole suite (see README.md).

# Python 3.11: Django 5.2 LTS, and the pinned versions in requirements*.txt.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || echo python3)
VENV := .venv
BIN := $(VENV)/bin
# Reinstalled only when a requirements file changes.
VENV_STAMP := $(VENV)/.requirements-installed
# The client libraries the tests drive: Node's (tests/clients/node) and the browser's
# (tests/clients/browser). Each directory with a lock file gets `npm ci`, again when its lock changes.
NODE_CLIENTS := tests/clients/node tests/clients/browser
NODE_DEPS := $(foreach dir,$(NODE_CLIENTS),$(if $(wildcard $(dir)/package-lock.json),$(dir)/node_modules/.installed))
PYTEST_ARGS ?=

.PHONY: run test lint format bench

run: $(VENV_STAMP)
	$(BIN)/python manage.py run_relay

test: $(VENV_STAMP) $(NODE_DEPS)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(VENV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV_STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# bench/run_all.py runs each benchmark (bench/run_all.py lists them; bench/dashboard.py too once
# it exists) on SQLite, then on PostgreSQL + Redis when reachable (BENCH_DATABASE_URL,
# BENCH_REDIS_URL), prints a summary and writes bench/RESULTS.md.
# One of them: make bench BENCH_ARGS="--only ingestion --backend sqlite"
BENCH_ARGS ?=
bench: $(VENV_STAMP)
	PYTHONPATH=. $(BIN)/python bench/run_all.py $(BENCH_ARGS)

$(VENV): $(VENV_STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV_STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(addsuffix /node_modules/.installed,$(NODE_CLIENTS)): %/node_modules/.installed: %/package-lock.json
	npm ci --prefix $* --no-audit --no-fund
	touch $@
