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

import functools
import os
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.text import Text

import loomdb

from .render import (
    changes_table,
    conflicts_table,
    diff_summary,
    format_snapshot,
    format_when,
    plural,
    rows_table,
)

ENV_VAR = "LOOMDB_URL"

F = TypeVar("F", bound=Callable[..., Any])


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
            (c.id, c.branch, format_when(c.time), c.author, c.message, ", ".join(map(str, c.parents)))
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
        rows = [(b.name, b.parent, b.fork, b.head, format_when(b.created)) for b in db.branches()]
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
