# Two commands on a fresh machine: `make demo` and `make test`.
# Each builds .venv from nothing when it is missing or pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_ARGS ?=
PYTEST_ARGS ?=

.PHONY: demo test lint typecheck venv bench bench-qr clean chromium test-web

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/flashpay demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports  # the architecture contract: pyproject.toml [tool.importlinter]

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

# The browser tests drive Debian's Chromium (Playwright's own browser download fails here, and
# `playwright install` is never run): install the package when it is missing, and a small CJK
# font so the Chinese pages render (and photograph) as text, not boxes.
chromium:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	fc-list :lang=zh | grep -q . || apt-get install -y fonts-wqy-microhei

test: lint typecheck chromium
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

# The pages in a real browser alone, with their timings printed (docs/benchmarks.md, issue 16).
test-web: $(STAMP) chromium
	$(BIN)/pytest -n 0 -s tests/web $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/ledger_bench.py

bench-qr: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/qr_bench.py

clean:
	rm -rf $(VENV) .flashpay .mypy_cache .ruff_cache .import_linter_cache
