# Every target installs what it needs: a fresh clone needs only `make run` / `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TOOLS := .tools
CHECKOV := $(TOOLS)/checkov/bin/checkov
HELM_PY := $(TOOLS)/helm/bin/python
EXAMPLE ?= examples/fastapi-service
# Node packages the tests use (Ajv, the AsyncAPI parser) and the Node client example's `nats`.
NODE_DIRS := tests/node examples/clients/node
NODE_STAMPS := $(addsuffix /node_modules/.package-lock.json,$(NODE_DIRS))

.PHONY: install run test lint format bench checkov helm-tools node-packages schema generate clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# npm ci installs exactly the committed lock file; install scripts are not needed (and skipped).
%/node_modules/.package-lock.json: %/package-lock.json %/package.json
	cd $* && npm ci --no-audit --no-fund --ignore-scripts

node-packages: $(NODE_STAMPS)

# checkov pins old packages, so it lives in its own tool venv (docs/artifacts.md: validators).
$(CHECKOV):
	test -x $(TOOLS)/checkov/bin/python || $(PYTHON) -m venv $(TOOLS)/checkov
	$(TOOLS)/checkov/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/checkov/bin/python -m pip install --quiet 'checkov>=3.2'

checkov: $(CHECKOV)

helm-tools: $(HELM_PY)

# Helm's Go SDK wrapped for Python: renders and lints deploy/helm without a helm binary.
$(HELM_PY):
	test -x $(HELM_PY) || $(PYTHON) -m venv $(TOOLS)/helm
	$(HELM_PY) -m pip install --quiet --upgrade pip
	$(HELM_PY) -m pip install --quiet 'helm-python-sdk>=0.2,<0.3' pyyaml

run: $(STAMP)
	$(BIN)/orchestra demo --project $(EXAMPLE)

test: $(STAMP) $(CHECKOV) $(HELM_PY) $(NODE_STAMPS)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	ORCHESTRA_CHECKOV=$(abspath $(CHECKOV)) ORCHESTRA_HELM_PYTHON=$(abspath $(HELM_PY)) \
		$(BIN)/python -m pytest -q

# Every file derived from the contracts and the agent registry (contracts/agents.py): deploy
# (auth.conf, compose, Helm values and schema, deploy/k8s), the JSON Schemas and AsyncAPI document,
# the event tables of docs/events.md. A test fails while one of them is stale.
generate: $(STAMP) $(HELM_PY)
	ORCHESTRA_HELM_PYTHON=$(abspath $(HELM_PY)) $(BIN)/python -m deploy.render
	$(BIN)/orchestra contracts export
	$(BIN)/python -m tests.test_docs

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

schema: $(STAMP)
	$(BIN)/orchestra contracts export

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .ruff_cache .orchestra $(addsuffix /node_modules,$(NODE_DIRS))
