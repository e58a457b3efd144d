"""Embedding the texts and queries of a batch, and checking what the embedder returns."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

from langchain_core.embeddings import Embeddings

from ...errors import DataError

Vector = list[float]


def embed_sync(embeddings: Embeddings, dims: int, texts: list[str], queries: list[str]) -> tuple[dict, dict]:
    """Embed ``texts`` as documents and ``queries`` as queries, each distinct text once.

    Returns two dicts, text -> vector (None for a zero vector, which has no
    direction to compare). Raises loomdb.DataError when the embedder returns
    the wrong number of vectors, a wrong dimension, or a non-finite number.
    """
    docs = _unique(texts)
    doc_vectors = embeddings.embed_documents(docs) if docs else []
    query_vectors = [embeddings.embed_query(q) for q in queries]
    return _checked(docs, doc_vectors, dims), _checked(queries, query_vectors, dims)


async def embed_async(
    embeddings: Embeddings, dims: int, texts: list[str], queries: list[str]
) -> tuple[dict, dict]:
    """``embed_sync`` through the embedder's async methods, queries concurrently."""
    docs = _unique(texts)
    doc_vectors = await embeddings.aembed_documents(docs) if docs else []
    query_vectors = await asyncio.gather(*(embeddings.aembed_query(q) for q in queries))
    return _checked(docs, doc_vectors, dims), _checked(queries, list(query_vectors), dims)


def _unique(texts: list[str]) -> list[str]:
    return list(dict.fromkeys(texts))


def _checked(texts: list[str], vectors: Sequence[Any], dims: int) -> dict[str, Vector | None]:
    if len(vectors) != len(texts):
        raise DataError(f"the embedder returned {len(vectors)} vectors for {len(texts)} texts")
    out: dict[str, Vector | None] = {}
    for text, vector in zip(texts, vectors, strict=True):
        values = [float(x) for x in vector]
        if len(values) != dims:
            raise DataError(
                f"the embedder returned a vector of {len(values)} dimensions; the index has dims={dims}"
            )
        if not all(math.isfinite(x) for x in values):
            raise DataError(f"the embedder returned a vector with NaN or infinity for {text[:40]!r}")
        out[text] = values if any(values) else None
    return out
