# ticket-cart: every developer and CI command. `make` alone lists them.
# Each target builds .venv from pyproject.toml first (again only when pyproject.toml changes).
# With no REDIS_URL / DATABASE_URL, commands use the local servers, else start embedded ones.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-from-pyproject
# openapi-python-client, for tests/contract/test_generated_client.py, lives in a virtualenv of
# its own: it pins httpx below the version the service runs with (deploy/requirements.lock).
GENERATOR_SPEC := openapi-python-client>=0.29,<0.30
GENERATOR := $(VENV)/generator/bin/openapi-python-client
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv test-tools run worker migrate lint test bench loadtest openapi clean

help: ## list the targets
	@echo "make TARGET [ARGS='...']"
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z0-9-]+):.*## /  \1\t/' | expand -t 16

venv: $(STAMP) $(GENERATOR) ## build .venv from pyproject.toml (dev and embedded extras), and the client generator's

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "make: no python3.11 or python3 on PATH" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "make: $(PYTHON) is older than Python 3.11" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,embedded]'
	@touch $@

$(GENERATOR):
	$(PYTHON) -m venv $(VENV)/generator
	$(VENV)/generator/bin/python -m pip install --quiet --disable-pip-version-check '$(GENERATOR_SPEC)'

run: $(STAMP) ## run the API (and worker) with a seeded demo event; Ctrl-C stops all
	$(PY) -m devtools.devserver run $(ARGS)

worker: $(STAMP) ## run the arq worker alone
	$(PY) -m devtools.devserver worker $(ARGS)

migrate: $(STAMP) ## create and migrate the database (DATABASE_URL, else local/embedded)
	$(PY) -m devtools.devserver migrate $(ARGS)

test-tools: ## install the non-Python tools some tests drive (Debian packages), when missing
	@bash devtools/install-test-tools.sh

# ruff lints (it does not format: the code keeps its hand-wrapped layout) and mypy checks
# the types, strictly, of the packages pyproject's [tool.mypy] names. Both are configured
# in pyproject.toml; mypy's cache (.mypy_cache) keeps a second run to a second or two.
LINT_PATHS := service workers devtools tests loadtest locustfile.py deploy/lock_requirements.py
lint: $(STAMP) ## ruff (format check, then lint) and mypy, configured in pyproject.toml; make test runs it first
	$(VENV)/bin/ruff format --check $(LINT_PATHS) || { echo "make lint: run '$(VENV)/bin/ruff format' to format" >&2; exit 1; }
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/mypy

# PYTEST_EXIT_FILE, if set, receives pytest's own exit code (make turns every failure into 2),
# or "lint" when `make lint` found something, before any test ran.
# `make test` runs `make lint` first (a finding stops it), then pytest once per Redis in
# TEST_REDIS: the whole suite on the standalone test Redis, then, on a local Redis Cluster,
# the tests whose Redis follows --redis (tests/suite_policy.py). ARGS go to both passes.
# The cluster pass runs even after a failed standalone pass (CI reports both), not after
# one that ran no test (exit 2 to 5). The exit status is the first pass's that failed.
TEST_REDIS ?= standalone cluster
test: $(STAMP) $(GENERATOR) test-tools ## lint, then the tests on standalone Redis, then on a Redis Cluster (ARGS='-k cart -x' go to both)
	@$(MAKE) --no-print-directory lint || { \
		echo "make test: make lint found problems (above); no test ran" >&2; \
		if [ -n "$(PYTEST_EXIT_FILE)" ]; then echo lint > "$(PYTEST_EXIT_FILE)"; fi; \
		exit 1; }
	@status=0; for redis in $(TEST_REDIS); do \
		echo "make test: pytest --redis=$$redis $(ARGS)"; \
		passed=0; $(PY) -m pytest --redis=$$redis $(ARGS) || passed=$$?; \
		[ $$status -ne 0 ] || status=$$passed; \
		[ $$passed -le 1 ] || break; \
	done; \
	if [ -n "$(PYTEST_EXIT_FILE)" ]; then echo $$status > "$(PYTEST_EXIT_FILE)"; fi; \
	exit $$status

bench: $(STAMP) ## start the service here, run the standard load-test set, print the table (python -m loadtest bench)
	$(PY) -m loadtest bench $(ARGS)

loadtest: $(STAMP) ## one load-test scenario (python -m loadtest run): ARGS are its options
	$(PY) -m loadtest run $(ARGS)

# The OpenAPI document as the app serves it, checked in for clients and reviews;
# tests/contract/test_openapi_document.py fails when it differs from what the app serves.
openapi: $(STAMP) ## write docs/openapi.json, the API's OpenAPI document, from the app
	$(PY) -m service.http.openapi --write

clean: ## remove .venv and caches (keeps .data/: embedded databases, dev secrets)
	rm -rf $(VENV) .pytest_cache .hypothesis .mypy_cache .ruff_cache build dist *.egg-info
	find . -name __pycache__ -type d -not -path './.data/*' -prune -exec rm -rf {} +

-include deploy/deploy.mk
