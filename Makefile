# MLOps interview labs — the project's menu. `make` (or `make help`) lists every target.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# uv: the one on PATH, else the interpreter's own module, else a private bootstrap venv —
# never `pip install` into the system Python (Debian's is "externally managed").
UV_BOOT := .uv-bootstrap
UV := $(shell command -v uv 2>/dev/null || { $(PYTHON) -m uv --version >/dev/null 2>&1 && \
	echo "$(PYTHON) -m uv"; } || echo "$(UV_BOOT)/bin/uv")
MLFLOW_PORT ?= 5000

# Offline and quiet: no telemetry from MLflow, Prefect or DVC; uv never downloads a Python.
export DO_NOT_TRACK := true
export MLFLOW_DISABLE_TELEMETRY := true
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DVC_NO_ANALYTICS := 1
export UV_PYTHON_DOWNLOADS := never
# DVC stages run `python …`: only DVC's commands get the venv first on PATH. (Exporting it
# globally would make `python3` below mean the venv's, which has neither uv nor pip.)
WITH_VENV := PATH="$(CURDIR)/$(BIN):$$PATH"

VENV_STAMP := $(VENV)/.installed
DATA_STAMP := $(VENV)/.data-built
DATA_OUTS := data/raw/churn.csv data/prepared/train.csv data/prepared/holdout.csv models/churn-model.skops
# Outputs deleted by hand → rebuild even if the stamp says otherwise.
ifneq ($(words $(wildcard $(DATA_OUTS))),$(words $(DATA_OUTS)))
.PHONY: $(DATA_STAMP)
endif

# Colour only on a terminal.
CYAN := $(shell test -t 1 && printf '\033[36m')
RESET := $(shell test -t 1 && printf '\033[0m')

.PHONY: help setup lock test test-counterfactuals test-katas test-integration test-matrix lint format bench mlflow-ui repro clean prefect-up prefect-down \
	stack-up stack-down stack-status

help: ## Show this menu
	@echo "MLOps interview labs — make <target>"
	@echo
	@awk -v c="$(CYAN)" -v r="$(RESET)" 'BEGIN {FS = ":.*## "} \
		/^[a-zA-Z0-9_-]+:.*## / {printf "  %s%-16s%s %s\n", c, $$1, r, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "Labs — make lab-<topic>, one per interview question:"
	@$(PYTHON) -m labs.common.catalogue make-help
	@echo
	@echo "The first target you run installs everything (uv → .venv from requirements.lock; needs the"
	@echo "package registry or a warm uv cache) and builds the data. After that, all runs are offline."

# --- set-up ---------------------------------------------------------------------------

setup: $(DATA_STAMP) ## Install uv, .venv from the hash-locked requirements.lock, the project, and build the data (dvc repro)
	@echo "setup: up to date (.venv, data, baseline model)"

$(UV_BOOT)/bin/uv:
	@echo "setup: no uv found; installing it into a private venv ($(UV_BOOT)/)"
	$(PYTHON) -m venv $(UV_BOOT)
	$(UV_BOOT)/bin/python -m pip install --quiet --disable-pip-version-check uv

$(VENV_STAMP): requirements.lock pyproject.toml | $(filter $(UV_BOOT)/bin/uv,$(UV))
	@test -x $(BIN)/python || $(UV) venv --quiet --python $(PYTHON) $(VENV)
	@echo "setup: installing the locked packages into $(VENV) (hashes verified)"
	@# Compile bytecode once at install: this environment sets PYTHONDONTWRITEBYTECODE, and
	@# without .pyc files every process recompiles MLflow, Evidently and Prefect (seconds each).
	$(UV) pip sync --quiet --compile-bytecode --python $(BIN)/python --require-hashes requirements.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .
	@$(BIN)/dvc config core.analytics false && $(BIN)/dvc config core.check_update false
	@# The activated venv talks to the local Prefect server (make prefect-up) and stays quiet.
	@grep -q "mlops-labs env" $(BIN)/activate || printf '%s\n' \
		'# >>> mlops-labs env >>>' \
		'export PREFECT_API_URL="http://127.0.0.1:$${PREFECT_PORT:-4200}/api"' \
		'export PREFECT_HOME="$(CURDIR)/.prefect"' \
		'export DO_NOT_TRACK=true MLFLOW_DISABLE_TELEMETRY=true' \
		'export PREFECT_SERVER_ANALYTICS_ENABLED=false DVC_NO_ANALYTICS=1' \
		'# <<< mlops-labs env <<<' >> $(BIN)/activate
	@touch $@

