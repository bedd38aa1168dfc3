"""Find duplicates in a list of texts: exact, near (MinHash LSH) or semantic (cosine)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Literal

from curata.errors import InvalidInput
from curata.quality.dedup.clusters import check_keep, components, group_members, pick_canonical
from curata.quality.dedup.jaccard import ShingleSets
from curata.quality.dedup.lsh import candidate_pairs, optimal_bands
from curata.quality.dedup.minhash import MinHashParams, signatures
from curata.quality.dedup.normalise import as_text_array, exact_groups
from curata.quality.dedup.semantic import embed_texts, similar_pairs

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    Array = np.ndarray[Any, Any]

Method = Literal["exact", "near", "semantic"]
METHODS = ("exact", "near", "semantic")
DEFAULT_THRESHOLDS = {"exact": 1.0, "near": 0.8, "semantic": 0.95}


@dataclass(frozen=True)
class DedupResult:
    """Clusters of duplicate rows, by position, and the row kept from each.

    Attributes:
        method: ``exact``, ``near`` or ``semantic``.
        threshold: the similarity a pair needed (1.0 for exact).
        clusters: the members of each cluster (two rows or more), sorted; clusters in the
            order of their first member.
        canonical: the member kept from each cluster.
        similarity: per cluster, each member's similarity to the canonical member (Jaccard of
            shingles for near, cosine for semantic, 1.0 for exact).
    """

    method: str
    threshold: float
    clusters: list[list[int]] = field(default_factory=list)
    canonical: list[int] = field(default_factory=list)
    similarity: list[list[float]] = field(default_factory=list)

    @property
    def duplicates(self) -> list[int]:
        """Rows to remove (every member but the canonical one), sorted."""
        return sorted(m for c, k in zip(self.clusters, self.canonical, strict=True) for m in c
                      if m != k)  # fmt: skip

    def keep_mask(self, n: int) -> Array:
        """A bool array of ``n``: False for the rows to remove."""
        import numpy as np

        mask = np.ones(n, bool)
        mask[self.duplicates] = False
        return mask

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "method": self.method,
            "threshold": self.threshold,
            "clusters": self.clusters,
            "canonical": self.canonical,
            "similarity": self.similarity,
        }


def check_method(method: str, threshold: float | None) -> float:
    """The threshold to use for ``method`` (its default when None), checked."""
    if method not in METHODS:
        raise InvalidInput(f"Unknown dedup method {method!r}.", hint="Use exact, near or semantic.")
    value = DEFAULT_THRESHOLDS[method] if threshold is None else float(threshold)
    if method == "near" and not 0.0 < value < 1.0:
        raise InvalidInput(f"A near-dedup threshold is a Jaccard similarity in (0, 1): {value}.")
    if method == "semantic" and not 0.0 < value <= 1.0:
        raise InvalidInput(f"A semantic threshold is a cosine similarity in (0, 1]: {value}.")
    return value


def find_duplicates(
    texts: Any,
    method: str = "exact",
    threshold: float | None = None,
    keep: str = "first",
    *,
    keys: Sequence[Any] | pa.Array | None = None,
    params: MinHashParams | None = None,
    embedder: str = "minilm",
    vectors: Array | None = None,
) -> DedupResult:
    """Clusters of duplicates among ``texts`` and the row to keep from each.

    Args:
        texts: a list of str (or None) or an Arrow string array.
        method: ``exact`` (equal after NFKC, case folding and whitespace collapsing), ``near``
            (Jaccard similarity of word 5-gram shingles, MinHash LSH then verified exactly) or
            ``semantic`` (cosine similarity of embeddings).
        threshold: the similarity a pair needs (default 0.8 near, 0.95 semantic).
        keep: ``first`` (the lowest key, else the first row) or ``longest`` (the longest text).
        keys: the rows' keys, for ``keep="first"``.
        params: MinHash parameters for ``near`` (default 128 values, 5-word shingles).
        embedder: embedder spec for ``semantic`` (``minilm``, ``hash:DIM``, ...).
        vectors: ready-made vectors for ``semantic`` (an ``(n, dim)`` array), e.g. a
            knowledge base's chunk embeddings; ``texts`` are then only used for ``longest``.

    Returns:
        A :class:`DedupResult`.

    Raises:
        InvalidInput: unknown method or keep, a threshold out of range, texts that are not text.

    >>> r = find_duplicates(["Hello  World", "hello world", "other"], "exact")
    >>> r.clusters, r.canonical, r.duplicates
    ([[0, 1]], [0], [1])
    """
    import numpy as np
    import pyarrow.compute as pc

    value = check_method(method, threshold)
    check_keep(keep)
    arr = as_text_array(texts) if vectors is None or texts is not None else None
    n = len(arr) if arr is not None else len(vectors) if vectors is not None else 0
    lengths = None
    if arr is not None:
        lengths = np.asarray(pc.fill_null(pc.utf8_length(arr), 0), dtype=np.int64)
    rank = _rank(keys, n)
    if method == "exact":
        assert arr is not None
        a, b = exact_pairs(exact_groups(arr))
        return build_result(method, value, a, b, keep, rank, lengths, _same)
    if method == "near":
        assert arr is not None
        params = params or MinHashParams()
        sig = signatures(arr, params)
        return near_result(
            sig, arr.take, value, keep=keep, rank=rank, lengths=lengths, params=params
        )
    if vectors is None:
        assert arr is not None
        vectors = embed_texts(arr.to_pylist(), embedder)
    return semantic_result(np.asarray(vectors), value, keep, rank, lengths)


def _rank(keys: Any, n: int) -> Array:
    """Position of each row when sorted by key (by row order without keys)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if keys is None:
        return np.arange(n)
    arr = keys if isinstance(keys, pa.Array | pa.ChunkedArray) else pa.array(list(keys))
    if len(arr) != n:
        raise InvalidInput(f"Got {len(arr)} keys for {n} texts.")
    order = np.asarray(pc.sort_indices(arr))
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    return rank


