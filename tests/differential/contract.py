"""docs/sql.md's generated part: the SQL contract, derived from the suite.

The contract is a pure function of the corpus and ``expected_differences.txt``:
an entry the file does not list gave PostgreSQL's answer (or PostgreSQL's
error) on that engine, and the ratchet test proves the file true on every
run. So the tables below cannot drift from what loomdb does: when the
suite's outcomes change, ``LOOMDB_DIFF_UPDATE=1`` rewrites the file and this
section together, and ``test_contract.py`` fails while docs/sql.md is stale.

Constructs are read from the statements' text (string literals and quoted
names removed): the functions called, the operators, the ``::`` casts and a
fixed list of clauses. Each gets how many entries using it pass on each
engine, and an example that passes on both.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from harness import Entry

DOC = Path(__file__).parents[2] / "docs" / "sql.md"
BEGIN = "<!-- BEGIN GENERATED: tests/differential/contract.py; regenerate with LOOMDB_DIFF_UPDATE=1 -->"
END = "<!-- END GENERATED -->"
ENGINES = ("sqlite", "postgres")
ENGINE_TITLES = {"sqlite": "SQLite engine", "postgres": "PostgreSQL engine"}

_STRING = re.compile(r"[EeUu]?&?'(?:[^']|'')*'")
_QUOTED = re.compile(r'"(?:[^"]|"")*"')
_CALL = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_CAST = re.compile(r"::\s*([A-Za-z_][A-Za-z0-9_]*(?:\s+precision|\s+varying)?(?:\s*\[\s*\])?)", re.IGNORECASE)
#: Operators, longest first so that ``->>`` is not read as ``->``.
OPERATORS = (
    "#>>", "->>", "<->", "<=>", "<#>", "<+>", "!~*", "?|", "?&", "#>", "->", "@>", "<@",
    "#-", "||", "~*", "!~", "<>", "!=", "<=", ">=", "^", "~", "?", "%", "/", "*",
)  # fmt: skip
_OPERATOR = re.compile("|".join(re.escape(o) for o in OPERATORS))
#: Clauses and keywords worth a line of the contract, as regexes over the upper-cased text.
CLAUSES = {
    "INNER / plain JOIN": r"\b(?<!LEFT )(?<!RIGHT )(?<!FULL )(?<!CROSS )(?<!OUTER )JOIN\b",
    "LEFT JOIN": r"\bLEFT (OUTER )?JOIN\b",
    "RIGHT JOIN": r"\bRIGHT (OUTER )?JOIN\b",
    "FULL JOIN": r"\bFULL (OUTER )?JOIN\b",
    "CROSS JOIN": r"\bCROSS JOIN\b",
    "JOIN ... USING": r"\bJOIN\b[^;]*\bUSING\s*\(",
    "LATERAL": r"\bLATERAL\b",
    "WITH (CTE)": r"^\s*WITH\b",
    "WITH RECURSIVE": r"\bWITH RECURSIVE\b",
    "subquery in FROM": r"\bFROM\s*\(\s*SELECT\b",
    "EXISTS (subquery)": r"\bEXISTS\s*\(",
    "IN (subquery)": r"\bIN\s*\(\s*SELECT\b",
    "IN (list)": r"\bIN\s*\((?!\s*SELECT\b)",
    "ANY / SOME": r"\b(ANY|SOME)\s*\(",
    "ALL (subquery)": r"(?<!UNION )(?<!INTERSECT )(?<!EXCEPT )\bALL\s*\(",
    "GROUP BY": r"\bGROUP BY\b",
    "HAVING": r"\bHAVING\b",
    "DISTINCT": r"\bSELECT DISTINCT\b(?! ON)",
    "DISTINCT ON": r"\bDISTINCT ON\b",
    "aggregate DISTINCT": r"\(\s*DISTINCT\b",
    "aggregate FILTER": r"\bFILTER\s*\(\s*WHERE\b",
    "WITHIN GROUP": r"\bWITHIN GROUP\b",
    "window OVER": r"\bOVER\s*\(",
    "PARTITION BY": r"\bPARTITION BY\b",
    "window frame": r"\b(ROWS|RANGE|GROUPS) BETWEEN\b",
    "ORDER BY": r"\bORDER BY\b",
    "NULLS FIRST / LAST": r"\bNULLS (FIRST|LAST)\b",
    "COLLATE": r"\bCOLLATE\b",
    "LIMIT": r"\bLIMIT\b",
    "OFFSET": r"\bOFFSET\b",
    "UNION": r"\bUNION\b(?! ALL)",
    "UNION ALL": r"\bUNION ALL\b",
    "INTERSECT": r"\bINTERSECT\b(?! ALL)",
    "EXCEPT": r"\bEXCEPT\b(?! ALL)",
    "INTERSECT / EXCEPT ALL": r"\b(INTERSECT|EXCEPT) ALL\b",
    "VALUES": r"\bVALUES\b",
    "CASE": r"\bCASE\b",
    "BETWEEN": r"(?<!ROWS )(?<!RANGE )(?<!GROUPS )\bBETWEEN\b",
    "LIKE": r"\bLIKE\b",
    "ILIKE": r"\bILIKE\b",
    "SIMILAR TO": r"\bSIMILAR TO\b",
    "IS [NOT] NULL": r"\bIS (NOT )?NULL\b",
    "IS [NOT] DISTINCT FROM": r"\bIS (NOT )?DISTINCT FROM\b",
    "IS [NOT] TRUE / FALSE": r"\bIS (NOT )?(TRUE|FALSE)\b",
    "CAST (x AS type)": r"\bCAST\s*\(",
    "INTERVAL": r"\bINTERVAL\b",
    "AT TIME ZONE": r"\bAT TIME ZONE\b",
    "EXTRACT": r"\bEXTRACT\s*\(",
    "ARRAY": r"\bARRAY\s*\[",
    "INSERT": r"^\s*INSERT\b",
    "INSERT ... SELECT": r"^\s*INSERT\b[^;]*\)\s*SELECT\b",
    "ON CONFLICT DO NOTHING": r"\bON CONFLICT\b[^;]*\bDO NOTHING\b",
    "ON CONFLICT DO UPDATE": r"\bON CONFLICT\b[^;]*\bDO UPDATE\b",
    "RETURNING": r"\bRETURNING\b",
    "UPDATE": r"^\s*UPDATE\b",
    "UPDATE ... FROM": r"^\s*UPDATE\b[^;]*\bFROM\b",
    "DELETE": r"^\s*DELETE\b",
    "DELETE ... USING": r"^\s*DELETE\b[^;]*\bUSING\b",
    "data-modifying WITH": r"^\s*WITH\b[^;]*\(\s*(INSERT|UPDATE|DELETE)\b",
    "TRUNCATE": r"^\s*TRUNCATE\b",
    "CREATE TABLE": r"^\s*CREATE TABLE\b",
    "CREATE INDEX": r"^\s*CREATE (UNIQUE )?INDEX\b",
    "ALTER TABLE": r"^\s*ALTER TABLE\b",
    "DROP": r"^\s*DROP\b",
    "IDENTITY column": r"\bGENERATED (ALWAYS|BY DEFAULT) AS IDENTITY\b",
    "SERIAL column": r"\b(BIG)?SERIAL\b",
    "CHECK constraint": r"\bCHECK\s*\(",
    "REFERENCES": r"\bREFERENCES\b",
}
_CLAUSES = {name: re.compile(rx) for name, rx in CLAUSES.items()}
#: Words followed by "(" that are not function calls.
_NOT_CALLS = frozenset(
    re.findall(
        r"\w+",
        """all and any array as by cast exists filter from in into join key lateral not on or over
        partition primary references select some table to union unique using values when where
        within group check char character varchar numeric decimal vector conflict""",
    )
)
_PASS = ("same", "error-same")


@dataclass
class Tally:
    """How the entries using one construct fared, per engine."""

    passed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ENGINES, 0))
    refused: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ENGINES, 0))
    total: int = 0
    example: str | None = None

    def add(self, entry: Entry, statement: str, outcomes: dict[str, str]) -> None:
        """Count ``entry`` (which uses the construct in ``statement``) with its outcomes."""
        self.total += 1
        for engine in ENGINES:
            self.passed[engine] += outcomes[engine] in _PASS
            self.refused[engine] += outcomes[engine] == "refused"
        # errors.sql's entries pass by raising PostgreSQL's error: not examples of what works.
        if entry.file != "errors.sql" and all(outcomes[e] in _PASS for e in ENGINES):
            sql = " ".join(statement.split())
            if self.example is None or (len(sql), sql) < (len(self.example), self.example):
                self.example = sql


def _bare(sql: str) -> str:
    """``sql`` without string literals, quoted names and comments."""
    sql = re.sub(r"--[^\n]*", " ", sql)
    return _QUOTED.sub(" x ", _STRING.sub(" '' ", sql))


def constructs(entry: Entry) -> dict[str, dict[str, str]]:
    """The constructs an entry's statements use, by kind: each with the first statement using it."""
    found: dict[str, dict[str, str]] = defaultdict(dict)
    for sql in entry.statements:
        bare = _bare(sql)
        upper = " ".join(bare.upper().split())
        ddl = re.match(r"\s*(CREATE|ALTER)\b", upper) is not None
        for m in _CALL.finditer(bare):
            name = m.group(1).lower()
            before = bare[: m.start()].rstrip()
            if (
                ddl
                or name in _NOT_CALLS
                or before.endswith("::")
                or re.search(r"\b(AS|INTO|TABLE|WITH|RECURSIVE)$", before, re.I)
            ):
                continue
            found["function"].setdefault(name, sql)
        for m in _CAST.finditer(bare):
            found["cast"].setdefault("::" + " ".join(m.group(1).lower().split()), sql)
        for m in _OPERATOR.finditer(_CAST.sub(" ", bare.replace("(*)", "()").replace(".*", ""))):
            op = m.group(0)
            if op in ("*", "?") and re.search(r"SELECT\s*$", bare[: m.start()], re.I):
                continue
            found["operator"].setdefault(op, sql)
        for name, rx in _CLAUSES.items():
            if rx.search(upper):
                found["clause"].setdefault(name, sql)
    return found


