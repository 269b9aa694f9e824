# `make train` trains + evaluates the default model; `make test` runs the test suite.
# Both create the virtual environment on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
# The CPU build of torch; set TORCH_SPEC (e.g. TORCH_SPEC=torch) to install another build.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install train test clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet "$(TORCH_SPEC)"
	$(VENV)/bin/pip install --quiet -e ".[dev]"
	touch $(STAMP)

train: $(STAMP)
	$(VENV)/bin/python scripts/train.py --config configs/sst2.yaml

test: $(STAMP)
	$(VENV)/bin/python -m pytest

clean:
	rm -rf $(VENV) runs
