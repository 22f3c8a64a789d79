# Every target sets itself up on a fresh machine: it creates .venv and installs what it needs.
# `make demo` installs the core package only; `make test` adds what the tests exercise (test tools and the
# aic, ray and arima extras). Each install has its own stamp, so running one never re-installs the other.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORE_STAMP := $(VENV)/.installed-core
TEST_STAMP := $(VENV)/.installed-test
TEST_EXTRAS := test,aic,ray,arima

.PHONY: demo test lint typecheck docs bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(CORE_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $(CORE_STAMP)

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[$(TEST_EXTRAS)]'
	touch $(TEST_STAMP) $(CORE_STAMP)

# The main job on the bundled demo trace: 5 minutes of Mooncake traffic, 2 agg workers at start, SLA planner in
# the loop; prints the metrics table and writes demo_report.json and demo_report.html.
demo: $(CORE_STAMP)
	$(BIN)/llmreplay run --demo --num-workers 2 --planner-config examples/demo_planner.json \
		--report-json demo_report.json --report-html demo_report.html

test: lint typecheck
	$(BIN)/pytest -q

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests benchmarks

typecheck: $(TEST_STAMP)
	$(BIN)/mypy

# Regenerate docs/usage.md's option tables from the config models (tests/cli/test_options.py checks them).
docs: $(CORE_STAMP)
	$(BIN)/python -m llmreplay.cli.docgen docs/usage.md

bench: $(TEST_STAMP)
	$(BIN)/pytest -q -m benchmark benchmarks -s

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo_report.json demo_report.html