$(DATA_STAMP): $(VENV_STAMP) dvc.yaml dvc.lock params.yaml
	@echo "setup: building data, baseline model and metrics (dvc repro)"
	$(WITH_VENV) $(BIN)/dvc repro
	@touch $@

lock: ## Re-resolve dependencies into requirements.lock (names, versions, sha256 only)
	$(UV) pip compile pyproject.toml --extra dev --universal --generate-hashes --no-header \
		--python-version 3.11 --quiet -o requirements.lock
	@echo "lock: requirements.lock updated; run 'make setup' to install it"

repro: setup ## Run the DVC pipeline (generate → prepare → train → evaluate); a no-op if nothing changed
	$(WITH_VENV) $(BIN)/dvc repro
	$(BIN)/dvc metrics show

# --- checks ---------------------------------------------------------------------------

lint: $(VENV_STAMP) ## ruff (lint, format) and the import contracts (pipelines → labs.<topic> → labs.common)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(VENV_STAMP) ## ruff: fix what can be fixed and format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: setup lint ## Lint, then the test suite, offline (whole-lab counterfactual reruns: make test-counterfactuals; kata checkers: make test-katas; the team stack: make test-integration)
	$(BIN)/pytest -m "not stack and not counterfactual and not kata"

test-counterfactuals: setup ## Each lab rerun with a broken part: its claim fails, and the numbers say why (~2-3 min)
	$(BIN)/pytest -m counterfactual

test-katas: setup ## Each kata's checker proven honest: its start and wrong fixes fail, its solution passes (four lab runs per kata)
	$(BIN)/pytest -m kata

test-integration: setup ## The team stack end to end (1.5-2.5 min): labs and flows on PostgreSQL-backed MLflow and Prefect, then stack-down
	$(BIN)/pytest -n0 -m stack

test-matrix: ## The suite on every installed Python 3.11–3.13, one venv each (.venv-3.1x)
	@failed=""; for v in 3.11 3.12 3.13; do \
	  py=$$(command -v python$$v) || { echo "test-matrix: python$$v not found, skipped"; continue; }; \
	  echo "== Python $$v ($$py)"; \
	  $(MAKE) VENV=.venv-$$v PYTHON=$$py test || failed="$$failed $$v"; \
	done; test -z "$$failed" || { echo "test-matrix: failed on$$failed"; exit 1; }

bench: setup ## Benchmarks: time and size things, print figures (reports/bench/*.json); fails if a goal is missed
	@failed=""; for script in benchmarks/bench_*.py; do echo "== $$script"; \
	  $(BIN)/python $$script || failed="$$failed $$(basename $$script .py)"; done; \
	test -z "$$failed" || { echo "bench: missed a goal or failed:$$failed"; exit 1; }

# --- CI: the same stages as .github/workflows/ml.yml (labs/cicd/ci.py) ------------------

.PHONY: ci ci-lint ci-unit ci-data ci-repro ci-gate ci-register ci-promote

ci: setup ## CI locally: lint → unit → data → repro → gate → register, stage by stage; stops at the first failure
	$(WITH_VENV) $(BIN)/python -m labs.cicd.ci all

ci-lint: $(VENV_STAMP) ## CI stage: ruff, ruff format, import contracts, the workflow (schema, make steps)
	$(WITH_VENV) $(BIN)/python -m labs.cicd.ci lint

ci-unit: $(VENV_STAMP) ## CI stage: the shared core's unit tests
	$(WITH_VENV) $(BIN)/python -m labs.cicd.ci unit

ci-data: setup ## CI stage: raw and prepared data against the batch schema
	$(WITH_VENV) $(BIN)/python -m labs.cicd.ci data

ci-repro: $(VENV_STAMP) ## CI stage: dvc repro (on a CI runner, a stale committed dvc.lock fails)
	$(WITH_VENV) $(BIN)/python -m labs.cicd.ci repro

ci-gate: setup ## CI stage: the model gate (floors, champion + 2σ margin, offline vs holdout gap)
	$(WITH_VENV) $(BIN)/python -m labs.cicd.ci gate

ci-register: setup ## CI stage: register the gated model with its lineage, alias staging
	$(WITH_VENV) $(BIN)/python -m labs.cicd.ci register

ci-promote: setup ## CI stage after approval: staging → production, audited (PROMOTE_REASON=…)
	$(WITH_VENV) $(BIN)/python -m labs.cicd.ci promote

# --- labs (one target per interview question) ------------------------------------------

