# Every target sets itself up on a fresh machine: it creates .venv and installs what it needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,aic,ray,arima]'
	touch $(STAMP)

# The main job on the bundled demo trace: 5 minutes of Mooncake traffic, 2 agg workers at start, SLA planner in
# the loop; prints the metrics table and writes demo_report.json and demo_report.html.
demo: $(STAMP)
	$(BIN)/llmreplay run --demo --num-workers 2 --planner-config examples/demo_planner.json \
		--report-json demo_report.json --report-html demo_report.html

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/pytest -q -m benchmark benchmarks -s

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache demo_report.json demo_report.html