def _outcomes(corpus: Iterable[Entry], expected: dict[tuple[str, str], str]) -> dict[str, dict[str, str]]:
    """{entry key: {engine: outcome}}: unlisted entries passed (the ratchet proves it)."""
    return {e.key: {eng: expected.get((eng, e.key), "same") for eng in ENGINES} for e in corpus}


@dataclass
class Listed:
    """One line of expected_differences.txt: engine, entry, outcome and the note's detail."""

    engine: str
    key: str
    outcome: str
    detail: str


def _listed(path: Path) -> list[Listed]:
    """The lines of the ratchet file, with the detail part of each note."""
    out = []
    for raw in path.read_text().splitlines() if path.exists() else ():
        body, _, note = raw.partition("#")
        parts = body.split()
        if len(parts) == 3:
            out.append(Listed(parts[0], parts[1], parts[2], note.partition(" | ")[2].strip()))
    return out


def _refusals(listed: list[Listed], sql_of: dict[str, str]) -> dict[str, tuple[set[str], str]]:
    """{construct: (engines, example statement)} for the refused entries, the construct
    being the NotSupportedError message up to "is not supported"."""
    out: dict[str, tuple[set[str], str]] = {}
    for line in listed:
        if line.outcome != "refused":
            continue
        message = line.detail.split("NotSupportedError: ", 1)[-1].strip()
        construct = re.split(r" (?:is|are) not supported\b", message, maxsplit=1)[0].strip() or message
        engines, example = out.setdefault(construct, (set(), sql_of.get(line.key, "")))
        engines.add(line.engine)
        if len(sql_of.get(line.key, example)) < len(example):
            out[construct] = (engines, sql_of[line.key])
    return out


