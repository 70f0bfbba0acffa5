# stockcast: `make run-flow` then `make test` is all a fresh machine needs.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=
UI_PORT ?= 5000
# One worker: MLflow's default four on the embedded SQLite store kept dying under load
# ("Child process died"); one served fine (#30). UI_WORKERS=... to change it.
UI_WORKERS ?= 1
PREFECT_PORT ?= 4200
# A team's served MLflow (docs/team.md): TRACKING_URI=http://mlflow:5000 makes `make worker`
# carry it to every run the worker starts and `make ui` print that server's links.
TRACKING_URI ?=
POOL ?= stockcast-pool
TICKER ?= GOOG
MODEL_PORT ?= 5001
# Test processes side by side (pytest-xdist): the suite's servers and flows wait on each other
# much of the time, so two processes keep two cores busier. TEST_WORKERS=0 runs it in one.
TEST_WORKERS ?= 2
# The project home (the CLI's too): the store, data and tool state live under it.
STOCKCAST_HOME ?= $(CURDIR)
export STOCKCAST_HOME
STORE := sqlite:///$(abspath $(STOCKCAST_HOME))/mlflow/mlflow.db

# Offline-friendly defaults (see README: Configuration).
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120
export DO_NOT_TRACK ?= true
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export MLFLOW_DISABLE_TELEMETRY ?= true
export PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW ?= ignore
export PREFECT_LOGGING_EXTRA_LOGGERS ?= stockcast
# Prefect's state (server database, profiles) under the home, as the CLI keeps it, unless the
# user has a Prefect profile of their own in ~/.prefect.
ifeq ($(wildcard $(HOME)/.prefect/profiles.toml),)
export PREFECT_HOME ?= $(abspath $(STOCKCAST_HOME))/.prefect
endif

.PHONY: help setup run-flow forecast report test test-fast test-other-cpu lint bench ui server deploy worker serve serve-model clean clean-store

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  \033[1m%-12s\033[0m %s\n", $$1, $$2}'

# uv installs the same pins as pip faster (pip: about 2.5 minutes cold); pip is the fallback.
# It does not read pip's configuration, so local wheel folders (PIP_FIND_LINKS) are passed on,
# and it compiles no bytecode unless asked: without .pyc files (and PYTHONDONTWRITEBYTECODE
# set) every process would compile Prefect and MLflow again at import.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==0.13.9 && $(BIN)/uv pip install --quiet --compile-bytecode \
	  --python $(BIN)/python $(foreach d,$(PIP_FIND_LINKS),--find-links $(d)) -e '.[dev]' \
	  || $(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP) ## create .venv and install stockcast with its dev extras (idempotent)

run-flow: setup ## run the training pipeline once (ARGS="--ticker MSFT --epochs 30")
	$(BIN)/stockcast run $(ARGS)

forecast: setup ## forecast the next days with each ticker's champion (ARGS="--ticker GOOG")
	$(BIN)/stockcast forecast $(ARGS)

report: setup ## write the exploratory data report for the default ticker(s) to reports/
	$(BIN)/stockcast report $(ARGS)

test: setup ## run the whole test suite (unit, end-to-end, servers)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=15 $(ARGS)

# The fast tests whose assertions rest on what a BLAS / ATen kernel computes: trained
# networks, fitted GARCH and HAR, the tests and scores on them, the re-scored champions. The
# data-reading, CLI, serving and MLflow-bookkeeping tests compare two paths on one machine's
# kernels (or compute element-wise), which no kernel rounds differently.
NUMERIC_TESTS ?= tests/modeling tests/evaluation tests/registry/test_evaluation_fit.py
test-other-cpu: setup ## numerical fast tests again under the other CPU kind's kernels (CI runs it; docs/development.md)
	.ci/other-cpu $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal -m "not slow and not network" \
		$(NUMERIC_TESTS) $(ARGS)

test-fast: setup ## fast tests only (no slow end-to-end or model-quality tests, no network)
	$(BIN)/python -m pytest -m "not slow and not network" $(ARGS)

lint: setup ## ruff
	$(BIN)/ruff check src flows tests bench

bench: setup ## benchmarks (docs/benchmarks.md): throughput, malloc thresholds (allocator), the command's start-up (command), quality, intervals, served (unseen days) and served_years (every year-end), stages, portfolio, drift, promotion, walk-forward, the REST service, refit (and its epochs), warm start
	$(BIN)/python bench/run.py $(ARGS)

ui: setup ## MLflow UI on the embedded store at http://127.0.0.1:5000 (UI_PORT=...); prints the links to open (TRACKING_URI=http://...: a served MLflow's links instead)
ifneq ($(filter http://% https://%,$(TRACKING_URI)),)
	$(BIN)/python -m stockcast.registry.ui_links "$(TRACKING_URI)"
else
	@$(BIN)/python -m stockcast.registry.ui_links "$(STORE)" http://127.0.0.1:$(UI_PORT) 2>/dev/null || true
	XDG_CONFIG_HOME="$(abspath $(STOCKCAST_HOME))/.config" $(BIN)/mlflow ui --backend-store-uri "$(STORE)" \
		--default-artifact-root "$(abspath $(STOCKCAST_HOME))/mlflow/artifacts" --host 127.0.0.1 --port $(UI_PORT) \
		--workers $(UI_WORKERS)
endif

server: setup ## a local Prefect server at http://127.0.0.1:4200 (PREFECT_PORT=...)
	PREFECT_UI_API_URL=http://127.0.0.1:$(PREFECT_PORT)/api \
		$(BIN)/prefect server start --host 127.0.0.1 --port $(PREFECT_PORT)

deploy: setup ## create the work pool and deploy prefect.yaml (needs `make server`)
	PREFECT_API_URL=http://127.0.0.1:$(PREFECT_PORT)/api $(BIN)/prefect work-pool create $(POOL) --type process || true
	PREFECT_API_URL=http://127.0.0.1:$(PREFECT_PORT)/api $(BIN)/prefect --no-prompt deploy --all

worker: setup ## a worker that runs scheduled flow runs (needs `make server`; TRACKING_URI=... for a served MLflow)
	PREFECT_API_URL=http://127.0.0.1:$(PREFECT_PORT)/api $(if $(TRACKING_URI),MLFLOW_TRACKING_URI="$(TRACKING_URI)") \
		$(BIN)/prefect worker start --pool $(POOL)

serve: setup ## one-process alternative: serve both flows on their schedules
	$(BIN)/python -m flows.serve

serve-model: setup ## REST endpoint for a champion at http://127.0.0.1:5001/invocations (TICKER=GOOG MODEL_PORT=...)
	$(BIN)/stockcast serve-model --ticker $(TICKER) --port $(MODEL_PORT) $(ARGS)

clean: ## remove caches, logs, outputs and the venv (keeps the MLflow store and data)
	rm -rf $(VENV) .pytest_cache .ruff_cache logs forecasts reports bench/results
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

clean-store: ## delete the embedded MLflow store (all runs and registered models!)
	rm -rf mlflow/mlflow.db mlflow/artifacts