def exact_pairs(groups: Array) -> tuple[Array, Array]:
    """Edges joining each row to the first row of its group (rows of group -1 join nothing)."""
    import numpy as np

    rows = np.flatnonzero(groups >= 0)
    g = groups[rows]
    order = np.argsort(g, kind="stable")
    rows, g = rows[order], g[order]
    start = np.concatenate([[True], g[1:] != g[:-1]]) if len(g) else np.zeros(0, bool)
    head = rows[np.maximum.accumulate(np.where(start, np.arange(len(g)), 0))] if len(g) else rows
    dup = ~start
    return head[dup], rows[dup]


def near_result(
    sig: Array,
    load_texts: Callable[[Array], Any],
    threshold: float,
    *,
    keep: str,
    rank: Array,
    lengths: Array | None,
    params: MinHashParams,
) -> DedupResult:
    """Clusters from signatures: LSH candidates, verified by exact Jaccard similarity of the
    shingles of the texts involved (``load_texts(rows)`` gives them)."""
    import numpy as np

    bands, rows = optimal_bands(threshold, params.num_perm)
    a, b = candidate_pairs(sig, bands, rows)
    involved = np.unique(np.concatenate([a, b]))
    if len(involved) == 0:
        return DedupResult("near", threshold)
    sets = ShingleSets(load_texts(involved), params)

    def local(x: Array) -> Array:
        found: Array = np.searchsorted(involved, x)
        return found

    sim = sets.jaccard(local(a), local(b))
    ok = sim >= threshold - 1e-12
    a, b, sim = a[ok], b[ok], sim[ok]
    n = max(sig.shape[0], 1)
    verified = a * n + b  # sorted: candidate_pairs returns pairs in this order

    def jaccard(members: Array, canonical: Array) -> Array:
        """Mostly pairs verified already; the others (joined through a third text) are
        computed."""
        lo, hi = np.minimum(members, canonical), np.maximum(members, canonical)
        at = np.minimum(np.searchsorted(verified, lo * n + hi), max(len(verified) - 1, 0))
        known = verified[at] == lo * n + hi if len(verified) else np.zeros(len(lo), bool)
        out = np.ones(len(lo))
        out[known] = sim[at[known]]
        todo = np.flatnonzero(~known & (lo != hi))
        out[todo] = sets.jaccard(local(lo[todo]), local(hi[todo]))
        return out

    return build_result("near", threshold, a, b, keep, rank, lengths, jaccard)


def semantic_result(
    vectors: Array, threshold: float, keep: str, rank: Array, lengths: Array | None
) -> DedupResult:
    """Clusters of rows whose vectors have a cosine similarity of at least ``threshold``."""
    import numpy as np

    a, b, _ = similar_pairs(vectors, threshold)
    norms = np.linalg.norm(vectors, axis=1)
    unit = vectors / np.where(norms > 0, norms, 1.0)[:, None]

    def cosine(members: Array, canonical: Array) -> Array:
        dots: Array = np.einsum("ij,ij->i", unit[members], unit[canonical])
        return np.minimum(dots, 1.0)

    return build_result("semantic", threshold, a, b, keep, rank, lengths, cosine)


def build_result(  # noqa: PLR0917 - the pairs and how to choose among them
    method: str,
    threshold: float,
    a: Array,
    b: Array,
    keep: str,
    rank: Array,
    lengths: Array | None,
    similarity: Callable[[Array, Array], Array],
) -> DedupResult:
    """Union-find over the similar pairs, a canonical row per cluster, and each member's
    similarity to it (``similarity(members, canonicals)``, element-wise)."""
    import numpy as np

    groups = group_members(*components(a, b))
    if not groups:
        return DedupResult(method, threshold)
    canonical = [pick_canonical(members, keep, rank, lengths) for members in groups]
    sizes = [len(g) for g in groups]
    sims = similarity(np.concatenate(groups), np.repeat(np.array(canonical), sizes))
    rounded = np.round(np.asarray(sims, np.float64), 6).tolist()
    bounds = np.cumsum([0, *sizes]).tolist()
    return DedupResult(
        method,
        threshold,
        [g.tolist() for g in groups],
        canonical,
        [rounded[lo:hi] for lo, hi in pairwise(bounds)],
    )


def _same(members: Array, canonical: Array) -> Array:
    """Similarity of exact duplicates: 1."""
    import numpy as np

    return np.ones(len(members))