# One target for every lab in the catalogue (labs/common/catalogue.py): an unknown lab lists
# the labs, a planned one says so; both exit non-zero before anything is installed.
lab-%:
	@$(PYTHON) -m labs.common.catalogue check $*
	@$(MAKE) setup >/dev/null
	$(BIN)/python -m labs.$*

# --- tools ----------------------------------------------------------------------------

mlflow-ui: setup ## MLflow UI on http://127.0.0.1:5000 (MLFLOW_PORT=… to change) over mlflow.db + mlruns/ or $MLFLOW_TRACKING_URI
	@case "$${MLFLOW_TRACKING_URI:-}" in \
	  http://*|https://*) echo "MLFLOW_TRACKING_URI is a tracking server: its UI is at $$MLFLOW_TRACKING_URI";; \
	  "") echo "MLflow UI on http://127.0.0.1:$(MLFLOW_PORT) (Ctrl-C stops it)"; \
	      MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false exec $(BIN)/mlflow ui --host 127.0.0.1 \
	        --port $(MLFLOW_PORT) --workers 1 --backend-store-uri "sqlite:///$(CURDIR)/mlflow.db" \
	        --default-artifact-root "$(CURDIR)/mlruns";; \
	  *) echo "MLflow UI on http://127.0.0.1:$(MLFLOW_PORT) over $$MLFLOW_TRACKING_URI"; \
	     MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false exec $(BIN)/mlflow ui --host 127.0.0.1 \
	        --port $(MLFLOW_PORT) --workers 1 --backend-store-uri "$$MLFLOW_TRACKING_URI";; \
	esac

prefect-up: setup ## Prefect server on http://127.0.0.1:4200 + the served deployment retrain/retrain, in the background
	$(BIN)/python -m pipelines.local up

prefect-down: ## Stop the Prefect server and the deployment worker started by prefect-up
	@test -x $(BIN)/python && $(BIN)/python -m pipelines.local down || echo "nothing to stop"

stack-up: setup ## Team stack in .stack/: PostgreSQL, MLflow server + Prefect server on it, a work pool with 2 workers; prints the URLs
	$(BIN)/python -m pipelines.stack up

stack-down: ## Stop everything stack-up started (workers, servers, PostgreSQL), by process group
	@test -x $(BIN)/python && $(BIN)/python -m pipelines.stack down || echo "nothing to stop"

stack-status: ## What of the team stack runs and answers (python -m pipelines.stack env: the variables that move a shell onto it)
	@$(BIN)/python -m pipelines.stack status

REPORT_PORT ?= 8000
.PHONY: kata kata-check kata-hint kata-solution kata-reset

kata: setup ## Katas: the list (make kata), or start one (make kata K=<id>): an incident, one file to repair
	@$(BIN)/python -m labs.learning.katas.cli $(if $(K),start $(K),list)

kata-check: setup ## Check your kata file through the lab, on a fresh seed (✓/✗ with the numbers)
	@$(BIN)/python -m labs.learning.katas.cli check $(K)

kata-hint: setup ## The next of the kata's three hints
	@$(BIN)/python -m labs.learning.katas.cli hint $(K)

kata-solution: setup ## The reference solution as a diff against your file, after a first check (APPLY=1 writes it)
	@$(BIN)/python -m labs.learning.katas.cli solution $(K) $(if $(APPLY),--apply)

kata-reset: setup ## Your kata file back at the start (yours is kept as <file>.before-reset)
	@$(BIN)/python -m labs.learning.katas.cli reset $(K)

.PHONY: labs index report-serve claims-audit

labs: setup ## Run every ready lab (progress, time per lab, failures listed at the end), then build the evidence index
	$(BIN)/python -m labs.index.cli run

claims-audit: setup ## Show every claim can fail: each lab as it is, then under each counterfactual (LABS="drift cicd" for some); ~110-140 R: 18-23 min on 2 slow cores
	$(BIN)/python -m labs.index.cli audit $(LABS)

index: $(VENV_STAMP) ## Build reports/index.html, the evidence index, from the labs' summary.json files
	$(BIN)/python -m labs.index.cli build

report-serve: $(VENV_STAMP) ## Serve reports/ (the evidence index) on http://127.0.0.1:8000 (REPORT_PORT=… to change; Ctrl-C stops it)
	$(BIN)/python -m labs.index.cli serve --port $(REPORT_PORT)

clean: ## Remove generated reports (keeps .venv, data and the MLflow store)
	rm -rf reports
