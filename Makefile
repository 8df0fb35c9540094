# Ferryman — what a newcomer needs. `make help` lists it.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
MODULE ?= examples.bookings
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip uv
	@$(VENV)/bin/uv pip install -q --python $(PY) -e ".[dev,bench]"
	@touch $@

install: $(VENV)/.installed ## create .venv and install Ferryman with every extra

dev: install ## run Ferryman locally on its embedded default (MODULE=examples.bookings)
	$(VENV)/bin/ferryman dev -m $(MODULE)

lint: install ## ruff, mypy --strict and the import-linter contracts
	$(VENV)/bin/ruff check sdk worker/src operator/src tests examples bench
	$(VENV)/bin/ruff format --check sdk worker/src operator/src tests examples bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: install lint ## lint, then every unit and integration test (starts real PostgreSQL and NATS)
	$(PY) -m pytest $(PYTEST_ARGS)

e2e: install ## end to end on a real Kubernetes control plane built from source (cached)
	bash e2e/run.sh

e2e-kind: install ## end to end with real pods: a one-node cluster on this host (root; see e2e/README.md)
	bash e2e/pods/run.sh

bench: install ## benchmarks, side by side with DBOS Transact on the same PostgreSQL
	$(PY) -m bench

chaos: install ## kill -9 workers, NATS and PostgreSQL under 3,000 runs; prints what was lost
	$(PY) -m tests.chaos --runs 3000 --kills 60 --seconds 180

clean: ## remove local data and caches (not the venv)
	rm -rf .ferryman .pytest_cache .mypy_cache .ruff_cache

.PHONY: help install dev lint test e2e e2e-kind bench chaos clean
