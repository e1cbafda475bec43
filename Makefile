# Boomerang's front door. Every target creates .venv on first use; CI runs `make test` (.ci/run).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help install browser demo local test unit integration infra e2e lint format bench bench-report synth deploy assets clean

help:
	@echo "make demo    replay the demo scenario on the local emulator"
	@echo "make local   run the local emulator on 127.0.0.1:8787"
	@echo "make test    run every test offline (unit, integration, infrastructure, e2e)"
	@echo "make lint    ruff + mypy"
	@echo "make bench   throughput, cold imports, AWS calls per event, state transitions, cost"
	@echo "make bench-report   the report λ's collect phase on a synthetic 20,000-customer store"
	@echo "make synth   CDK synth (no Docker)      make deploy   cdk deploy"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# Debian's Chromium and ChromeDriver: the outbox page's browser test and `boomerang templates
# preview`'s PNG. Installed once (as root, or with sudo); skipped when both are already there.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; else \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing Debian chromium + chromium-driver (browser tests, template previews)"; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; \
	fi

demo: $(STAMP)
	$(PY) -m infra.local demo

local: $(STAMP)
	$(PY) -m infra.local local

test: $(STAMP) browser
	$(PY) -m pytest -q

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

integration: $(STAMP)
	$(PY) -m pytest -q tests/integration

infra: $(STAMP)
	$(PY) -m pytest -q tests/infrastructure

e2e: $(STAMP) browser
	$(PY) -m pytest -q tests/e2e

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy shared functions infra

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(STAMP)
	$(PY) -m tests.bench

bench-report: $(STAMP)
	$(PY) -m tests.bench_report

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

assets: $(STAMP)
	$(PY) -m infra.assets

synth: $(STAMP) node_modules/.installed
	npx cdk synth --quiet

deploy: $(STAMP) node_modules/.installed
	npx cdk deploy --require-approval broadening $(if $(SENDER),-c senderDomain=$(SENDER)) $(if $(API),-c api=$(API))

clean:
	rm -rf build cdk.out .boomerang node_modules .pytest_cache .mypy_cache .ruff_cache
