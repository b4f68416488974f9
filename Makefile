# cryptowire: `make run` starts the hub on embedded defaults, `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test check lint typecheck unit integration clean browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $@

$(DEV_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev]'
	# npm install (not npm ci): npm ci refuses a lock whose platform-specific optional
	# packages (anvil's darwin/win32/arm builds) have no entries; install honours the lock.
	npm install --no-audit --no-fund --no-save
	touch $@

run: $(STAMP)
	$(BIN)/cryptowire serve

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

check: lint typecheck

# Debian's chromium for the dashboard's browser test (tests/e2e) and haproxy for the
# docker-compose topology test (tests/integration/cluster); CI runs as root.
browser:
	(command -v chromium && command -v haproxy) >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq chromium haproxy)

test: check browser
	$(BIN)/pytest -q -p no:cacheprovider

unit: $(DEV_STAMP)
	$(BIN)/pytest -q tests/unit

integration: $(DEV_STAMP)
	$(BIN)/pytest -q tests/integration

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
