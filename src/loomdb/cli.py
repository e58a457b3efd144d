"""The ``loomdb`` command line: a thin mirror of the :class:`loomdb.Database` API.

Every command takes the store first, or ``--db STORE``, or the environment
variable ``LOOMDB_URL``::

    loomdb sql agent-runs.loom "SELECT step, action FROM iterations"
    loomdb sql --db agent-runs.loom "DELETE FROM iterations WHERE step > 5" --branch retry
    LOOMDB_URL=agent-runs.loom loomdb log --branch run-42/approach-a --limit 5
    loomdb branches agent-runs.loom
    loomdb diff agent-runs.loom run-42/approach-a run-42/approach-b
    loomdb merge agent-runs.loom run-42/approach-a --into main
    loomdb copy agent-runs.loom "postgresql://me@db.internal/agents?schema=team"

The commands only format what the API returns; they hold no logic of their
own. A :class:`loomdb.Error` prints one red ``error: <message>`` line on stderr
and exits with status 1.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import re
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import click
import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

import loomdb

ENV_VAR = "LOOMDB_URL"

#: Longest JSON text shown in a cell before it is cut with an ellipsis.
JSON_MAX_CHARS = 80
#: Longest BYTEA value (in bytes) shown in a cell before it is cut.
BYTES_MAX = 16
#: A vector with more components than this is shown abbreviated.
VECTOR_SHOWN = 4

F = TypeVar("F", bound=Callable[..., Any])


# --------------------------------------------------------------------------
# Formatting: pure functions from API values to text.


def _fmt_float(x: float) -> str:
    return f"{x:.4g}"


def format_vector(vec: np.ndarray) -> str:
    """A vector as a short list: ``[0.12, -0.5, … 1536 dims]``.

    >>> format_vector(np.array([0.125, -0.5, 1.0], dtype=np.float32))
    '[0.125, -0.5, 1]'
    >>> format_vector(np.zeros(1536, dtype=np.float32))
    '[0, 0, … 1536 dims]'
    """
    flat = np.asarray(vec).ravel()
    n = flat.shape[0]
    if n <= VECTOR_SHOWN:
        return "[" + ", ".join(_fmt_float(float(x)) for x in flat) + "]"
    head = ", ".join(_fmt_float(float(x)) for x in flat[:2])
    return f"[{head}, … {n} dims]"


def format_json(value: Any, max_chars: int = JSON_MAX_CHARS) -> str:
    """Compact JSON, cut to ``max_chars`` with an ellipsis.

    >>> format_json({"plan": ["a", "b"], "tokens_used": 10})
    '{"plan":["a","b"],"tokens_used":10}'
    >>> format_json(list(range(100)), max_chars=12)
    '[0,1,2,3,4,…'
    """
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    if len(text) > max_chars:
        return text[: max_chars - 1] + "…"
    return text


def format_bytes(value: bytes) -> str:
    r"""BYTEA in PostgreSQL's hex form, cut after :data:`BYTES_MAX` bytes.

    >>> format_bytes(b"\x01\xff")
    '\\x01ff'
    """
    if len(value) > BYTES_MAX:
        return "\\x" + value[:BYTES_MAX].hex() + f"… ({len(value)} bytes)"
    return "\\x" + value.hex()


def format_value(value: Any) -> Text:
    """One cell of a result table."""
    if value is None:
        return Text("NULL", style="dim")
    if isinstance(value, bool):
        return Text("true" if value else "false")
    if isinstance(value, np.ndarray):
        return Text(format_vector(value), style="cyan")
    if isinstance(value, dict | list):
        return Text(format_json(value), style="green")
    if isinstance(value, bytes | bytearray | memoryview):
        return Text(format_bytes(bytes(value)), style="magenta")
    if isinstance(value, _dt.datetime):
        return Text(value.isoformat(sep=" "))
    if isinstance(value, _dt.date):
        return Text(value.isoformat())
    if isinstance(value, float):
        return Text(repr(value))
    if isinstance(value, int | Decimal | uuid.UUID | str):
        return Text(str(value))
    return Text(str(value))


def _is_numeric(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def rows_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """A Rich table of rows; numeric columns are right-aligned."""
    table = Table(show_header=True, header_style="bold", show_lines=False)
    for i, name in enumerate(headers):
        first = next((r[i] for r in rows if r[i] is not None), None)
        table.add_column(name, justify="right" if _is_numeric(first) else "left")
    for row in rows:
        table.add_row(*(format_value(v) for v in row))
    return table


def _when(t: _dt.datetime) -> str:
    """A commit's time to the millisecond: ``2025-01-31 12:00:00.123+00:00``."""
    return t.isoformat(sep=" ", timespec="milliseconds")


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 row``, ``3 rows``, ``2 branches``.

    >>> plural(1, "row"), plural(3, "row"), plural(2, "branch", "branches")
    ('1 row', '3 rows', '2 branches')
    """
    return f"{n} {word}" if n == 1 else f"{n} {words or word + 's'}"


def format_key(key: dict[str, Any]) -> str:
    """A row's key as ``col=value`` pairs.

    >>> format_key({"run_id": "run-42", "step": 3})
    'run_id=run-42, step=3'
    """
    return ", ".join(f"{name}={format_value(value).plain}" for name, value in key.items())


def format_snapshot(value: str) -> int | str:
    """A snapshot argument: a commit id when it is an integer, else a branch name.

    >>> format_snapshot("12"), format_snapshot("run-42/approach-a")
    (12, 'run-42/approach-a')
    """
    return int(value) if re.fullmatch(r"[0-9]+", value) else value


#: How each kind of change is marked in ``loomdb diff``.
CHANGE_MARKS = {
    "added": ("+", "green"),
    "removed": ("\u2212", "red"),
    "modified": ("~", "yellow"),
}


def _columns_text(row: dict[str, Any] | None, columns: Sequence[str], skip: Sequence[str] = ()) -> Text:
    """``col: value`` lines of ``row`` for ``columns`` (``(deleted)`` when there is no row)."""
    if row is None:
        return Text("(deleted)", style="dim")
    lines = [
        Text(f"{name}: ", style="bold") + format_value(row.get(name)) for name in columns if name not in skip
    ]
    return Text("\n").join(lines)


def change_text(change: Any) -> Text:
    """What changed in one row: ``col: before → after`` per changed column of a
    modified row, the row's other columns for an added or removed one."""
    if change.kind == "modified":
        lines = [
            Text(f"{name}: ", style="bold")
            + format_value(change.before.get(name))
            + Text(" → ", style="dim")
            + format_value(change.after.get(name))
            for name in change.columns
        ]
        return Text("\n").join(lines)
    row = change.after if change.kind == "added" else change.before
    return _columns_text(row, list(row), skip=list(change.key))


