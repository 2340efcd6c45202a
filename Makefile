# customs-stream: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup demo test test-compiled test-pure lint bench services build clean help

help:
	@echo "make setup      create .venv, install the project (editable, test extras), build the compiled core, install services"
	@echo "make demo       run the main job on the embedded defaults (broker, worker, load, summary)"
	@echo "make test       lint, then the whole suite twice: on the compiled core, then on the pure-Python twins"
	@echo "make test-compiled / test-pure   the suite once, on one backend (CUSTOMS_STREAM_PUREPYTHON=1: the twins)"
	@echo "make lint       ruff: undefined names, unused imports, syntax errors"
	@echo "make bench      pytest-benchmark suites and the core figures"

setup: $(STAMP) build services

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Build requirements go into the venv itself so `build` can rebuild extensions in place.
$(STAMP): $(PY) setup.py pyproject.toml
	$(PY) -m pip install --quiet "setuptools>=68" wheel "cython>=3.0" "numpy>=1.26"
	$(PY) -m pip install --quiet --no-build-isolation -e '.[test]'
	touch $(STAMP)

# Rebuilds only the extensions whose sources changed (Cython and setuptools compare timestamps).
build: $(STAMP)
	$(PY) setup.py --quiet build_ext --inplace

services:
	@bash scripts/install-services.sh

demo: setup
	$(VENV)/bin/customs-stream demo

lint: $(STAMP)
	$(VENV)/bin/ruff check stream tests bench scripts

# Both backends, as msgpack's own `make test` does: the twins are the reference the compiled kernels
# are held to, and a defect only one of them has must fail CI (tests/test_*kernel*, test_engine).
test: setup lint
	CUSTOMS_STREAM_PUREPYTHON=0 $(PY) -m pytest --durations=15
	CUSTOMS_STREAM_PUREPYTHON=1 $(PY) -m pytest --durations=15

test-compiled: setup
	CUSTOMS_STREAM_PUREPYTHON=0 $(PY) -m pytest

test-pure: setup
	CUSTOMS_STREAM_PUREPYTHON=1 $(PY) -m pytest

bench: setup
	$(PY) -m pytest bench --benchmark-only
	$(VENV)/bin/customs-stream bench core

clean:
	rm -rf build var *.egg-info stream/**/*.so ext/*.c
