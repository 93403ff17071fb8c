# Two commands on a fresh machine: `make demo` (install everything, run the embedded default)
# and `make test` (install everything, run the tests). Both create .venv themselves.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch (on this project's machines a local wheel; elsewhere PyPI's build).
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: install demo test test-all lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e '.[all,dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/tamis demo

test: install
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

test-all: install
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check tamis tests benchmarks
	$(VENV)/bin/ruff format --check tamis tests benchmarks
	$(VENV)/bin/mypy tamis

bench: install
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf .tamis mlruns .pytest_cache .mypy_cache .ruff_cache
