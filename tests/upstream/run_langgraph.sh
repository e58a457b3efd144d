#!/usr/bin/env bash
# LangGraph's own graph tests, run against LoomSaver (see tests/upstream/README.md).
#
# Fetches the langgraph sdist (tests/upstream/fetch_sdists.py), then runs its
# graph tests from the sdist folder, under its own pytest config and
# conftest, with tests/upstream/langgraph/loom_checkpointers.py swapping
# their checkpointer fixtures for LoomSaver. Extra arguments go to pytest;
# when the first one is a test path (tests/...), only the given tests run.
#
# Environment: PY (the interpreter, default .venv/bin/python),
# LOOMDB_UPSTREAM_WORKERS (xdist workers, default 2; 0 runs in-process),
# LOOMDB_UPSTREAM_CHECKPOINTERS (default loom_sqlite,loom_postgres).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
PY="${PY:-$root/.venv/bin/python}"
case "$PY" in /*) ;; *) PY="$root/$PY" ;; esac

# The graph tests: every test file of the sdist that takes the sync_checkpointer
# or async_checkpointer fixture (the others never touch a saver).
TESTS=(
	# the Pregel engine, sync and async
	tests/test_pregel.py tests/test_pregel_async.py
	tests/test_large_cases.py tests/test_large_cases_async.py
	tests/test_pydantic.py
	# replay and fork from past checkpoints
	tests/test_time_travel.py tests/test_time_travel_async.py
	# subgraphs' own checkpoints, interrupts and resumes
	tests/test_subgraph_persistence.py tests/test_subgraph_persistence_async.py
	tests/test_interruption.py tests/test_interrupt_state.py tests/test_strict_resume.py
	# delta channels (the saver's get_delta_channel_history) and older checkpoints
	tests/test_delta_channel_exit_mode.py tests/test_delta_channel_fork.py
	tests/test_delta_channel_parallel_order.py tests/test_delta_channel_subgraph.py
	tests/test_delta_channel_to_plain.py tests/test_delta_channel_update_state.py
	tests/test_checkpoint_migration.py
)

# Arguments that start with test paths (tests/test_pregel.py::test_x) run those instead.
if [[ "${1:-}" == tests/* ]]; then TESTS=(); fi

sdist="$("$PY" "$here/fetch_sdists.py" langgraph)"

# Their conftest drops the docker-backed savers, stores and caches (postgres,
# redis) when NO_DOCKER is exactly "true".
export NO_DOCKER=true
export PYTHONPATH="$here/langgraph${PYTHONPATH:+:$PYTHONPATH}"

# Their pytest config (the sdist's pyproject.toml) applies, but for its
# --full-trace, whose tracebacks through pytest's own frames bury failures.
cd "$sdist"
exec "$PY" -m pytest -p loom_checkpointers -p no:cacheprovider \
	-o "addopts=--strict-markers --strict-config --durations=5 --snapshot-warn-unused" \
	-n "${LOOMDB_UPSTREAM_WORKERS:-2}" -q --tb=short ${TESTS[@]+"${TESTS[@]}"} "$@"
