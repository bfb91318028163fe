# Two entry points (see README): `make submission` (the main job) and `make test`.
# Both create .venv/ once: the pinned requirements (requirements.txt, the lock), the helper package installed
# editable from this checkout (pyproject.toml: the `tinyvoc` command), then detectron2.
PYTHON ?= python3
VENV := .venv
PY := $(CURDIR)/$(VENV)/bin/python
TINYVOC := $(CURDIR)/$(VENV)/bin/tinyvoc

.PHONY: submission test setup lint browser pictures

setup: $(VENV)/.ready

$(VENV)/.ready: requirements.txt pyproject.toml notebooks/tinyvoc/runtime/detectron2_install.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --no-input -r requirements.txt
	$(PY) -m pip install --no-input --no-deps --no-build-isolation -e .
	$(TINYVOC) install-detectron2
	touch $@

submission: $(VENV)/.ready
	$(TINYVOC) run-all --profile smoke --dataset sample --val-fraction 0.2

# Two workers (pytest-xdist), each running whole test files (--dist loadfile), so a module's shared fixture is made
# once: 14.5 min for 562 tests on a quiet 2-core machine (one process took 19 min for 471: docs/measurements.md).
# TEST_WORKERS=0: one process. Ends with the 25 slowest steps (setup, call and teardown listed apart: a shared fixture shows as the setup
# of the first test that uses it).
TEST_WORKERS ?= 2
test: $(VENV)/.ready
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=25

# The README's and docs' pictures from the main job's model, beside a second recipe (docs/pictures.py).
pictures: submission
	$(TINYVOC) train --opts SOLVER.BASE_LR 0.01
	$(PY) docs/pictures.py

lint: $(VENV)/.ready
	$(PY) -m ruff check . && $(PY) -m ruff format --check . && $(VENV)/bin/lint-imports

# Debian's headless Chromium and its driver, for tests/test_browser_view.py (CI runs this as root on a fresh
# machine, see .ci/run); quiet, and nothing to do when both are there.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }
