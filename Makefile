SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
VENV_BIN := $(VENV)/bin
PYTHON := $(VENV_BIN)/python
SETUP_STAMP := $(VENV)/.stamp-setup

# Installed before the editable install, so that pinned builds (a CPU torch wheel, say) win
# over whatever a dependency would otherwise pull in. Pip arguments, e.g. "torch==2.13.0".
PRE_INSTALL_PIP_ARGS := torch==2.13.0

LINT_PATHS := $(wildcard src tests bench)
BENCH_SCRIPTS := $(sort $(wildcard bench/*.py))

PYTEST_ARGS := -q -n 2

# Tests use PostgreSQL only when this is set; pass it through from the caller untouched.
ifdef CURATA_TEST_PG_URL
export CURATA_TEST_PG_URL
endif

.PHONY: help setup demo lint test bench clean distclean

help:
	@echo "make setup      create .venv and install curata with its dev extras"
	@echo "make demo       build a demo lake with 'curata demo'"
	@echo "make lint       ruff check, ruff format --check, mypy"
	@echo "make test       lint, then pytest (set CURATA_TEST_PG_URL to include PostgreSQL)"
	@echo "make bench      run every bench/*.py script"
	@echo "make clean      remove caches and build output (keeps .venv)"
	@echo "make distclean  clean, and remove .venv"

setup: $(SETUP_STAMP)

$(PYTHON):
	python3.11 -m venv $(VENV) || python3 -m venv $(VENV)

$(SETUP_STAMP): pyproject.toml Makefile | $(PYTHON)
	$(PYTHON) -m pip install --upgrade pip
	$(if $(strip $(PRE_INSTALL_PIP_ARGS)),$(PYTHON) -m pip install $(PRE_INSTALL_PIP_ARGS))
	$(PYTHON) -m pip install -e ".[dev]"
	touch $@

demo: setup
	$(VENV_BIN)/curata demo

lint: setup
	$(VENV_BIN)/ruff check $(LINT_PATHS)
	$(VENV_BIN)/ruff format --check $(LINT_PATHS)
	$(VENV_BIN)/mypy

test: setup lint
	$(PYTHON) -m pytest $(PYTEST_ARGS)

bench: setup
	@set -e; \
	if [ -z "$(BENCH_SCRIPTS)" ]; then echo "no bench/*.py scripts"; exit 0; fi; \
	for script in $(BENCH_SCRIPTS); do \
		echo "== $$script"; \
		$(PYTHON) "$$script"; \
	done

clean:
	rm -rf build dist curata-demo bench/out .pytest_cache .mypy_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -path ./$(VENV) -prune -o -name '*.egg-info' -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
