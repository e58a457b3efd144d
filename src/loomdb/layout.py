"""The physical layout of a store, defined once: version columns, sentinels,
catalog tables and the shape of every loomdb-made index.

Every user table is one physical table ``loom_t<tid>`` holding every version
of every row of every branch (docs/design.md, "Storage"). The engine, the
backends and the pure ``versioning`` layer all build their SQL from the names
here, so a change of layout is a change of this module.

>>> version_insert_sql("loom_t1", ["c1", "c2"])
'INSERT INTO "loom_t1" (_vid, _rid, _bid, _seq, _end, _del, "c1", "c2")'
>>> indexed_version("_s")
'(_s._bid > 1 OR _s._vid <> _s._rid)'
>>> covering_columns(['"step"'])
'"step", _bid, _end, _del, _seq, _rid'
"""

from __future__ import annotations

from collections.abc import Sequence

#: ``_end`` of a version nobody has superseded yet (the largest BIGINT).
INF_SEQ = 9223372036854775807

#: The root branch: every lineage ends in it, and it is never a nearer branch.
MAIN_BID = 1

#: The version columns, in the order they lead every physical table:
#: version id (the rowid), row identity (the first version's id), branch,
#: writing commit, superseding commit on the same branch (INF_SEQ while
#: current), tombstone flag. User columns follow them, so the visibility
#: check reads only the first page of a row with large values.
VERSION_COLUMNS = ("_vid", "_rid", "_bid", "_seq", "_end", "_del")

#: The columns every user and key index carries after the user's columns, so a
#: branch view's visibility check is answered from the index alone.
COVERING_COLUMNS = ("_bid", "_end", "_del", "_seq", "_rid")

#: The columns of the identity index ``<table>__rid`` (a row's versions by identity).
IDENTITY_INDEX_COLUMNS = ("_rid", "_bid", "_seq")

#: The condition of the identity index: every version but the plain appends on
#: main (``_vid = _rid`` on branch 1), which are found by their rowid instead.
#: A query must repeat it for SQLite to use the partial index.
IDENTITY_INDEX_WHERE = f"_bid > {MAIN_BID} OR _vid <> _rid"

#: The schema epoch: bumped by every DDL, read to know whether caches are stale.
EPOCH_SQL = "SELECT value FROM loom_meta WHERE key = 'epoch'"

#: The store format this code writes; a store of a newer format is refused, an
#: older one upgraded when opened. 2: a TIMESTAMP column is PostgreSQL's
#: timestamp without time zone (format 1 made it a timestamptz on PostgreSQL).
FORMAT_VERSION = 2

#: The catalog, in SQLite's types (a backend translates them, see
#: ``Backend.catalog_sql``).
CATALOG_DDL = (
    "CREATE TABLE loom_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # start: the newest commit when the branch was created; every version the
    # branch writes comes after it, which bounds scans for its changes.
    "CREATE TABLE loom_branches (bid INTEGER PRIMARY KEY, name TEXT NOT NULL, parent INTEGER,"
    " fork INTEGER, start INTEGER NOT NULL DEFAULT 0, created TEXT NOT NULL, dropped INTEGER NOT NULL DEFAULT 0)",
    "CREATE UNIQUE INDEX loom_branches_live_name ON loom_branches (name) WHERE dropped = 0",
    "CREATE TABLE loom_commits (seq INTEGER PRIMARY KEY, bid INTEGER NOT NULL, parent INTEGER,"
    " merge_parent INTEGER, merge_bid INTEGER, message TEXT, author TEXT, time TEXT NOT NULL)",
    # Main's commits stay out of this index (one page less per commit on main);
    # main's head is found by reading the commit table backwards instead.
    f"CREATE INDEX loom_commits_branch ON loom_commits (bid, seq) WHERE bid > {MAIN_BID}",
    "CREATE TABLE loom_schema (id INTEGER PRIMARY KEY, bid INTEGER NOT NULL, seq INTEGER NOT NULL,"
    " name TEXT NOT NULL, definition TEXT)",
    "CREATE TABLE loom_tables (tid INTEGER PRIMARY KEY, physical TEXT NOT NULL, columns TEXT NOT NULL)",
    "CREATE TABLE loom_serial (tid INTEGER NOT NULL, phys TEXT NOT NULL, value INTEGER NOT NULL,"
    " PRIMARY KEY (tid, phys))",
)

#: The catalog tables and their columns, in the order a copy writes them.
CATALOG_TABLES = (
    ("loom_meta", ("key", "value")),
    ("loom_branches", ("bid", "name", "parent", "fork", "start", "created", "dropped")),
    ("loom_commits", ("seq", "bid", "parent", "merge_parent", "merge_bid", "message", "author", "time")),
    ("loom_schema", ("id", "bid", "seq", "name", "definition")),
    ("loom_tables", ("tid", "physical", "columns")),
    ("loom_serial", ("tid", "phys", "value")),
)


def physical_table(tid: int) -> str:
    """The name of the physical table of table id ``tid``."""
    return f"loom_t{tid}"


def identity_index(table: str) -> str:
    """The name of ``table``'s identity index."""
    return f"{table}__rid"


def indexed_version(alias: str) -> str:
    """:data:`IDENTITY_INDEX_WHERE` over the versions aliased ``alias``, parenthesised."""
    return f"({alias}._bid > {MAIN_BID} OR {alias}._vid <> {alias}._rid)"


def version_insert_sql(table: str, user_columns: Sequence[str]) -> str:
    """``INSERT INTO table (version columns, user columns)``: the head of every
    statement that appends a version; the caller adds VALUES or SELECT."""
    names = "".join(f', "{c}"' for c in user_columns)
    return f'INSERT INTO "{table}" ({", ".join(VERSION_COLUMNS)}{names})'


def covering_columns(user_columns: Sequence[str]) -> str:
    """The column list of an index on ``user_columns`` (already quoted) that
    also answers the visibility check."""
    return ", ".join([*user_columns, *COVERING_COLUMNS])
