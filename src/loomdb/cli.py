"""The ``loomdb`` command line: a thin mirror of the :class:`loomdb.Database` API.

Every command takes the store first, or ``--db STORE``, or the environment
variable ``LOOMDB_URL``::

    loomdb sql agent-runs.loom "SELECT step, action FROM iterations"
    loomdb sql --db agent-runs.loom "DELETE FROM iterations WHERE step > 5" --branch retry
    LOOMDB_URL=agent-runs.loom loomdb log --branch run-42/approach-a --limit 5
    loomdb branches agent-runs.loom

The commands only format what the API returns; they hold no logic of their
own. A :class:`loomdb.Error` prints one red ``error: <message>`` line on stderr
and exits with status 1.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import os
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
        help=f"The store (a .loom file). Default: the positional STORE, else ${ENV_VAR}.",
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


def _require_existing(store: str) -> None:
    """Read-only commands do not create a store by accident (a mistyped path)."""
    if "://" not in store and not os.path.exists(store):
        raise loomdb.OperationalError(f"no store at {store!r}")


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


@cli.command("explain", short_help="Show the rewritten SQL and SQLite's query plan.")
@click.argument("args", nargs=-1, metavar="[STORE] SQL")
@_db_option
@click.option("--branch", "-b", default="main", show_default=True, help="Branch to plan on.")
@click.pass_context
@_reports_errors
def explain_cmd(ctx: click.Context, args: tuple[str, ...], db_opt: str | None, branch: str) -> None:
    """Print what db.explain(SQL) returns: the rewritten SQL and the plan."""
    store, (statement,) = _split_store(ctx, db_opt, args, ["SQL"])
    _require_existing(store)
    with loomdb.connect(store, branch=branch) as db:
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
    _require_existing(store)
    with loomdb.connect(store) as db:
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
    _require_existing(store)
    with loomdb.connect(store) as db:
        rows = [(b.name, b.parent, b.fork, b.head, _when(b.created)) for b in db.branches()]
    out = _stdout()
    out.print(rows_table(["name", "parent", "fork", "head", "created"], rows))
    out.print(Text(f"({plural(len(rows), 'branch', 'branches')})", style="dim"))


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``loomdb`` console script."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="loomdb")


if __name__ == "__main__":
    main()
