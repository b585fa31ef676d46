# The README's two commands. Each works on a fresh machine with only Python 3.11:
#   make repro   set up .venv, then run the pipeline (dvc repro) with a local Prefect server
#   make test    set up .venv, then run the whole test suite
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.dscoder-installed

export PREFECT_HOME := $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1
export DVC_SITE_CACHE_DIR := $(CURDIR)/.dvc/tmp/site-cache
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: repro test venv bench ui clean-venv

venv: $(STAMP)

# torch first and alone: pip takes the pinned CPU build from local disk (README, "The two commands");
# then everything else, every transitive version fixed by requirements.lock.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "pip==26.3"
	$(BIN)/pip install --quiet -c requirements.lock "torch==2.13.0"
	$(BIN)/pip install --quiet -c requirements.lock -e ".[test,ray]"
	touch $(STAMP)

repro: $(STAMP)
	$(BIN)/python -m flows.server -- dvc repro

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/ingest_filter.py

ui: $(STAMP)
	$(BIN)/prefect server start --host 127.0.0.1 --port 4200

clean-venv:
	rm -rf $(VENV)
