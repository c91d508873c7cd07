# sclab: `make reproduce` re-runs every recorded notebook (quick preset) into reproduced/ and verifies
# the committed results in outputs/ against it; `make record` records them into outputs/ and rebuilds
# outputs/REPORT.md; `make test` runs the test suite. All install into .venv first when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.sclab-installed
PRESET ?= quick
# benchmark data (GSM8K, MATH500, ...) is read from here, never copied into the project; exported
# only when the folder exists, so that without it the tasks fall back to the hub copies
SCLAB_DATA_DIR ?= $(wildcard $(abspath ../shared/data))
ifneq ($(SCLAB_DATA_DIR),)
export SCLAB_DATA_DIR
endif

.PHONY: install reproduce record verify test test-fast lab clean-outputs

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name sclab --display-name "Python (sclab)"
	touch $(STAMP)

reproduce: install
	$(BIN)/sclab reproduce --preset $(PRESET)

verify: install
	$(BIN)/sclab verify --preset $(PRESET)

record: install
	$(BIN)/sclab run --all --preset $(PRESET)

test: install
	$(BIN)/python -m pytest

test-fast: install  # unit tests only: no model, seconds
	$(BIN)/python -m pytest -m unit

lab: install
	$(BIN)/jupyter lab notebooks/
