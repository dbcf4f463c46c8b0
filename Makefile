# The single entry point: CI and people call only these targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      := .venv
SAM_VENV  := .venv-sam
PY        := $(VENV)/bin/python
# make demo BUILDS=docker: real builds on the emulator's own dockerd (docs/emulator.md)
BUILDS    ?= embedded
SAM       := $(SAM_VENV)/bin/sam
# sam build needs a python3.12 on PATH for the python3.12 runtime: the project venv has one.
# The template's Fn::ForEach loops (AWS::LanguageExtensions) are expanded by SAM CLI itself.
SAM_ENV   := PATH="$(abspath $(VENV))/bin:$$PATH" SAM_CLI_TELEMETRY=0 SAM_CLI_CONTAINER_CONNECTION_TIMEOUT=1 SAM_CLI_ENABLE_LANGUAGE_EXTENSIONS=1
# The template parameters that follow from pipeline.yaml: the applications, never written twice.
STACK_PARAMETERS = $$($(PY) -m ecr_pipeline.stack pipeline.yaml)
PIP_QUIET := --quiet --disable-pip-version-check

.PHONY: help setup demo test lint unit integration e2e build validate bench deploy preflight status clean

help:
	@echo "make demo   run the whole pipeline on the embedded AWS stand-in (no account needed)"
	@echo "make test   lint, type-check, unit + integration + e2e tests, sam validate --lint, sam build"
	@echo "make lint | unit | integration | e2e | build | validate | bench | deploy | clean"
	@echo "make preflight ARGS='--slack-secret NAME'   check pipeline.yaml against the account (read-only)"
	@echo "make status ARGS='--commit SHA --stack NAME'   the story of a push (read-only; ARGS=--help)"
	@echo "make status ARGS='--metrics --ledger-table T'   delivery metrics from the ledger (read-only)"

# --- environments: made from nothing, pinned by the lock files ------------------------------
$(VENV)/.installed: requirements/dev.lock layers/common/pyproject.toml
	@py=$$(scripts/python312) && echo "creating $(VENV) with $$py" && rm -rf $(VENV) && $$py -m venv $(VENV)
	$(PY) -m pip install $(PIP_QUIET) -r requirements/dev.lock
	@# The layer's package, editable: imported from layers/common by tests, emulator and scripts.
	$(PY) -m pip install $(PIP_QUIET) --no-deps --config-settings editable_mode=compat -e layers/common
	@touch $@

$(SAM_VENV)/.installed: requirements/sam.lock
	@py=$$(scripts/python312) && echo "creating $(SAM_VENV) (SAM CLI, its own pins) with $$py" && rm -rf $(SAM_VENV) && $$py -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install $(PIP_QUIET) -r requirements/sam.lock
	@touch $@

setup: $(VENV)/.installed $(SAM_VENV)/.installed

# --- the two commands ------------------------------------------------------------------------
demo: $(VENV)/.installed
	$(PY) -m emulator demo --builds $(BUILDS)

test: setup
	@set -o pipefail; failed=(); \
	for step in lint unit integration e2e validate build; do \
	  echo "=== make $$step"; \
	  $(MAKE) --no-print-directory $$step || failed+=($$step); \
	done; \
	if [ $${#failed[@]} -gt 0 ]; then echo "FAILED: $${failed[*]}"; exit 1; fi; \
	echo "make test: all steps passed"

# --- the steps -------------------------------------------------------------------------------
lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

unit: $(VENV)/.installed
	$(PY) -m pytest -q tests/unit

integration: $(VENV)/.installed
	$(PY) -m pytest -q tests/integration

e2e: $(VENV)/.installed
	$(PY) -m pytest -q tests/emulator tests/e2e

validate: $(SAM_VENV)/.installed $(VENV)/.installed
	$(SAM_ENV) $(SAM) validate --lint --template-file template.yaml
	$(SAM_VENV)/bin/cfn-lint --include-checks I -- template.yaml
	$(SAM_VENV)/bin/cfn-lint --include-checks I -- targets/ecs-service/template.yaml
	@# The template as CloudFormation sees it for a pipeline.yaml (loops expanded, parameters given):
	@# the shipped one, and one with a second application.
	$(PY) -m emulator.template template.yaml pipeline.yaml .aws-sam/expanded/shipped.json
	$(PY) -m emulator.template template.yaml emulator/scenarios/applications.pipeline.yaml .aws-sam/expanded/applications.json
	$(SAM_VENV)/bin/cfn-lint --include-checks I -- .aws-sam/expanded/shipped.json .aws-sam/expanded/applications.json

build: $(SAM_VENV)/.installed $(VENV)/.installed
	$(SAM_ENV) $(SAM) build --template-file template.yaml --parameter-overrides "$(STACK_PARAMETERS)"

bench: build
	$(PY) bench/cold_start.py
	$(PY) bench/push_to_deploy.py
	$(PY) bench/build_economy.py

# Stage and LogLevel come from samconfig.toml's environment; the applications from pipeline.yaml.
deploy: build
	@overrides="$$($(PY) scripts/deploy_parameters.py $(or $(ENV),default))" && \
	  $(SAM_ENV) $(SAM) deploy $(if $(ENV),--config-env $(ENV),) --parameter-overrides "$$overrides"

# Read-only: does the account have what pipeline.yaml names? ARGS: see `make preflight ARGS=--help`.
preflight: $(VENV)/.installed
	PYTHONPATH=layers/common $(PY) -m ecr_pipeline.preflight $(ARGS)

# Read-only: the story of a push, or (--metrics) delivery metrics, from the stack's ledger and services;
# `ecr-pipeline status` of the installed package. ARGS: see `make status ARGS=--help`.
status: $(VENV)/.installed
	PYTHONPATH=layers/common $(PY) -m ecr_pipeline.cli status $(ARGS)

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
