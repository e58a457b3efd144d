"""The ``loomdb`` command line: a thin mirror of the Database API."""

from __future__ import annotations

import doctest
import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

import loomdb
from loomdb import cli

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture
def store(store_path):
    """A store with a small ``steps`` table on main: two rows, three commits."""
    with loomdb.connect(store_path) as db:
        db.execute(
            "CREATE TABLE steps (step INT PRIMARY KEY, action TEXT, state JSONB,"
            " embedding VECTOR(1536), done BOOLEAN)"
        )
        for step, action in [(1, "plan"), (2, "act")]:
            db.execute(
                "INSERT INTO steps VALUES (%s, %s, %s, %s, %s)",
                [step, action, {"plan": ["a", "b"], "tokens_used": 10 * step}, [0.5] * 1536, False],
            )
    return store_path


def invoke(*args, env=None):
    """Run the CLI in-process; stdout and stderr stay apart."""
    runner = CliRunner()
    return runner.invoke(cli.cli, list(args), env={"COLUMNS": "250", **(env or {})})


def run_module(*args, env=None):
    """Run ``python -m loomdb.cli`` in a subprocess."""
    full_env = {k: v for k, v in os.environ.items() if k != "LOOMDB_URL"}
    full_env.update({"COLUMNS": "250", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "loomdb.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
    )


def table_rows(output: str) -> list[list[str]]:
    """The cells of every row of a Rich table, header first, borders dropped."""
    rows = []
    for line in output.splitlines():
        if "│" in line or "┃" in line:
            cells = re.split(r"[│┃]", line)[1:-1]
            rows.append([c.strip() for c in cells])
    return rows


def store_exists(location: str) -> bool:
    """Whether a store location (a file path, or a postgresql:// URL with ?schema=) exists."""
    if location.startswith("postgresql://"):
        url, _, schema = location.partition("?schema=")
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema]).fetchone()
        return row is not None
    return os.path.exists(location)


def count(store_path, sql, branch="main"):
    with loomdb.connect(store_path, branch=branch) as db:
        return db.execute(sql).fetchone()[0]


# -- --version and help ------------------------------------------------------


def test_version_prints_the_package_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout == f"loomdb {loomdb.__version__}\n"


