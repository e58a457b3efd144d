#!/bin/sh
# Run LangGraph's store tests (langgraph-checkpoint's tests/test_store.py) on LoomStore,
# on SQLite, then on PostgreSQL. Expects the sdist at .external/langgraph_checkpoint-<version>/
# (tests/upstream/fetch_sdists.py puts it there). Extra arguments go to pytest.
# Usage: tests/upstream/store/run.sh [-x] [-k pattern]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
python=${PY:-${PYTHON:-$root/.venv/bin/python}}
version=$("$python" -c "import importlib.metadata as m; print(m.version('langgraph-checkpoint'))")
sdist="$root/.external/langgraph_checkpoint-$version"
if [ ! -f "$sdist/tests/test_store.py" ]; then
    echo "error: $sdist/tests/test_store.py is missing; run tests/upstream/fetch_sdists.py" >&2
    exit 1
fi
cd "$sdist"
for engine in sqlite postgres; do
    echo "== test_store.py on LoomStore ($engine)"
    PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" "$python" -m pytest -c "$here/upstream-pytest.ini" \
        --rootdir "$sdist" --loom-engine "$engine" -q "$@" tests/test_store.py
done
