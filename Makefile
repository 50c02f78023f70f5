# `make train ARGS="--set key=value ..."` runs the pipeline; `make test` runs the whole test suite
# (what CI runs), `make test-fast` all but the slow tests.
# Both create the virtual environment .venv on first use. `make test-colab` runs the notebook on
# Colab's pinned stack in a fresh .venv-colab (.ci/colab_stack.sh).
VENV ?= .venv
PYTHON := $(VENV)/bin/python

$(VENV)/installed: requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -r requirements-dev.txt
	touch $@

.PHONY: setup train test test-fast test-colab lint
setup: $(VENV)/installed

train: setup
	$(PYTHON) train.py $(ARGS)

test: setup
	$(PYTHON) -m pytest

# Everything but the tests marked slow (training runs, subprocesses, the notebook): the daily lane.
test-fast: setup
	$(PYTHON) -m pytest -m "not slow"

test-colab:
	bash .ci/colab_stack.sh

lint: setup
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
