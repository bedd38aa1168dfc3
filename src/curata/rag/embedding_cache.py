"""Embedding texts through the lake's embedding cache.

The cache is the ``embed`` step's per-row cache, keyed by the text and the step's fingerprint
(the embedder): a text is embedded once per embedder, whichever command asks for it —
knowledge-base syncs, ``kb add-embedder``, ``kb rollback`` and semantic dedup share it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from curata.errors import CurataError
from curata.pipeline.executor import RETRIES, BatchResult, PlannedStep, Segment, StepFailed
from curata.pipeline.local import map_batches
from curata.rag.steps import EmbedStep

if TYPE_CHECKING:
    import pyarrow as pa

    from curata.lake.lake import Lake

#: texts per batch handed to the embed step
EMBED_BATCH = 1024


@dataclass
class EmbedCounts:
    """Texts embedded now, and texts whose embedding came from the cache."""

    embedded: int = 0
    reused: int = 0


def embed_cached(
    lake: Lake,
    texts: pa.Array | pa.ChunkedArray,
    spec: str,
    *,
    executor: str = "local",
    counts: EmbedCounts | None = None,
    progress: Callable[[str, int, int | None], None] | None = None,
    again: str = "run the command again",
) -> pa.Table | None:
    """The embeddings of ``texts`` (distinct, not null) by embedder ``spec``, as a table of
    ``text`` and ``embedding``; None when there is no text.

    Raises:
        StepFailed: the embedder failed (after retries for transient errors); the message
            names it, and the hint ends with ``again`` (texts embedded so far stay cached).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    unique = pc.unique(pc.drop_null(texts))
    if len(unique) == 0:
        return None
    step = EmbedStep({"embedder": spec})
    planned = PlannedStep(step, cache=lake.step_cache(step.fingerprint))
    segment = Segment(steps=[planned], taps={"out": 0}, gates=[], offset=0)
    table = pa.table({"text": unique})
    batches = (table.slice(i, EMBED_BATCH) for i in range(0, table.num_rows, EMBED_BATCH))
    parts: list[pa.Table] = []
    done = 0
    for batch in _explained(map_batches(segment, batches, executor, 1), spec, again):
        parts.append(batch.tables["out"])
        for s in batch.stats:
            if counts is not None:
                counts.embedded += s.computed
                counts.reused += s.cache_hits
        done += batch.tables["out"].num_rows
        if progress is not None:
            progress(f"embed {spec}", done, table.num_rows)
    assert planned.cache is not None
    planned.cache.finish()
    return pa.concat_tables(parts)


def _explained(results: Iterator[BatchResult], spec: str, again: str) -> Iterator[BatchResult]:
    """The embed step's results; its failure said in terms of what the user ran."""
    try:
        yield from results
    except StepFailed as err:
        cause = err.__cause__ or err
        what = cause.message if isinstance(cause, CurataError) else str(cause)
        check = getattr(cause, "hint", None) or "Check the embedder (endpoint, credentials, model)"
        raise StepFailed(
            f"Embedding with {spec} failed{_after_retries(cause)}: {what.rstrip('.')}. "
            "Nothing was published.",
            hint=f"{check.rstrip('.')}; then {again}: texts embedded so far are cached and "
            "will not be sent again.",
        ) from cause


def _after_retries(cause: BaseException) -> str:
    transient = getattr(cause, "transient", False) or isinstance(
        cause, ConnectionError | TimeoutError
    )
    return f" after {RETRIES} retries" if transient else ""