def test_python_dash_m_runs_the_cli():
    proc = run_module("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"loomdb {loomdb.__version__}"


def test_help_lists_every_command():
    result = invoke("--help")
    assert result.exit_code == 0
    for name in cli.cli.commands:
        assert name in result.stdout


# -- sql ----------------------------------------------------------------------


def test_sql_select_prints_a_table_with_headers_and_values(store):
    result = invoke("sql", store, "SELECT step, action FROM steps ORDER BY step")
    assert result.exit_code == 0, result.output
    assert table_rows(result.stdout) == [["step", "action"], ["1", "plan"], ["2", "act"]]
    assert "(2 rows)" in result.stdout


def test_sql_shows_vectors_abbreviated_and_json_compact(store):
    result = invoke("sql", store, "SELECT embedding, state, done FROM steps WHERE step = 1")
    assert result.exit_code == 0, result.output
    header, row = table_rows(result.stdout)
    assert header == ["embedding", "state", "done"]
    assert row == ["[0.5, 0.5, … 1536 dims]", '{"plan":["a","b"],"tokens_used":10}', "false"]


def test_sql_shows_null_and_an_empty_result(store):
    result = invoke("sql", store, "SELECT NULL AS missing, step FROM steps WHERE step = 1")
    assert table_rows(result.stdout)[1] == ["NULL", "1"]
    result = invoke("sql", store, "SELECT step FROM steps WHERE step > 100")
    assert result.exit_code == 0, result.output
    assert table_rows(result.stdout) == [["step"]]
    assert "(0 rows)" in result.stdout


def test_sql_write_prints_how_many_rows_changed(store):
    result = invoke("sql", store, "INSERT INTO steps (step, action) VALUES (3, 'x'), (4, 'y')")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "2 rows changed"
    result = invoke("sql", store, "UPDATE steps SET action = 'z' WHERE step = 4")
    assert result.stdout.strip() == "1 row changed"
    assert count(store, "SELECT count(*) FROM steps") == 4


def test_sql_write_with_returning_prints_the_returned_rows(store):
    result = invoke("sql", store, "DELETE FROM steps WHERE step = 2 RETURNING step, action")
    assert result.exit_code == 0, result.output
    assert table_rows(result.stdout) == [["step", "action"], ["2", "act"]]
    assert count(store, "SELECT count(*) FROM steps") == 1


def test_sql_creates_a_new_store(new_store):
    path = new_store()
    result = invoke("sql", path, "CREATE TABLE t (x INT)")
    assert result.exit_code == 0, result.output
    assert invoke("sql", path, "INSERT INTO t VALUES (7)").stdout.strip() == "1 row changed"
    assert count(path, "SELECT x FROM t") == 7


def test_sql_on_a_branch_leaves_main_alone(store):
    with loomdb.connect(store) as db:
        db.branch("run-42/approach-a")
    result = invoke("sql", store, "INSERT INTO steps (step) VALUES (3)", "--branch", "run-42/approach-a")
    assert result.exit_code == 0, result.output
    on_branch = invoke("sql", store, "SELECT count(*) AS n FROM steps", "-b", "run-42/approach-a")
    assert table_rows(on_branch.stdout)[1] == ["3"]
    on_main = invoke("sql", store, "SELECT count(*) AS n FROM steps")
    assert table_rows(on_main.stdout)[1] == ["2"]


# -- where the store comes from ---------------------------------------------------


def test_db_option_names_the_store(store):
    result = invoke("sql", "--db", store, "SELECT count(*) AS n FROM steps")
    assert result.exit_code == 0, result.output
    assert table_rows(result.stdout) == [["n"], ["2"]]


def test_loomdb_url_names_the_store(store):
    result = invoke("sql", "SELECT count(*) AS n FROM steps", env={"LOOMDB_URL": store})
    assert result.exit_code == 0, result.output
    assert table_rows(result.stdout) == [["n"], ["2"]]
    assert invoke("branches", env={"LOOMDB_URL": store}).exit_code == 0


def test_loomdb_url_in_a_subprocess(store):
    proc = run_module("sql", "SELECT action FROM steps WHERE step = 2", env={"LOOMDB_URL": store})
    assert proc.returncode == 0, proc.stderr
    assert table_rows(proc.stdout) == [["action"], ["act"]]


def test_a_positional_store_wins_over_loomdb_url(store, new_store):
    other = new_store()
    result = invoke("sql", store, "SELECT count(*) AS n FROM steps", env={"LOOMDB_URL": other})
    assert result.exit_code == 0, result.output
    assert table_rows(result.stdout)[1] == ["2"]
    assert not store_exists(other)


def test_no_store_is_a_usage_error():
    result = invoke("sql", "SELECT 1", env={"LOOMDB_URL": None})
    assert result.exit_code == 2
    assert "no store given" in result.stderr
    assert "LOOMDB_URL" in result.stderr


def test_the_store_given_twice_is_a_usage_error(store):
    result = invoke("sql", store, "--db", store, "SELECT 1")
    assert result.exit_code == 2
    assert "given twice" in result.stderr


def test_too_many_arguments_is_a_usage_error(store):
    result = invoke("sql", store, "SELECT 1", "SELECT 2")
    assert result.exit_code == 2


# -- log and branches ---------------------------------------------------------------


def test_log_lists_commits_newest_first(store):
    with loomdb.connect(store) as db:
        expected = [c.id for c in db.log()]
    result = invoke("log", store)
    assert result.exit_code == 0, result.output
    rows = table_rows(result.stdout)
    assert rows[0] == ["id", "branch", "time", "author", "message", "parents"]
    assert [int(r[0]) for r in rows[1:]] == expected
    assert {r[1] for r in rows[1:]} == {"main"}
    assert f"({len(expected)} commits)" in result.stdout


def test_log_limit_and_branch(store):
    with loomdb.connect(store) as db:
        a = db.branch("run-42/approach-a")
        a.execute("INSERT INTO steps (step) VALUES (3)")
        head = a.head
    result = invoke("log", store, "--branch", "run-42/approach-a", "--limit", "1")
    assert result.exit_code == 0, result.output
    rows = table_rows(result.stdout)
    assert len(rows) == 2
    assert rows[1][:2] == [str(head), "run-42/approach-a"]


def test_branches_lists_every_branch(store):
    with loomdb.connect(store) as db:
        db.branch("run-42/approach-a")
        db.branch("run-42/approach-b")
        fork = db.head
    result = invoke("branches", store)
    assert result.exit_code == 0, result.output
    rows = table_rows(result.stdout)
    assert rows[0] == ["name", "parent", "fork", "head", "created"]
    by_name = {r[0]: r for r in rows[1:]}
    assert set(by_name) == {"main", "run-42/approach-a", "run-42/approach-b"}
    assert by_name["run-42/approach-a"][1:3] == ["main", str(fork)]
    assert "(3 branches)" in result.stdout


def test_log_on_a_missing_store_fails_without_creating_it(new_store):
    path = new_store("typo")
    result = invoke("log", path)
    assert not store_exists(path)
    assert result.exit_code == 1
    assert "no store at" in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["branches"],
        ["explain", "SELECT 1"],
        ["merge", "run-42/approach-a", "--into", "main"],
        ["revert", "1"],
        ["reset", "1"],
    ],
    ids=lambda c: c[0],
)
def test_other_commands_on_a_missing_store_fail_without_creating_it(new_store, command):
    # Every command but sql (which may create a store) needs an existing one; log and diff: above.
    path = new_store("typo")
    result = invoke(command[0], path, *command[1:])
    assert not store_exists(path)
    assert result.exit_code == 1
    assert "no store at" in result.stderr


