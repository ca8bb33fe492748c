# batchkit -- the two commands a newcomer needs:
#   make demo   creates .venv, installs batchkit, runs a small real workflow on the local backend
#   make test   (as root, Debian 12) installs and starts the real services, then runs lint,
#               type checks, the docs build and the whole test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# what the test suite needs from PyPI (the extras are declared in pyproject.toml)
TEST_EXTRAS := test,docs,htcondor,xrootd,law,b2luigi

.PHONY: demo test venv test-venv services lint typecheck docs compat39 unit pytest bench clean

$(VENV)/bin/python:
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { \
	  echo "python3 has no venv/ensurepip; installing python3-venv"; \
	  apt-get update -q && apt-get install -y -q python3-venv python3-pip; }
	$(PYTHON) -m venv $(VENV)

venv: $(VENV)/bin/python
	$(PIP) install -q -e .

demo: venv
	$(VENV)/bin/batchkit demo --dir demo-run

# ---------------------------------------------------------------- make test
services:
	bash tests/services/up.sh

test-venv: $(VENV)/bin/python
	$(PIP) install -q -e '.[$(TEST_EXTRAS)]'
	bash tests/services/gfal2-python.sh $(VENV)

lint:
	$(VENV)/bin/ruff check batchkit adapters tests bench
	$(VENV)/bin/ruff format --check batchkit adapters tests bench

typecheck:
	$(VENV)/bin/mypy

docs:
	$(VENV)/bin/mkdocs build --strict --site-dir site

pytest:
	$(PY) -m pytest -ra

# The core must keep working on el9's Python 3.9: when this machine has one, run the core's
# tests with it in a throwaway venv.
PY39 := $(firstword $(wildcard $(HOME)/.pyenv/versions/3.9*/bin/python) $(shell command -v python3.9 2>/dev/null))
CORE_TESTS := tests/unit/test_units.py tests/unit/test_model.py tests/unit/test_jobsfile.py \
	tests/unit/test_runner.py tests/unit/test_registry.py tests/unit/test_record.py \
	tests/unit/test_wrapper.py tests/integration/test_submission.py
compat39:
	@if [ -z "$(PY39)" ]; then echo "compat39: no Python 3.9 on this machine, not checked"; else \
	  rm -rf .venv39 && $(PY39) -m venv .venv39 && .venv39/bin/python -m pip install -q -e . pytest pytest-timeout && \
	  .venv39/bin/python -m pytest -q -p no:cacheprovider $(CORE_TESTS); fi

test: services test-venv lint typecheck docs compat39 pytest

# ---------------------------------------------------------------- extras
unit: test-venv
	$(PY) -m pytest -ra tests/unit

bench:
	$(PY) bench/specs_overhead.py

clean:
	rm -rf $(VENV) .venv39 site demo-run .mypy_cache .ruff_cache .pytest_cache
