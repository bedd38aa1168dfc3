"""Searching a knowledge base at any version: vector, keyword (BM25) or hybrid.

Hybrid search runs both and fuses the two rankings by reciprocal rank fusion
(``score = sum of 1 / (60 + rank)``), which needs no score calibration between cosine
similarity and BM25 and is what most retrieval stacks default to.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from curata.errors import InvalidInput, NotFound
from curata.rag.embedders import load_embedder

if TYPE_CHECKING:
    from collections.abc import Callable

    import pyarrow as pa

    from curata.lake import Lake
    from curata.lake.snapshot import Snapshot
    from curata.rag.manifest import Manifest

MODES = ("vector", "keyword", "hybrid")
RRF_K = 60
RESULT_COLUMNS = ["chunk_id", "doc_id", "doc_version", "text", "source_uri", "heading", "page"]


@dataclass(frozen=True)
class SearchHit:
    """One chunk found by a search."""

    chunk_id: str
    doc_id: str
    doc_version: int
    score: float
    text: str
    source: str
    heading: str
    page: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def search_manifest(
    lake: Lake,
    manifest: Manifest,
    query: str,
    *,
    k: int = 5,
    mode: str = "hybrid",
    embedder: str | None = None,
    filter: str | None = None,
    snapshot: Callable[[str], Snapshot] | None = None,
) -> list[SearchHit]:
    """Search the chunks of one knowledge-base version; see :meth:`KnowledgeBase.search`.

    ``snapshot`` opens a part's snapshot from its ref (default: ``lake.ref``)."""
    if mode not in MODES:
        raise InvalidInput(f"Unknown search mode {mode!r}.", hint=f"Modes: {', '.join(MODES)}.")
    if k < 1:
        raise InvalidInput(f"-k must be at least 1, not {k}.")
    if not query.strip():
        raise InvalidInput("The search query is empty.")
    part = manifest.chunks(embedder)
    if part.version is None:
        raise NotFound(
            f"Knowledge base {manifest.name!r} has no chunks at version {manifest.version}.",
            hint=f"Run `curata kb sync {manifest.name} SOURCE` first.",
        )
    chunks = (snapshot or lake.ref)(part.ref or "")
    vector = (
        None if mode == "keyword" else load_embedder(part.settings["embedder"]).embed_query(query)
    )
    try:
        return _search(chunks, query, vector, k=k, mode=mode, filter=filter)
    except InvalidInput as err:
        if filter is None or err.__cause__ is None:  # not the search engine's
            raise
        reason = err.message.partition("Invalid user input: ")[2] or err.message
        columns = [c for c in chunks.schema.names if c != "embedding"]
        raise InvalidInput(
            f"The filter {filter!r} is not a SQL predicate over the chunks: "
            f"{reason.partition('. Valid fields are')[0]}",
            hint=f"Chunk columns: {', '.join(columns)}; e.g. \"doc_id LIKE 'faq/%'\".",
        ) from err


def _search(
    chunks: Snapshot, query: str, vector: Any, *, k: int, mode: str, filter: str | None
) -> list[SearchHit]:
    """Keyword search when ``vector`` (the query's embedding) is None, else vector or hybrid."""
    wide = max(k * 4, 20)
    if vector is None:
        return _hits(
            chunks.search_text("text", query, k, filter=filter, columns=RESULT_COLUMNS), "_score"
        )[:k]
    nearest = chunks.nearest(
        "embedding", vector, wide if mode == "hybrid" else k, filter=filter, columns=RESULT_COLUMNS
    )
    if mode == "vector":
        return _hits(nearest, "_distance")[:k]
    keyword = chunks.search_text("text", query, wide, filter=filter, columns=RESULT_COLUMNS)
    return _fuse([_hits(nearest, "_distance"), _hits(keyword, "_score")], k)


def _hits(table: pa.Table, score_column: str) -> list[SearchHit]:
    hits = []
    for row in table.to_pylist():
        raw = row.get(score_column)
        # Cosine distance -> similarity, so that a higher score is better in every mode.
        score = 1.0 - float(raw) if score_column == "_distance" else float(raw or 0.0)
        hits.append(
            SearchHit(
                chunk_id=row["chunk_id"],
                doc_id=row["doc_id"],
                doc_version=int(row["doc_version"]),
                score=round(score, 6),
                text=row["text"],
                source=row.get("source_uri") or "",
                heading=row.get("heading") or "",
                page=row.get("page"),
            )
        )
    return hits


def _fuse(rankings: list[list[SearchHit]], k: int) -> list[SearchHit]:
    scores: dict[str, float] = {}
    first: dict[str, SearchHit] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + 1.0 / (RRF_K + rank)
            first.setdefault(hit.chunk_id, hit)
    best = sorted(scores, key=lambda c: (-scores[c], c))[:k]
    return [SearchHit(**{**first[c].to_dict(), "score": round(scores[c], 6)}) for c in best]