def test_explain_prints_the_plan(store):
    result = invoke("explain", store, "SELECT action FROM steps WHERE step = 1")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip()


# -- diff, merge, revert, reset ---------------------------------------------------------


@pytest.fixture
def forked(store):
    """``store`` plus branch run-42/approach-a: step 1 updated, step 2 deleted, step 3 added."""
    with loomdb.connect(store) as db:
        a = db.branch("run-42/approach-a")
        a.execute("UPDATE steps SET action = 'replan', embedding = %s WHERE step = 1", [[0.25] * 1536])
        a.execute("DELETE FROM steps WHERE step = 2")
        a.execute("INSERT INTO steps (step, action, state) VALUES (3, 'observe', %s)", [{"ok": True}])
    return store


def test_diff_shows_each_changed_row_with_a_marker_and_a_summary(forked):
    result = invoke("diff", forked, "main", "run-42/approach-a")
    assert result.exit_code == 0, result.output
    rows = table_rows(result.stdout)
    assert rows[0] == ["", "table", "key", "change"]
    marks = {r[2]: r[0] for r in rows[1:] if r[0]}
    assert marks == {"step=1": "~", "step=2": "−", "step=3": "+"}
    assert all(r[1] == "steps" for r in rows[1:] if r[0])
    assert result.stdout.strip().splitlines()[-1] == (
        "3 rows differ: 1 added, 1 removed, 1 modified (steps: +1 −1 ~1)"
    )


def test_diff_shows_before_and_after_of_changed_columns_abbreviated(forked):
    result = invoke("diff", forked, "main", "run-42/approach-a")
    assert result.exit_code == 0, result.output
    changes = [r[3] for r in table_rows(result.stdout)[1:]]
    assert "action: plan → replan" in changes
    assert "embedding: [0.5, 0.5, … 1536 dims] → [0.25, 0.25, … 1536 dims]" in changes
    # Only the changed columns of a modified row are listed.
    assert not any(c.startswith("done:") and "→" in c for c in changes)
    assert "action: act" in changes  # the removed row's values
    assert 'state: {"ok":true}' in changes  # the added row's values, JSON compact


def test_diff_takes_commit_ids_and_a_table(forked):
    with loomdb.connect(forked) as db:
        head = db.head
        db.execute("INSERT INTO steps (step, action) VALUES (9, 'late')")
        db.execute("CREATE TABLE other (x INT)")
        db.execute("INSERT INTO other VALUES (1)")
    result = invoke("diff", forked, str(head), "main", "--table", "steps")
    assert result.exit_code == 0, result.output
    rows = table_rows(result.stdout)
    assert [r[:3] for r in rows[1:] if r[0]] == [["+", "steps", "step=9"]]
    assert "1 row differs: 1 added, 0 removed, 0 modified (steps: +1 −0 ~0)" in result.stdout
    everything = invoke("diff", forked, str(head), "main")
    assert "other" in {r[1] for r in table_rows(everything.stdout)[1:]}
    assert "2 rows differ" in everything.stdout


def test_diff_of_equal_snapshots_says_so(forked):
    result = invoke("diff", forked, "main", "main")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "no differences"


