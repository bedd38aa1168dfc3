"""Search indexes on dataset columns: vector (nearest neighbours) and full text (BM25).

Indexes are part of a version: they are built or brought up to date inside a publication
(:meth:`~curata.lake.publish.Publication.index_for_search`), so the Lance version a commit
points at carries them, and searching an old version uses that version's indexes.

A vector index is only built once a dataset has :data:`VECTOR_INDEX_MIN_ROWS` rows: below
that an exact scan is fast, and an IVF index trained on few rows is poor. Rows added after an
index was built are searched exactly until the next sync merges them into the index, so
results never miss new rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from curata.errors import InvalidInput
from curata.lake.storage import lance_errors

if TYPE_CHECKING:
    import lance
    import pyarrow as pa

VECTOR_INDEX_MIN_ROWS = 10_000
# Searching more IVF partitions and re-ranking more candidates by their exact distance buys
# recall for latency. On 100k rows recall@10 is bound by the share of partitions searched, not
# by PQ (a refine factor of 8 is enough), and every partition searched costs time: with
# sqrt(n) = 316 partitions, 24 probes gave recall 0.88-0.90 and 80 probes 0.97 at twice the
# latency; a third as many partitions (105) with 32 probes gives 0.97 at the latency of 24 of
# 316 (bench/bench_kb.py). A fixed probe count searches a smaller share as a dataset grows.
NPROBES = 32
PARTITIONS_PER_SQRT_ROW = 1 / 3
REFINE_FACTOR = 8
# Rows added after an index was built go into a small index segment of their own: Lance's
# default merge into the existing index rewrites a full-text index whole on every sync (45 ms
# for 750 chunks, 200-270 ms for 20,000, growing with the dataset), a new segment costs about
# 10 ms. Each segment adds a little to every search, so once an index has this many they are
# merged into one.
MAX_INDEX_SEGMENTS = 8
DISTANCE = "_distance"
SCORE = "_score"


def _index_types(ds: lance.LanceDataset) -> dict[str, str]:
    """Indexed column -> index type (e.g. ``IVF_PQ``, ``Inverted``, ``BTree``)."""
    found: dict[str, str] = {}
    for index in ds.describe_indices():
        for field in index.field_names:
            found[field] = index.index_type
    return found


def has_text_index(ds: lance.LanceDataset, column: str) -> bool:
    """Whether ``column`` has a full-text index."""
    return _index_types(ds).get(column, "").lower() == "inverted"


def update_search_indexes(
    ds: lance.LanceDataset,
    reopen: Callable[[lance.LanceDataset], lance.LanceDataset],
    *,
    vector: str | None,
    text: str | None,
) -> lance.LanceDataset:
    """Build missing indexes and merge new rows into existing ones; returns the dataset at the
    Lance version this makes (``ds`` itself when nothing needed doing)."""
    indexed = _index_types(ds)
    rows = ds.count_rows()
    changed = False
    with lance_errors(f"Indexing {ds.uri}"):
        if text is not None and text not in indexed and rows:
            ds.create_scalar_index(text, "INVERTED", with_position=False)
            changed = True
        if vector is not None and vector not in indexed and rows >= VECTOR_INDEX_MIN_ROWS:
            dim = ds.schema.field(vector).type.list_size
            ds.create_index(
                vector,
                index_type="IVF_PQ",
                metric="cosine",
                num_partitions=max(1, round(math.sqrt(rows) * PARTITIONS_PER_SQRT_ROW)),
                num_sub_vectors=_sub_vectors(dim),
            )
            changed = True
        if not changed and indexed and _has_unindexed_rows(ds):
            index_new_rows(ds)
            changed = True
    return reopen(ds) if changed else ds


def index_new_rows(ds: lance.LanceDataset, *, merge_all: bool = False) -> None:
    """Bring every index of ``ds`` up to date with its unindexed rows, in a new segment, or by
    merging all segments into one when an index has :data:`MAX_INDEX_SEGMENTS` of them (or
    ``merge_all``). Commits a new Lance version."""
    segments = max((len(i.segments) for i in ds.describe_indices()), default=1)
    merge = segments if merge_all or segments >= MAX_INDEX_SEGMENTS else 0
    ds.optimize.optimize_indices(num_indices_to_merge=merge)


def _sub_vectors(dim: int) -> int:
    """PQ sub-vectors: 8 or 16 dimensions per sub-vector, and a divisor of ``dim``."""
    for per in (8, 16, 4, 2, 1):
        if dim % per == 0:
            return dim // per
    return 1


def _has_unindexed_rows(ds: lance.LanceDataset) -> bool:
    return any(
        ds.stats.index_stats(index.name).get("num_unindexed_rows", 0) > 0
        for index in ds.describe_indices()
    )


def vector_search(
    ds: lance.LanceDataset,
    column: str,
    query: Any,
    k: int,
    *,
    filter: str | None = None,
    columns: list[str] | None = None,
    schema: pa.Schema | None = None,
) -> pa.Table:
    """The ``k`` rows nearest to ``query`` by cosine distance (column ``_distance``);
    ``schema`` is ``ds.schema`` when the caller has it."""
    import numpy as np

    if column not in (schema or ds.schema).names:
        raise InvalidInput(f"{ds.uri} has no vector column {column!r}.")
    nearest = {
        "column": column,
        "q": np.asarray(query, dtype=np.float32),
        "k": k,
        "metric": "cosine",
        "nprobes": NPROBES,
        "refine_factor": REFINE_FACTOR,
    }
    with lance_errors(f"Searching {column} of {ds.uri}"):
        return ds.to_table(columns=columns, nearest=nearest, filter=filter, prefilter=True)


def text_search(
    ds: lance.LanceDataset,
    column: str,
    query: str,
    k: int,
    *,
    filter: str | None = None,
    columns: list[str] | None = None,
) -> pa.Table:
    """The ``k`` best rows for ``query`` by BM25 (column ``_score``)."""
    import pyarrow as pa

    if not has_text_index(ds, column):
        if ds.count_rows() == 0:
            return pa.table({c: [] for c in [*(columns or ds.schema.names), SCORE]})
        raise InvalidInput(f"{ds.uri} has no full-text index on {column!r}.")
    if not query.strip():
        raise InvalidInput("The search query is empty.")
    with lance_errors(f"Searching {column} of {ds.uri}"):
        return ds.to_table(
            columns=columns,
            full_text_query=query,
            limit=k,
            filter=filter,
            prefilter=True,
        )
