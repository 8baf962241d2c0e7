# Set-up and entry points. `make demo` and `make test` each build .venv on first use
# (torch first, from the exact pin that has a CPU wheel here), then run.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev,bench,distributed
STAMP := $(VENV)/.installed-$(EXTRAS)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PYTHONHASHSEED := 0

.PHONY: setup demo test test-slow lint bench clean

setup: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Re-installs only when pyproject.toml changes; the package is installed editable.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

# Exit code 1 means an instruction failed: the run worked and its report says so, so the demo goes on; a bad input
# (2) or a crash (3) stops it.
TOLERATE_FAILED_TASK = || test $$? -eq 1

demo: setup
	$(VENV)/bin/embodia demo --out runs/demo $(TOLERATE_FAILED_TASK)
	$(VENV)/bin/embodia run "move the gripper to the mug" --skills learned --out runs/demo/learned $(TOLERATE_FAILED_TASK)
	$(VENV)/bin/embodia run "put the yellow block in the drawer and close it" --perception learned \
		--out runs/demo/perceived $(TOLERATE_FAILED_TASK)

test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

test-slow: setup
	$(PY) -m pytest -q -m slow

lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	$(VENV)/bin/embodia bench env

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache *.egg-info
