"""The checked-in list of known differences, and the run's summary.

``expected_differences.txt`` has one line per (engine, entry) whose outcome
is ``refused``, ``different`` or (while any remain) ``crash``::

    sqlite numbers.sql:3f2a91bc different  # SELECT 1/0 | pg raised SQLSTATE 22012...

Everything after ``#`` is a comment for the reader. The suite fails when
the actual set differs from the file, in either direction, so the list can
only shrink as loomdb gets closer to PostgreSQL.
"""

from __future__ import annotations

import fcntl
from collections import Counter
from pathlib import Path

import contract
from harness import LISTED, OUTCOMES, Outcome

HERE = Path(__file__).parent
EXPECTED = HERE / "expected_differences.txt"
HEADER = """\
# Known differences between loomdb and PostgreSQL, found by tests/differential.
# One line per <engine> <corpus file>:<entry id> <outcome>; text after '#' is a note.
# This list only shrinks: when you fix one, delete its line (or regenerate with
# LOOMDB_DIFF_UPDATE=1 pytest tests/differential). See tests/differential/README.md.
"""


def read_expected(path: Path = EXPECTED) -> dict[tuple[str, str], str]:
    """{(engine, 'file:id'): outcome} from the checked-in file."""
    out: dict[tuple[str, str], str] = {}
    if not path.exists():
        return out
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 3 or parts[2] not in LISTED:
            raise ValueError(f"{path.name}:{n}: expected '<engine> <file>:<id> <outcome>', got {raw!r}")
        out[(parts[0], parts[1])] = parts[2]
    return out


def _line(o: Outcome) -> str:
    sql = " ".join(o.entry.statements[0].split())
    note = f"{sql[:70]} | {o.detail}".replace("#", "")[:200]
    return f"{o.engine} {o.entry.key} {o.outcome}  # {note}"


def rewrite_expected(engine: str, outcomes: list[Outcome], path: Path = EXPECTED) -> None:
    """Replace one engine's lines with this run's listed outcomes (other engines' lines stay)."""
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        kept = []
        if path.exists():
            for raw in path.read_text().splitlines():
                body = raw.split("#", 1)[0].split()
                if body and body[0] != engine:
                    kept.append(raw)
        mine = [_line(o) for o in outcomes if o.outcome in LISTED]
        lines = sorted(kept + mine, key=lambda s: (s.split()[0], s.split()[1].split(":")[0]))
        path.write_text(HEADER + "".join(line + "\n" for line in lines))
        if path == EXPECTED:  # the contract in docs/sql.md follows the file
            corpus = [o.entry for o in outcomes]
            contract.rewrite(contract.render(corpus, read_expected(path), path))
    path.with_suffix(".lock").unlink(missing_ok=True)


def ratchet_report(engine: str, outcomes: list[Outcome], expected: dict[tuple[str, str], str]) -> str | None:
    """None when the run matches the file for this engine, else what to do about each mismatch."""
    actual = {(o.engine, o.entry.key): o for o in outcomes if o.outcome in LISTED}
    mine = {k: v for k, v in expected.items() if k[0] == engine}
    by_key = {(o.engine, o.entry.key): o for o in outcomes}
    new, fixed, changed = [], [], []
    for key, o in actual.items():
        if key not in mine:
            new.append(o)
        elif mine[key] != o.outcome:
            changed.append(f"  {key[0]} {key[1]}: listed {mine[key]}, now {o.outcome}: {o.detail}")
    for key, listed in mine.items():
        if key not in actual:
            o = by_key.get(key)
            now = o.outcome if o else "not in the corpus any more"
            fixed.append(f"  {key[0]} {key[1]} {listed} -> {now}: delete this line")
    if not (new or fixed or changed):
        return None
    parts = [f"differential suite ({engine}) does not match tests/differential/expected_differences.txt"]
    if new:
        parts.append(f"NEW differences ({len(new)}), regressions unless the corpus entry is new:")
        parts += [
            f"  {o.engine} {o.entry.key} {o.outcome}: {o.entry.statements[0][:90]!r}\n      {o.detail}"
            for o in new
        ]
    if fixed:
        parts.append(f"FIXED ({len(fixed)}): now same or error-same; delete these lines from the file:")
        parts += fixed
    if changed:
        parts.append(f"CHANGED outcome ({len(changed)}): update these lines:")
        parts += changed
    parts.append("Regenerate the file with: LOOMDB_DIFF_UPDATE=1 pytest tests/differential")
    return "\n".join(parts)


def summary(engine: str, outcomes: list[Outcome]) -> str:
    """Counts per outcome, the crashes, the commonest kinds of difference and the refused constructs."""
    counts = Counter(o.outcome for o in outcomes)
    lines = [f"loomdb-{engine}: {len(outcomes)} entries: " + ", ".join(f"{k} {counts[k]}" for k in OUTCOMES)]
    crashes = [o for o in outcomes if o.outcome == "crash"]
    if crashes:
        lines.append(f"  !!! {len(crashes)} CRASHES (non-loomdb exceptions escaped):")
        lines += [f"    {o.entry.key}: {o.detail}" for o in crashes]
    kinds = Counter(o.kind for o in outcomes if o.outcome == "different")
    if kinds:
        lines.append("  commonest differences:")
        lines += [f"    {n:4d}  {k}" for k, n in kinds.most_common(12)]
    refused = Counter(
        o.detail.split("NotSupportedError: ", 1)[-1][:90] for o in outcomes if o.outcome == "refused"
    )
    if refused:
        lines.append("  refused (the worklist):")
        lines += [f"    {n:4d}  {k}" for k, n in refused.most_common()]
    return "\n".join(lines)
