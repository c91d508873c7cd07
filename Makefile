# sclab: `make reproduce` runs every notebook with the quick preset and rebuilds outputs/REPORT.md;
# `make test` runs the test suite. Both install into .venv first when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.sclab-installed
PRESET ?= quick
# benchmark data (GSM8K, MATH500, ...) is read from here, never copied into the project
SCLAB_DATA_DIR ?= $(abspath ../shared/data)
export SCLAB_DATA_DIR

.PHONY: install reproduce test test-fast lab clean-outputs

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name sclab --display-name "Python (sclab)"
	touch $(STAMP)

reproduce: install
	$(BIN)/sclab run --all --preset $(PRESET)

test: install
	$(BIN)/python -m pytest

test-fast: install  # unit tests only: no model, seconds
	$(BIN)/python -m pytest -m unit

lab: install
	$(BIN)/jupyter lab notebooks/
