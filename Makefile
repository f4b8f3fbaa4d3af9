# The README's commands. Everything installs from this repository's own files.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# checkov pins boto3/botocore far below ours, so it gets a virtualenv of its own.
CHECKOV_VENV := .venv-checkov
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

# The two virtualenvs, the CDK CLI and Chromium install at the same time on a fresh machine, and
# the linters run beside the tests. pip compiles no byte code at install (half its time): Python
# compiles what is imported, on first import.
MAKEFLAGS += --jobs=3

PORT ?= 3000
AWS_PORT ?= 5000
FAULTS ?=

.PHONY: setup local test pytest chromium lint synth bench openapi lock verify-arm64 clean

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt tasks/requirements.txt pyproject.toml
	@echo "Installing the Python packages into $(VENV)/ (a first run, or changed requirements: one to three minutes, quiet) ..."
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --no-compile -r requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@
	@echo "Python packages installed."

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	@echo "Installing checkov into $(CHECKOV_VENV)/ (a first run only, quiet) ..."
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check --no-compile \
		-r requirements-checkov.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	@echo "Installing the pinned CDK CLI into node_modules/ (npm ci) ..."
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Local mode: the synthesized stack running on emulated AWS services. FAULTS takes --fault and
# --delay options (README "See what an outage looks like").
local: setup
	$(BIN)/python -m local --port $(PORT) --aws-port $(AWS_PORT) $(FAULTS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

# The linters and the tests run side by side: mypy takes one core for minutes, and the tests
# leave one free for as long while their last group finishes.
test: lint pytest

pytest: setup $(CHECKOV_VENV)/.installed chromium
	$(BIN)/pytest

# upload-ops history --html is tested in a real browser: Debian's Chromium, headless.
chromium:
	@command -v chromium >/dev/null || echo "Installing Debian's chromium (apt-get, quiet) ..."
	command -v chromium >/dev/null || { apt-get install -y -qq --no-install-recommends chromium \
		>/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq \
		--no-install-recommends chromium >/dev/null; }; }

# What `cdk deploy` would ship, through the pinned CDK CLI and cdk.json.
synth: setup
	PATH="$(abspath $(BIN)):$$PATH" npx cdk synth --quiet

# Performance benchmark (not part of `make test`): take final figures on a quiet machine.
bench: setup
	$(BIN)/python -m bench $(BENCH_ARGS)

# After changing a route, a request rule, a limit or an outcome: regenerate docs/openapi.json
# (tests/unit/test_openapi.py fails while it is out of date).
openapi: setup
	$(BIN)/python -m infra.openapi

# After editing tasks/requirements.txt: resolve the dependencies layer for Lambda (arm64, Python
# 3.13) into tasks/requirements.lock, every file hashed (needs the package index).
lock: setup
	$(BIN)/python -m infra.layer_lock

# The Lambda functions as synthesized (cdk.out), run on their target: Debian's arm64 Python 3.13
# under qemu-user, against local mode's emulated AWS (README "Run what ships on arm64"). The root
# file system and the runtime's boto3 are built once, cached outside the repository.
verify-arm64: setup synth
	command -v debootstrap >/dev/null && command -v qemu-aarch64-static >/dev/null || \
		{ apt-get update -qq && apt-get install -y --no-install-recommends debootstrap qemu-user-static; }
	$(BIN)/python -m verify

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules cdk.out