def changes_table(changes: Sequence[Any]) -> Table:
    """A Rich table of :class:`loomdb.Change` rows."""
    table = Table(show_header=True, header_style="bold", show_lines=False)
    table.add_column("", no_wrap=True)
    table.add_column("table")
    table.add_column("key")
    table.add_column("change")
    for change in changes:
        mark, style = CHANGE_MARKS[change.kind]
        table.add_row(
            Text(mark, style=f"bold {style}"),
            Text(change.table),
            Text(format_key(change.key), style=style),
            change_text(change),
        )
    return table


def diff_summary(stats: dict[str, Any]) -> str:
    """One line from ``db.diff_stat``.

    >>> from loomdb import DiffStat
    >>> diff_summary({"steps": DiffStat(added=3, removed=1, modified=2)})
    '6 rows differ: 3 added, 1 removed, 2 modified (steps: +3 −1 ~2)'
    >>> diff_summary({})
    'no differences'
    """
    added = sum(s.added for s in stats.values())
    removed = sum(s.removed for s in stats.values())
    modified = sum(s.modified for s in stats.values())
    total = added + removed + modified
    if not total:
        return "no differences"
    per_table = ", ".join(
        f"{name}: +{s.added} \u2212{s.removed} ~{s.modified}" for name, s in sorted(stats.items())
    )
    return (
        f"{plural(total, 'row')} {'differs' if total == 1 else 'differ'}: "
        f"{added} added, {removed} removed, {modified} modified ({per_table})"
    )


def conflicts_table(conflicts: Sequence[Any]) -> Table:
    """A Rich table of :class:`loomdb.Conflict` rows: ours against theirs."""
    table = Table(show_header=True, header_style="bold", show_lines=True)
    for name in ("table", "key", "kind", "columns", "ours", "theirs"):
        table.add_column(name)
    for c in conflicts:
        shown: Sequence[str] = c.columns
        if c.kind == "insert/insert" and c.ours is not None and c.theirs is not None:
            # The clash is on the key; show where the two rows differ as well.
            differ = [n for n in c.theirs if n not in c.columns and not _same(c.ours.get(n), c.theirs[n])]
            shown = [*c.columns, *differ]
        table.add_row(
            Text(c.table),
            Text(format_key(c.key)),
            Text(c.kind, style="red"),
            Text(", ".join(c.columns)),
            _columns_text(c.ours, shown),
            _columns_text(c.theirs, shown),
        )
    return table


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    return bool(a == b)


