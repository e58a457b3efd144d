"""Deterministic synthetic agent-loop rows for the engine benchmarks.

One row is one plan-act-observe iteration as the product brief describes it:
``run_id``, ``step``, a ~200-character action, a ~2 KB observation, a
1536-float embedding and a ~4 KB JSON state. Everything comes from
``numpy.random.default_rng(seed)``, so two runs with one seed write the same
bytes.

Generating fresh 1536-float embeddings and 6 KB of text for 100k rows would
cost more time and memory than the benchmarks themselves, so rows are drawn
from a pool of distinct payloads (a prime number of them, so runs and steps
do not line up with the pool). ``step``, ``run_id``, ``tokens_used`` and a few
fields of the state differ on every row. SQLite does not compress, so reusing
payloads changes neither the bytes written nor the work done per row.

The raw-apsw side is handed the same Python objects as loomdb (a ``dict``
state, a float64 NumPy embedding) and pays for ``json.dumps`` and
``astype(np.float32).tobytes()`` itself; see :func:`raw_params`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

EMBED_DIM = 1536
ACTION_CHARS = 200
OBSERVATION_CHARS = 2048
STATE_BYTES = 4096
POOL_SIZE = 97

LOOM_SCHEMA = """CREATE TABLE iterations (
    run_id TEXT, step INT, action TEXT, observation TEXT,
    embedding VECTOR(1536), state_snapshot JSONB, tokens_used INT,
    created_at TIMESTAMP DEFAULT NOW())"""
LOOM_INDEX = "CREATE INDEX iterations_run_step ON iterations (run_id, step)"
LOOM_INSERT = (
    "INSERT INTO iterations (run_id, step, action, observation, embedding,"
    " state_snapshot, tokens_used) VALUES (%s, %s, %s, %s, %s, %s, %s)"
)
LOOM_RESUME = "SELECT step, state_snapshot FROM iterations WHERE run_id = %s ORDER BY step DESC LIMIT 1"
LOOM_SCAN = "SELECT count(*), max(step) FROM iterations"

RAW_SCHEMA = """CREATE TABLE iterations (
    run_id TEXT, step INTEGER, action TEXT, observation TEXT,
    embedding BLOB, state_snapshot TEXT, tokens_used INTEGER,
    created_at TEXT)"""
RAW_INDEX = "CREATE INDEX iterations_run_step ON iterations (run_id, step)"
RAW_INSERT = (
    "INSERT INTO iterations (run_id, step, action, observation, embedding,"
    " state_snapshot, tokens_used, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
RAW_RESUME = "SELECT step, state_snapshot FROM iterations WHERE run_id = ? ORDER BY step DESC LIMIT 1"
RAW_SCAN = "SELECT count(*), max(step) FROM iterations"


def _vocabulary(rng: np.random.Generator, size: int = 600) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    lengths = rng.integers(2, 11, size=size)
    return ["".join(rng.choice(letters, size=int(n))) for n in lengths]


def _text(rng: np.random.Generator, vocab: list[str], chars: int) -> str:
    words: list[str] = []
    total = 0
    while total < chars:
        w = vocab[int(rng.integers(len(vocab)))]
        words.append(w)
        total += len(w) + 1
    return " ".join(words)[:chars]


def _state(rng: np.random.Generator, vocab: list[str]) -> dict:
    """A ~4 KB JSON-able agent state: plan, memory, tool results, counters."""
    state: dict = {
        "plan": [_text(rng, vocab, int(rng.integers(60, 120))) for _ in range(6)],
        "goal": _text(rng, vocab, 160),
        "memory": {f"fact_{i}": _text(rng, vocab, int(rng.integers(40, 90))) for i in range(12)},
        "tool_results": [
            {
                "tool": vocab[int(rng.integers(len(vocab)))],
                "ok": bool(rng.integers(2)),
                "latency_ms": round(float(rng.uniform(5, 900)), 3),
                "summary": _text(rng, vocab, 80),
            }
            for _ in range(6)
        ],
        "scores": [round(float(x), 6) for x in rng.uniform(0, 1, 24)],
        "flags": {"retry": False, "escalate": False, "done": False},
    }
    # Pad the scratchpad so json.dumps(state) lands on ~STATE_BYTES.
    base = len(json.dumps(state)) + len(', "scratchpad": ""') + 80
    state["scratchpad"] = _text(rng, vocab, max(0, STATE_BYTES - base))
    return state


@dataclass(frozen=True)
class Payload:
    action: str
    observation: str
    embedding: np.ndarray  # float64, as an agent's embedding client hands it over
    state: dict


@dataclass
class Workload:
    """A pool of payloads and the rows built from them."""

    seed: int = 0
    pool_size: int = POOL_SIZE
    pool: list[Payload] = field(init=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        vocab = _vocabulary(rng)
        self.pool = [
            Payload(
                action=_text(rng, vocab, ACTION_CHARS),
                observation=_text(rng, vocab, OBSERVATION_CHARS),
                embedding=rng.standard_normal(EMBED_DIM),
                state=_state(rng, vocab),
            )
            for _ in range(self.pool_size)
        ]

    def row(self, run_id: str, step: int) -> list:
        """The seven loomdb INSERT parameters of one step (state is a fresh dict)."""
        p = self.pool[(step * 31 + hash_run(run_id)) % self.pool_size]
        tokens = 200 + (step * 7919 + hash_run(run_id)) % 3800
        state = dict(p.state)
        state["run_id"] = run_id
        state["step"] = step
        state["tokens_used"] = tokens
        return [run_id, step, p.action, p.observation, p.embedding, state, tokens]

    def rows(self, runs: int, steps: int, first_step: int = 0, prefix: str = "run") -> Iterator[list]:
        """``runs * steps`` rows, step-major: the runs' iterations interleave on disk
        the way concurrent agents write them."""
        ids = [run_name(r, prefix) for r in range(runs)]
        for step in range(first_step, first_step + steps):
            for run_id in ids:
                yield self.row(run_id, step)


def run_name(i: int, prefix: str = "run") -> str:
    return f"{prefix}-{i:05d}"


def hash_run(run_id: str) -> int:
    """A stable (not salted) small hash of a run id."""
    h = 0
    for ch in run_id:
        h = (h * 131 + ord(ch)) % 1_000_003
    return h


def raw_params(row: list) -> tuple:
    """What raw apsw stores for one loomdb row: JSON text, float32 bytes and a
    created_at timestamp computed in Python. Called inside the timed region."""
    run_id, step, action, obs, emb, state, tokens = row
    return (
        run_id,
        step,
        action,
        obs,
        emb.astype(np.float32).tobytes(),
        json.dumps(state),
        tokens,
        datetime.now(UTC).isoformat(sep=" "),
    )


def batched(it: Iterator[list], size: int) -> Iterator[list[list]]:
    batch: list[list] = []
    for row in it:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
