# Intercom Relay. `make run` starts the relay, `make test` runs the whole suite (see README.md).

# Python 3.11: Django 5.2 LTS, and the pinned versions in requirements*.txt.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || echo python3)
VENV := .venv
BIN := $(VENV)/bin
# Reinstalled only when a requirements file changes.
VENV_STAMP := $(VENV)/.requirements-installed
NODE_CLIENTS := tests/clients/node
NODE_STAMP := $(NODE_CLIENTS)/node_modules/.installed
NODE_DEPS := $(if $(wildcard $(NODE_CLIENTS)/package-lock.json),$(NODE_STAMP))
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

# Every bench/*.py with a __main__ block; the other modules there are its helpers.
bench: $(VENV_STAMP)
	@scripts="$$(grep -l '__name__ == "__main__"' bench/*.py 2>/dev/null)"; \
	if [ -z "$$scripts" ]; then echo "no benchmarks yet"; fi; \
	for script in $$scripts; do echo "== $$script"; PYTHONPATH=. $(BIN)/python $$script || exit 1; done

$(VENV): $(VENV_STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV_STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(NODE_STAMP): $(NODE_CLIENTS)/package-lock.json
	npm ci --prefix $(NODE_CLIENTS) --no-audit --no-fund
	touch $@