# --------------------------------------------------------------------------
# Plumbing: consoles, errors, the store argument.


def _stdout() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        # Piped or captured output: do not wrap tables at 80 columns.
        console = Console(highlight=False, width=4096)
    return console


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _stderr_tables() -> Console:
    """stderr for tables: like :func:`_stdout`, no wrapping at 80 columns when captured."""
    console = Console(stderr=True, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(stderr=True, highlight=False, width=4096)
    return console


def _reports_errors(func: F) -> F:
    """Turn a :class:`loomdb.Error` into one red line on stderr and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except loomdb.Error as exc:
            message = str(exc) or type(exc).__name__
            _stderr().print(Text("error: ", style="bold red") + Text(message, style="red"))
            raise SystemExit(1) from None

    return wrapper  # type: ignore[return-value]


def _db_option(func: F) -> F:
    return click.option(
        "--db",
        "db_opt",
        metavar="STORE",
        envvar=ENV_VAR,
        help=f"The store (a .loom file or a postgresql:// URL). Default: the positional STORE, else ${ENV_VAR}.",
    )(func)


def _split_store(
    ctx: click.Context, db_opt: str | None, args: Sequence[str], rest: Sequence[str]
) -> tuple[str, list[str]]:
    """Find the store among ``[STORE] REST...``, ``--db STORE`` and ``$LOOMDB_URL``.

    A positional STORE wins over ``$LOOMDB_URL``; giving both a positional STORE
    and ``--db`` is a usage error.
    """
    usage = " ".join(["[STORE]", *rest])
    if len(args) == len(rest) + 1:
        source = ctx.get_parameter_source("db_opt")
        if db_opt and source == click.core.ParameterSource.COMMANDLINE:
            raise click.UsageError("the store was given twice: as STORE and with --db", ctx)
        return args[0], list(args[1:])
    if len(args) == len(rest):
        if not db_opt:
            raise click.UsageError(f"no store given: pass STORE, --db STORE, or set {ENV_VAR}", ctx)
        return db_opt, list(args)
    raise click.UsageError(f"expected {usage}, got {len(args)} argument(s)", ctx)


# --------------------------------------------------------------------------
# Commands.


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=loomdb.__version__, prog_name="loomdb", message="%(prog)s %(version)s")
def cli() -> None:
    """loomdb: durable, versioned, branchable SQL memory for agent loops.

    Every command takes the store first, or --db STORE, or $LOOMDB_URL.
    """


@cli.command("sql", short_help="Run one SQL statement and print its result.")
@click.argument("args", nargs=-1, metavar="[STORE] SQL")
@_db_option
@click.option("--branch", "-b", default="main", show_default=True, help="Branch to run on.")
@click.pass_context
@_reports_errors
def sql_cmd(ctx: click.Context, args: tuple[str, ...], db_opt: str | None, branch: str) -> None:
    """Run one SQL statement (PostgreSQL dialect) on BRANCH of STORE.

    A query prints a table of its rows; a write prints how many rows it
    changed (and its rows, with RETURNING). A write is one commit.
    """
    store, (statement,) = _split_store(ctx, db_opt, args, ["SQL"])
    out = _stdout()
    with loomdb.connect(store, branch=branch) as db:
        cur = db.execute(statement)
        if cur.description is not None:
            headers = [d[0] for d in cur.description]
            rows = [tuple(r) for r in cur.fetchall()]
            out.print(rows_table(headers, rows))
            out.print(Text(f"({plural(len(rows), 'row')})", style="dim"))
        elif cur.rowcount >= 0:
            out.print(f"{plural(cur.rowcount, 'row')} changed")
        else:
            out.print("ok")


@cli.command("explain", short_help="Show the rewritten SQL and the engine's query plan.")
@click.argument("args", nargs=-1, metavar="[STORE] SQL")
@_db_option
@click.option("--branch", "-b", default="main", show_default=True, help="Branch to plan on.")
@click.pass_context
@_reports_errors
def explain_cmd(ctx: click.Context, args: tuple[str, ...], db_opt: str | None, branch: str) -> None:
    """Print what db.explain(SQL) returns: the rewritten SQL and the plan."""
    store, (statement,) = _split_store(ctx, db_opt, args, ["SQL"])
    with loomdb.connect(store, branch=branch, create=False) as db:
        _stdout().print(Text(db.explain(statement)))


@cli.command("log", short_help="List the commits of a branch, newest first.")
@click.argument("args", nargs=-1, metavar="[STORE]")
@_db_option
@click.option("--branch", "-b", default=None, help="Branch to list (default: main).")
@click.option("--limit", "-n", type=click.IntRange(min=1), default=None, help="At most N commits.")
@click.pass_context
@_reports_errors
def log_cmd(
    ctx: click.Context,
    args: tuple[str, ...],
    db_opt: str | None,
    branch: str | None,
    limit: int | None,
) -> None:
    """Print db.log(branch, limit): the branch's commits, newest first,
    following its lineage into its parents before the fork."""
    store, _ = _split_store(ctx, db_opt, args, [])
    with loomdb.connect(store, create=False) as db:
        commits = db.log(branch=branch, limit=limit)
        rows = [
            (c.id, c.branch, _when(c.time), c.author, c.message, ", ".join(map(str, c.parents)))
            for c in commits
        ]
    out = _stdout()
    out.print(rows_table(["id", "branch", "time", "author", "message", "parents"], rows))
    out.print(Text(f"({plural(len(rows), 'commit')})", style="dim"))


@cli.command("branches", short_help="List the branches of a store.")
@click.argument("args", nargs=-1, metavar="[STORE]")
@_db_option
@click.pass_context
@_reports_errors
def branches_cmd(ctx: click.Context, args: tuple[str, ...], db_opt: str | None) -> None:
    """Print db.branches(): name, parent, fork point, head and creation time."""
    store, _ = _split_store(ctx, db_opt, args, [])
    with loomdb.connect(store, create=False) as db:
        rows = [(b.name, b.parent, b.fork, b.head, _when(b.created)) for b in db.branches()]
    out = _stdout()
    out.print(rows_table(["name", "parent", "fork", "head", "created"], rows))
    out.print(Text(f"({plural(len(rows), 'branch', 'branches')})", style="dim"))


@cli.command("diff", short_help="Show the rows that differ between two branches or commits.")
@click.argument("args", nargs=-1, metavar="[STORE] A B")
@_db_option
@click.option("--table", "-t", default=None, help="Only this table.")
@click.option("--limit", "-n", type=click.IntRange(min=1), default=None, help="Show at most N rows.")
@click.pass_context
@_reports_errors
def diff_cmd(
    ctx: click.Context,
    args: tuple[str, ...],
    db_opt: str | None,
    table: str | None,
    limit: int | None,
) -> None:
    """Print db.diff(A, B): the rows B added (+), removed (−) and modified (~)
    compared with A, then a summary from db.diff_stat(A, B).

    A and B are branch names, or commit ids when they are integers.
    """
    store, (a, b) = _split_store(ctx, db_opt, args, ["A", "B"])
    with loomdb.connect(store, create=False) as db:
        changes = list(db.diff(format_snapshot(a), format_snapshot(b), table=table))
        stats = db.diff_stat(format_snapshot(a), format_snapshot(b))
    if table is not None:
        stats = {name: s for name, s in stats.items() if name == table}
    out = _stdout()
    if changes:
        shown = changes if limit is None else changes[:limit]
        out.print(changes_table(shown))
        if len(shown) < len(changes):
            out.print(Text(f"(showing {len(shown)} of {len(changes)} changed rows)", style="dim"))
    out.print(Text(diff_summary(stats)))


@cli.command("merge", short_help="Merge one branch into another, three-way.")
@click.argument("args", nargs=-1, metavar="[STORE] SRC")
@_db_option
@click.option("--into", "into", required=True, metavar="DST", help="The branch to merge into.")
@click.option(
    "--on-conflict",
    type=click.Choice(["fail", "ours", "theirs"]),
    default="fail",
    show_default=True,
    help="fail: change nothing and list the conflicts; ours: keep DST's row; theirs: take SRC's.",
)
@click.option("--message", "-m", default=None, help="Message of the merge commit.")
@click.option("--author", default=None, help="Author of the merge commit.")
@click.pass_context
@_reports_errors
def merge_cmd(
    ctx: click.Context,
    args: tuple[str, ...],
    db_opt: str | None,
    into: str,
    on_conflict: str,
    message: str | None,
    author: str | None,
) -> None:
    """Run db.merge(SRC, into=DST) and print the merge commit and, per table,
    the rows added, modified and deleted on DST.

    On conflicts (with --on-conflict fail) nothing changes: the conflicting
    rows are printed on stderr, ours (DST) against theirs (SRC), and the
    exit status is 1.
    """
    store, (source,) = _split_store(ctx, db_opt, args, ["SRC"])
    with loomdb.connect(store, create=False) as db:
        try:
            result = db.merge(source, into=into, on_conflict=on_conflict, message=message, author=author)
        except loomdb.MergeConflict as exc:
            err = _stderr_tables()
            n = len(exc.conflicts)
            err.print(
                Text("error: ", style="bold red")
                + Text(
                    f"{plural(n, 'conflicting row')} merging {source} into {into}; nothing was changed",
                    style="red",
                )
            )
            err.print(conflicts_table(exc.conflicts))
            err.print(
                Text("rerun with --on-conflict ours (keep DST's rows) or theirs (take SRC's)", style="dim")
            )
            raise SystemExit(1) from None
    out = _stdout()
    if result.commit is None:
        resolved = result.conflicts_resolved
        note = f" ({plural(resolved, 'conflict')} resolved, no row changed)" if resolved else ""
        out.print(Text(f"nothing to merge: {into} already has the changes of {source}{note}"))
        return
    out.print(Text(f"merged {source} into {into}: commit {result.commit}"))
    rows = [(name, t.added, t.modified, t.deleted) for name, t in sorted(result.tables.items())]
    out.print(rows_table(["table", "added", "modified", "deleted"], rows))
    summary = f"({result.added} added, {result.modified} modified, {result.deleted} deleted"
    if result.conflicts_resolved:
        summary += f"; {plural(result.conflicts_resolved, 'conflict')} resolved with {on_conflict}"
    out.print(Text(summary + ")", style="dim"))


@cli.command("revert", short_help="Undo one commit with a new commit.")
@click.argument("args", nargs=-1, metavar="[STORE] COMMIT")
@_db_option
@click.option("--branch", "-b", default="main", show_default=True, help="Branch to write the revert on.")
@click.option("--message", "-m", default=None, help="Message of the new commit.")
@click.pass_context
@_reports_errors
def revert_cmd(
    ctx: click.Context, args: tuple[str, ...], db_opt: str | None, branch: str, message: str | None
) -> None:
    """Run db.revert(COMMIT) on BRANCH and print the new commit's id."""
    store, (commit,) = _split_store(ctx, db_opt, args, ["COMMIT"])
    if not re.fullmatch(r"[0-9]+", commit):
        raise click.BadParameter(f"{commit!r} is not a commit id", ctx, param_hint="COMMIT")
    with loomdb.connect(store, branch=branch, create=False) as db:
        seq = db.revert(int(commit), message=message)
    out = _stdout()
    if seq is None:
        out.print("nothing to change")
    else:
        out.print(Text(f"reverted commit {commit} on {branch}: commit {seq}"))


@cli.command("reset", short_help="Make a branch equal to a commit or another branch.")
@click.argument("args", nargs=-1, metavar="[STORE] TO")
@_db_option
@click.option("--branch", "-b", default="main", show_default=True, help="Branch to reset.")
@click.option("--message", "-m", default=None, help="Message of the new commit.")
@click.pass_context
@_reports_errors
def reset_cmd(
    ctx: click.Context, args: tuple[str, ...], db_opt: str | None, branch: str, message: str | None
) -> None:
    """Run db.reset(TO, branch=BRANCH): a new commit that makes BRANCH equal to
    TO (a commit id, or a branch name), keeping the history."""
    store, (to,) = _split_store(ctx, db_opt, args, ["TO"])
    with loomdb.connect(store, create=False) as db:
        seq = db.reset(format_snapshot(to), branch=branch, message=message)
    out = _stdout()
    if seq is None:
        out.print("nothing to change")
    else:
        out.print(Text(f"reset {branch} to {to}: commit {seq}"))


@cli.command("copy", short_help="Copy a whole store, history included, to a new store.")
@click.argument("source", metavar="SRC")
@click.argument("destination", metavar="DST")
@click.option("--no-verify", is_flag=True, help="Skip comparing the two stores afterwards.")
@_reports_errors
def copy_cmd(source: str, destination: str, no_verify: bool) -> None:
    """Run loomdb.copy(SRC, DST): copy every branch, commit and row version
    from SRC into the new store DST. Either may be a SQLite file or a
    postgresql:// URL; the copy is verified (same log and rows on every branch)."""
    result = loomdb.copy(source, destination, verify=not no_verify)
    checked = ", verified" if result.verified else ""
    _stdout().print(
        Text(
            f"copied {plural(result.branches, 'branch', 'branches')}, {plural(result.commits, 'commit')},"
            f" {plural(result.versions, 'row version')} in {plural(len(result.tables), 'table')}{checked}"
        )
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``loomdb`` console script."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="loomdb")


if __name__ == "__main__":
    main()
