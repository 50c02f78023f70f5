# `make train ARGS="--set key=value ..."` runs the pipeline; `make test` runs the test suite.
# Both create the virtual environment .venv on first use.
VENV ?= .venv
PYTHON := $(VENV)/bin/python

$(VENV)/installed: requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -r requirements-dev.txt
	touch $@

.PHONY: setup train test lint
setup: $(VENV)/installed

train: setup
	$(PYTHON) train.py $(ARGS)

test: setup
	$(PYTHON) -m pytest

lint: setup
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