def test_diff_limit_shows_fewer_rows_but_the_full_summary(forked):
    result = invoke("diff", forked, "main", "run-42/approach-a", "--limit", "1")
    assert result.exit_code == 0, result.output
    assert len([r for r in table_rows(result.stdout)[1:] if r[0]]) == 1
    assert "(showing 1 of 3 changed rows)" in result.stdout
    assert "3 rows differ" in result.stdout


def test_diff_with_an_unknown_branch_or_commit_is_an_error(forked):
    result = invoke("diff", forked, "main", "nope")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "nope" in result.stderr
    result = invoke("diff", forked, "main", "9999")
    assert result.exit_code == 1
    assert "9999" in result.stderr


def test_diff_on_a_missing_store_fails_without_creating_it(new_store):
    path = new_store("typo")
    result = invoke("diff", path, "main", "main")
    assert not store_exists(path)
    assert result.exit_code == 1
    assert "no store at" in result.stderr


def test_merge_prints_the_commit_and_the_counts_per_table(forked):
    result = invoke("merge", forked, "run-42/approach-a", "--into", "main", "-m", "take approach a")
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    match = re.fullmatch(r"merged run-42/approach-a into main: commit (\d+)", first)
    assert match, first
    commit = int(match.group(1))
    rows = table_rows(result.stdout)
    assert rows == [["table", "added", "modified", "deleted"], ["steps", "1", "1", "1"]]
    assert "(1 added, 1 modified, 1 deleted)" in result.stdout
    with loomdb.connect(forked) as db:
        log = db.log(limit=1)[0]
        assert (log.id, log.message) == (commit, "take approach a")
        assert len(log.parents) == 2
        steps = [tuple(r) for r in db.execute("SELECT step, action FROM steps ORDER BY step")]
    assert steps == [(1, "replan"), (3, "observe")]


def test_merge_again_has_nothing_to_merge(forked):
    assert invoke("merge", forked, "run-42/approach-a", "--into", "main").exit_code == 0
    result = invoke("merge", forked, "run-42/approach-a", "--into", "main")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("nothing to merge")


@pytest.fixture
def conflicted(forked):
    """``forked`` with main changing step 1's action too and updating step 2, which the branch deleted."""
    with loomdb.connect(forked) as db:
        db.execute("UPDATE steps SET action = 'plan-v2' WHERE step = 1")
        db.execute("UPDATE steps SET action = 'act-v2' WHERE step = 2")
    return forked


def test_merge_conflicts_print_a_table_on_stderr_and_exit_1(conflicted):
    with loomdb.connect(conflicted) as db:
        head = db.head
    result = invoke("merge", conflicted, "run-42/approach-a", "--into", "main")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: 2 conflicting rows merging run-42/approach-a into main")
    rows = table_rows(result.stderr)
    assert rows[0] == ["table", "key", "kind", "columns", "ours", "theirs"]
    by_key = {r[1]: r for r in rows[1:] if r[0]}
    assert by_key["step=1"] == [
        "steps",
        "step=1",
        "update/update",
        "action",
        "action: plan-v2",
        "action: replan",
    ]
    assert by_key["step=2"][2] == "update/delete"
    assert by_key["step=2"][4:] == ["action: act-v2", "(deleted)"]
    assert "--on-conflict" in result.stderr
    with loomdb.connect(conflicted) as db:
        assert db.head == head  # nothing changed


def test_merge_conflict_exits_1_in_a_subprocess_without_a_traceback(conflicted):
    proc = run_module("merge", conflicted, "run-42/approach-a", "--into", "main")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("policy", "expected"), [("ours", (1, "plan-v2")), ("theirs", (1, "replan"))])
def test_merge_on_conflict_ours_or_theirs(conflicted, policy, expected):
    result = invoke("merge", conflicted, "run-42/approach-a", "--into", "main", "--on-conflict", policy)
    assert result.exit_code == 0, result.output
    assert f"2 conflicts resolved with {policy}" in result.stdout
    with loomdb.connect(conflicted) as db:
        assert tuple(db.execute("SELECT step, action FROM steps WHERE step = 1").fetchone()) == expected
        assert db.execute("SELECT count(*) FROM steps WHERE step = 3").fetchone()[0] == 1


def test_merge_needs_into_and_a_valid_policy(forked):
    assert invoke("merge", forked, "run-42/approach-a").exit_code == 2
    result = invoke("merge", forked, "run-42/approach-a", "--into", "main", "--on-conflict", "mine")
    assert result.exit_code == 2


