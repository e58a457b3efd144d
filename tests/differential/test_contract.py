"""docs/sql.md's generated contract matches the corpus and expected_differences.txt."""

from __future__ import annotations

from pathlib import Path

import contract
import ratchet
from harness import Entry, load_corpus

CORPUS = load_corpus(Path(__file__).parent / "corpus")


def test_docs_sql_contract_is_current():
    """The contract section is what the suite's outcomes say; regenerate it with LOOMDB_DIFF_UPDATE=1."""
    expected = contract.render(CORPUS, ratchet.read_expected(), ratchet.EXPECTED)
    assert contract.current() == expected, (
        "docs/sql.md's generated contract is stale: run LOOMDB_DIFF_UPDATE=1 pytest tests/differential"
    )


def test_constructs_are_read_from_the_text():
    """Functions, operators, casts and clauses are found; strings and names don't count."""
    entry = Entry(
        "x.sql",
        "0",
        [
            "SELECT lower(name), j ->> 'k(' AS \"f(\", n::numeric(10,2) FROM t LEFT JOIN u USING (id) ORDER BY 1"
        ],
        1,
    )
    found = contract.constructs(entry)
    assert set(found["function"]) == {"lower"}
    assert set(found["operator"]) == {"->>"}
    assert set(found["cast"]) == {"::numeric"}
    assert {"LEFT JOIN", "JOIN ... USING", "ORDER BY"} <= set(found["clause"])
    assert "INNER / plain JOIN" not in found["clause"]


def test_unlisted_entries_pass_and_refusals_are_named(tmp_path):
    """An entry the ratchet file does not list counts as PostgreSQL's answer; a refused line names its construct."""
    listed = tmp_path / "expected.txt"
    listed.write_text(
        "sqlite a.sql:2 refused  # SELECT unnest(ARRAY[1]) | NotSupportedError: ARRAY values is not supported by loomdb\n"
    )
    corpus = [Entry("a.sql", "1", ["SELECT abs(-1)"], 1), Entry("a.sql", "2", ["SELECT unnest(ARRAY[1])"], 2)]
    text = contract.render(corpus, ratchet.read_expected(listed), listed)
    assert "| `abs` | 1/1 | 1/1 | `SELECT abs(-1)` |" in text
    assert "| `unnest` | 0/1 (1 refused) | 1/1 | — |" in text
    assert "| `ARRAY values` | SQLite engine |" in text
    assert "None: every entry gives PostgreSQL's answer" in text
