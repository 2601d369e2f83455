# Two commands for a fresh machine with Python 3.11+ and make: `make demo` and `make test`.
# Each does its own set-up: a private uv in .tools/, the locked environment in .venv/.
PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Bytecode compiled once at set-up: every process the daemon, the run's evaluation
# workers and the tests start then imports in about a third of the time, even where
# Python may not write it (PYTHONDONTWRITEBYTECODE, a read-only install).
export UV_COMPILE_BYTECODE := 1

.PHONY: demo test lint sync clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	$(VENV)/bin/python -m compileall -q src
	touch $@

sync: $(VENV)/.synced

demo: sync
	$(VENV)/bin/alchemiser demo

lint: sync
	$(VENV)/bin/ruff check src tests benchmarks migrations
	$(VENV)/bin/ruff format --check src tests benchmarks migrations
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) .alchemiser .pytest_cache .mypy_cache .ruff_cache