def _cell(t: Tally, engine: str) -> str:
    text = f"{t.passed[engine]}/{t.total}"
    if t.refused[engine]:
        text += f" ({t.refused[engine]} refused)"
    return text


def _code(sql: str | None, limit: int = 90) -> str:
    if sql is None:
        return "—"
    sql = sql if len(sql) <= limit else sql[: limit - 1] + "…"
    return "`" + sql.replace("`", "'").replace("|", "\\|") + "`"


def render(corpus: list[Entry], expected: dict[tuple[str, str], str], expected_path: Path) -> str:
    """The generated section of docs/sql.md (between BEGIN and END, markers included)."""
    outcomes = _outcomes(corpus, expected)
    tallies: dict[str, dict[str, Tally]] = defaultdict(lambda: defaultdict(Tally))
    for entry in corpus:
        for kind, used in constructs(entry).items():
            for name, statement in used.items():
                tallies[kind][name].add(entry, statement, outcomes[entry.key])
    counts: dict[str, dict[str, int]] = {eng: defaultdict(int) for eng in ENGINES}
    for per in outcomes.values():
        for eng, outcome in per.items():
            counts[eng]["same" if outcome in _PASS else outcome] += 1
    lines = [
        BEGIN,
        "",
        "## The contract, as tested",
        "",
        f"Generated from the differential suite (`tests/differential`): {len(corpus)} statements over",
        "an agent schema, each run on both engines and on PostgreSQL 18 + pgvector, comparing",
        "column names, rows, values and Python types. *Same answer* means PostgreSQL's rows,",
        "values and types, or PostgreSQL's error with its SQLSTATE.",
        "",
        "| outcome | " + " | ".join(ENGINE_TITLES[e] for e in ENGINES) + " |",
        "| --- | ---: | ---: |",
    ]
    labels = {
        "same": "PostgreSQL's answer, or its error with the same SQLSTATE",
        "refused": "refused: NotSupportedError (0A000)",
        "different": "known differences (bugs)",
    }
    for outcome, label in labels.items():
        lines.append(f"| {label} | " + " | ".join(str(counts[e][outcome]) for e in ENGINES) + " |")
    sections = (
        ("clause", "Statements and clauses", "construct"),
        ("function", "Functions", "function"),
        ("operator", "Operators", "operator"),
        ("cast", "Casts", "cast"),
    )
    for kind, title, head in sections:
        lines += [
            "",
            f"### {title}",
            "",
            "Entries using it that gave PostgreSQL's answer, per engine, and an example that does on both.",
            "",
            f"| {head} | SQLite engine | PostgreSQL engine | example |",
            "| --- | --- | --- | --- |",
        ]
        for name in sorted(tallies[kind], key=str.lower):
            t = tallies[kind][name]
            label = f"`{name}`" if kind != "clause" else name
            lines.append(f"| {label} | {_cell(t, 'sqlite')} | {_cell(t, 'postgres')} | {_code(t.example)} |")
    sql_of = {e.key: " ".join(e.statements[0].split()) for e in corpus}
    listed = _listed(expected_path)
    refusals = _refusals(listed, sql_of)
    lines += [
        "",
        "### Refused constructs",
        "",
        "Each raises `loomdb.NotSupportedError` (SQLSTATE 0A000) naming the construct.",
        "",
        "| construct | engines | example |",
        "| --- | --- | --- |",
    ]
    for construct in sorted(refusals, key=str.lower):
        used, example = refusals[construct]
        engines = ", ".join(ENGINE_TITLES[e] for e in ENGINES if e in used)
        lines.append(f"| {_code(construct, 120)} | {engines} | {_code(example)} |")
    different = [line for line in listed if line.outcome != "refused"]
    lines += ["", "### Known differences", ""]
    if different:
        lines.append("These entries still differ from PostgreSQL (bugs on the worklist):")
        lines.append("")
        lines += [
            f"* {ENGINE_TITLES[d.engine]}, {d.outcome}: {_code(sql_of.get(d.key), 80)}: {d.detail}"
            for d in different
        ]
    else:
        lines.append("None: every entry gives PostgreSQL's answer or a NotSupportedError.")
    lines += ["", END]
    return "\n".join(lines)


def current(doc: Path = DOC) -> str | None:
    """The generated section docs/sql.md holds now (None when it has none)."""
    text = doc.read_text()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < 0:
        return None
    return text[start : end + len(END)]


def rewrite(section: str, doc: Path = DOC) -> None:
    """Put ``section`` in docs/sql.md in place of the generated part (appended when there is none)."""
    text = doc.read_text()
    old = current(doc)
    doc.write_text(text.rstrip("\n") + "\n\n" + section + "\n" if old is None else text.replace(old, section))
