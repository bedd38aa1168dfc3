"""Semantic near-duplicates: pairs of unit vectors whose cosine similarity reaches a
threshold, found with blocked matrix products (exact; memory bounded by the block size)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from curata.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    Array = np.ndarray[Any, Any]

#: rows per block: a block product is BLOCK x BLOCK float32 (64 MiB)
BLOCK = 4096


def similar_pairs(
    vectors: Array, threshold: float, *, new: Array | None = None
) -> tuple[Array, Array, Array]:
    """Pairs ``(a, b, cosine)``, ``a < b``, whose cosine similarity is at least ``threshold``.

    Rows of zeros (no vector) pair with nothing. With ``new`` (a bool mask), only pairs with
    at least one new row are compared: old rows were compared with each other before.

    >>> import numpy as np
    >>> v = np.array([[1, 0], [1, 0], [0, 1]], np.float32)
    >>> [x.tolist() for x in similar_pairs(v, 0.95)]
    [[0], [1], [1.0]]
    """
    import numpy as np

    if not -1.0 <= threshold <= 1.0:
        raise InvalidInput(f"A cosine threshold must be between -1 and 1, not {threshold}.")
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1)
    usable = np.flatnonzero(norms > 0)
    v = v[usable] / norms[usable, None]
    is_new = np.ones(len(usable), bool) if new is None else np.asarray(new, bool)[usable]
    out_a: list[Array] = []
    out_b: list[Array] = []
    out_s: list[Array] = []
    for lo in range(0, len(v), BLOCK):
        rows = v[lo : lo + BLOCK]
        for hi in range(lo, len(v), BLOCK):
            if not (is_new[lo : lo + BLOCK].any() or is_new[hi : hi + BLOCK].any()):
                continue
            sims = rows @ v[hi : hi + BLOCK].T
            i, j = np.nonzero(sims >= threshold - 1e-6)
            a, b = i + lo, j + hi
            keep = (a < b) & (is_new[a] | is_new[b])
            out_a.append(usable[a[keep]])
            out_b.append(usable[b[keep]])
            out_s.append(np.minimum(sims[i[keep], j[keep]].astype(np.float64), 1.0))
    if not out_a:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)
    return np.concatenate(out_a), np.concatenate(out_b), np.concatenate(out_s)


def vector_column(values: pa.Array | pa.ChunkedArray) -> Array | None:
    """A list / fixed-size-list column of numbers as an ``(n, dim)`` float32 array (nulls as
    rows of zeros), or None when the column is not one."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    t = arr.type
    if not (pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t)):
        return None
    if not (pa.types.is_floating(t.value_type) or pa.types.is_integer(t.value_type)):
        return None
    lengths = np.asarray(pc.fill_null(pc.list_value_length(arr), 0), dtype=np.int64)
    dims = set(np.unique(lengths[np.asarray(arr.is_valid())]).tolist())
    if len(dims) > 1:
        raise InvalidInput(f"The vectors have different lengths: {sorted(dims)}.")
    dim = dims.pop() if dims else 0
    out = np.zeros((len(arr), dim), np.float32)
    valid = np.flatnonzero(np.asarray(arr.is_valid()))
    if dim and len(valid):
        values = np.asarray(arr.filter(arr.is_valid()).flatten(), dtype=np.float32)
        out[valid] = values.reshape(len(valid), dim)
    return out


def embed_texts(texts: list[str | None], embedder: str) -> Array:
    """Vectors of ``texts`` from the embedder named by ``embedder`` (null or blank texts get
    rows of zeros, which match nothing)."""
    import numpy as np

    from curata.rag.embedders import load_embedder

    model = load_embedder(embedder)
    present = [i for i, t in enumerate(texts) if t is not None and t.strip()]
    out = np.zeros((len(texts), 0), np.float32)
    if present:
        vecs = np.asarray(model.embed([texts[i] or "" for i in present]), np.float32)
        out = np.zeros((len(texts), vecs.shape[1]), np.float32)
        out[present] = vecs
    return out
