# Two commands matter: `make demo` and `make test`. Both create .venv if missing and are idempotent.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo
DEMO_ARGS ?= --bureaus 5 --customers 20000 --days 730 --start 2024-01-01 --seed 7
DEMO_PERIOD ?= 2025-01..2025-12

.PHONY: demo test quick install fonts sysdeps lint typecheck pytest clean-demo lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel

$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

## Re-resolve the dependencies from pyproject.toml alone and pin the result in constraints.txt.
lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade -e '.[dev]'
	{ sed -n '1,3p' constraints.txt; $(BIN)/python -m pip freeze --exclude-editable; } > constraints.new
	mv constraints.new constraints.txt
	touch $(STAMP)

## Debian packages: Chromium for the browser tests, a CJK font for charts and pages.
## Installed once (each step is skipped when already present).
fonts:
	@fc-list 2>/dev/null | grep -qi "wenquanyi" || { \
	  echo "installing Debian fonts-wqy-zenhei (Chinese labels in charts)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-zenhei >/dev/null; \
	  rm -rf $$HOME/.cache/matplotlib; }

sysdeps: fonts
	@command -v chromium >/dev/null || { \
	  echo "installing Debian chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

## ruff, and the architecture of docs/architecture.md (import-linter's contracts in pyproject.toml).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: install
	$(BIN)/mypy

pytest: install sysdeps
	$(BIN)/pytest

test: lint typecheck pytest

## The quick subset for iterating: lint, types, and the tests not marked slow or browser.
quick: lint typecheck
	$(BIN)/pytest -m "not slow and not browser"

demo: install fonts
	$(BIN)/audit demo-data --out $(DEMO_DIR) $(DEMO_ARGS)
	$(BIN)/audit demo-setup --mart $(DEMO_DIR)/mart
	$(BIN)/audit run notebooks/monitoring.ipynb --bureau all --mart $(DEMO_DIR)/mart \
	  --period $(DEMO_PERIOD) -p actor=demo_city
	$(BIN)/audit demo-loop
	@echo "演示完成 / demo ready: outputs/ (executed notebooks, HTML reports), var/audit.db (tasks)"
	@echo "  $(BIN)/audit tasks list --as rev_YZ"
	$(BIN)/audit serve --mart $(DEMO_DIR)/mart --issue-tokens

clean-demo:
	rm -rf $(DEMO_DIR) var outputs/*/