def test_merge_of_an_unknown_branch_is_an_error(forked):
    result = invoke("merge", forked, "nope", "--into", "main")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "nope" in result.stderr


def test_revert_undoes_one_commit_with_a_new_commit(store):
    with loomdb.connect(store) as db:
        db.execute("UPDATE steps SET action = 'oops' WHERE step = 2")
        bad = db.head
        db.execute("INSERT INTO steps (step, action) VALUES (3, 'later')")
    result = invoke("revert", store, str(bad))
    assert result.exit_code == 0, result.output
    match = re.fullmatch(rf"reverted commit {bad} on main: commit (\d+)", result.stdout.strip())
    assert match, result.stdout
    with loomdb.connect(store) as db:
        assert db.head == int(match.group(1))
        rows = [tuple(r) for r in db.execute("SELECT step, action FROM steps ORDER BY step")]
    assert rows == [(1, "plan"), (2, "act"), (3, "later")]


def test_revert_on_a_branch(forked):
    with loomdb.connect(forked) as db:
        a = db.checkout("run-42/approach-a")
        a.execute("UPDATE steps SET action = 'oops' WHERE step = 3")
        bad = a.head
    result = invoke("revert", forked, str(bad), "--branch", "run-42/approach-a")
    assert result.exit_code == 0, result.output
    assert count(forked, "SELECT action FROM steps WHERE step = 3", branch="run-42/approach-a") == "observe"


def test_revert_of_a_clashing_commit_is_an_error(store):
    with loomdb.connect(store) as db:
        db.execute("UPDATE steps SET action = 'first' WHERE step = 2")
        bad = db.head
        db.execute("UPDATE steps SET action = 'second' WHERE step = 2")
        head = db.head
    result = invoke("revert", store, str(bad))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "conflicting" in result.stderr
    with loomdb.connect(store) as db:
        assert db.head == head


def test_revert_needs_a_commit_id(store):
    result = invoke("revert", store, "main")
    assert result.exit_code == 2
    assert "not a commit id" in result.stderr


def test_reset_to_a_commit_and_to_a_branch(forked):
    with loomdb.connect(forked) as db:
        start = db.head
        db.execute("DELETE FROM steps")
    result = invoke("reset", forked, str(start))
    assert result.exit_code == 0, result.output
    assert re.fullmatch(rf"reset main to {start}: commit \d+", result.stdout.strip()), result.stdout
    assert count(forked, "SELECT count(*) FROM steps") == 2
    again = invoke("reset", forked, str(start))
    assert again.exit_code == 0, again.output
    assert again.stdout.strip() == "nothing to change"
    to_branch = invoke("reset", forked, "run-42/approach-a")
    assert to_branch.exit_code == 0, to_branch.output
    assert invoke("diff", forked, "main", "run-42/approach-a").stdout.strip() == "no differences"


def test_reset_another_branch(forked):
    result = invoke("reset", forked, "main", "--branch", "run-42/approach-a")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("reset run-42/approach-a to main: commit ")
    assert count(forked, "SELECT count(*) FROM steps", branch="run-42/approach-a") == 2


def test_reset_to_an_unknown_commit_is_an_error(store):
    result = invoke("reset", store, "9999")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "9999" in result.stderr


# -- errors ---------------------------------------------------------------------------


def test_bad_sql_prints_one_error_line_and_exits_1(store):
    proc = run_module("sql", store, "SELEC nonsense FROM")
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("error: ")
    assert "Traceback" not in proc.stderr


def test_unknown_table_error_names_it(store):
    result = invoke("sql", store, "SELECT * FROM no_such_table")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert "no_such_table" in result.stderr


def test_unknown_branch_is_an_error(store):
    result = invoke("sql", store, "SELECT 1", "--branch", "nope")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert "nope" in result.stderr


def test_a_failed_write_changes_nothing(store):
    result = invoke("sql", store, "INSERT INTO steps (step) VALUES (1)")  # duplicate key
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert count(store, "SELECT count(*) FROM steps") == 2


# -- formatting helpers and docs ----------------------------------------------------------


def test_formatting_doctests():
    from loomdb.cli import render

    failures, _ = doctest.testmod(render, raise_on_error=False)
    assert failures == 0


def test_every_command_is_documented_in_the_readme():
    readme = README.read_text()
    for name in cli.cli.commands:
        assert f"loomdb {name}" in readme, f"README.md does not show `loomdb {name}`"
