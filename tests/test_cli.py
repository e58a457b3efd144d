"""The ``loomdb`` command line: a thin mirror of the Database API."""

from __future__ import annotations

import doctest
import os
import re
import subprocess
import sys
from pathlib import Path

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


def test_sql_creates_a_new_store(tmp_path):
    path = str(tmp_path / "new.loom")
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


def test_a_positional_store_wins_over_loomdb_url(store, tmp_path):
    other = str(tmp_path / "other.loom")
    result = invoke("sql", store, "SELECT count(*) AS n FROM steps", env={"LOOMDB_URL": other})
    assert result.exit_code == 0, result.output
    assert table_rows(result.stdout)[1] == ["2"]
    assert not os.path.exists(other)


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


def test_log_on_a_missing_store_fails_without_creating_it(tmp_path):
    path = tmp_path / "typo.loom"
    result = invoke("log", str(path))
    assert result.exit_code == 1
    assert "no store at" in result.stderr
    assert not path.exists()


def test_explain_prints_the_plan(store):
    result = invoke("explain", store, "SELECT action FROM steps WHERE step = 1")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip()


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
    failures, _ = doctest.testmod(cli, raise_on_error=False)
    assert failures == 0


def test_every_command_is_documented_in_the_readme():
    readme = README.read_text()
    for name in cli.cli.commands:
        assert f"loomdb {name}" in readme, f"README.md does not show `loomdb {name}`"
