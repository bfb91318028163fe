# Two entry points (see README): `make submission` (the main job) and `make test`.
# Both create .venv/ with the pinned requirements and detectron2 first, once.
PYTHON ?= python3
VENV := .venv
PY := $(CURDIR)/$(VENV)/bin/python

.PHONY: submission test setup lint

setup: $(VENV)/.ready

$(VENV)/.ready: requirements.txt notebooks/tinyvoc/install.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --no-input -r requirements.txt
	cd notebooks && $(PY) -m tinyvoc install-detectron2
	touch $@

submission: $(VENV)/.ready
	cd notebooks && $(PY) -m tinyvoc run-all --profile smoke --dataset sample --val-fraction 0.2

test: $(VENV)/.ready
	$(PY) -m pytest

lint: $(VENV)/.ready
	$(PY) -m ruff check . && $(PY) -m ruff format --check .
