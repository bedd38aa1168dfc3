"""Locality-sensitive hashing of MinHash signatures: bands of rows, and the pairs of texts
that share a band.

Bands and rows are chosen as datasketch chooses them: the ``(b, r)`` with ``b * r <=
num_perm`` minimising the weighted areas of false positives (below the threshold) and false
negatives (above it) under the S-curve ``1 - (1 - s^r)^b``. curata weighs false negatives
more (0.95 against 0.05) because every candidate is verified with the exact Jaccard
similarity afterwards: a false candidate costs a comparison, a missed one is never found.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from curata.errors import InvalidInput
from curata.quality.dedup.minhash import EMPTY, _constants, splitmix64

if TYPE_CHECKING:
    import numpy as np

    Array = np.ndarray[Any, Any]

#: (false positive weight, false negative weight)
DEFAULT_WEIGHTS = (0.05, 0.95)


@lru_cache(maxsize=64)
def optimal_bands(
    threshold: float, num_perm: int, weights: tuple[float, float] = DEFAULT_WEIGHTS
) -> tuple[int, int]:
    """``(bands, rows)`` for a Jaccard ``threshold`` with ``num_perm`` signature values.

    >>> optimal_bands(0.8, 128, (0.5, 0.5))  # what datasketch's MinHashLSH picks
    (9, 13)
    """
    import numpy as np

    if not 0.0 < threshold < 1.0:
        raise InvalidInput(f"The threshold must be between 0 and 1 (exclusive), not {threshold}.")
    below = np.linspace(0.0, threshold, 401)
    above = np.linspace(threshold, 1.0, 401)
    best: tuple[float, int, int] | None = None
    for b in range(1, num_perm + 1):
        rows = np.arange(1, num_perm // b + 1, dtype=np.float64)[:, None]
        fp = np.trapezoid(1 - (1 - below[None, :] ** rows) ** b, below, axis=1)
        fn = np.trapezoid((1 - above[None, :] ** rows) ** b, above, axis=1)
        error = np.atleast_1d(weights[0] * fp + weights[1] * fn)
        i = int(np.argmin(error))
        if best is None or error[i] < best[0]:
            best = (float(error[i]), b, i + 1)
    assert best is not None
    return best[1], best[2]


def band_keys(signatures: Array, bands: int, rows: int) -> Array:
    """An ``(n, bands)`` uint64 array: the hash of each band of each signature."""
    import numpy as np

    n = signatures.shape[0]
    mult = _constants(rows, 300)
    out = np.empty((n, bands), np.uint64)
    for band in range(bands):
        block = signatures[:, band * rows : (band + 1) * rows].astype(np.uint64)
        acc = (block * mult[None, :]).sum(axis=1, dtype=np.uint64)
        out[:, band] = splitmix64(acc + np.uint64(band))
    return out


def candidate_pairs(
    signatures: Array, bands: int, rows: int, *, new: Array | None = None
) -> tuple[Array, Array]:
    """Pairs ``(a, b)``, ``a < b``, of rows that share at least one band.

    In a group of rows sharing a band, each row is paired with the group's first row and with
    the row before it, not with every other row: a group of a thousand copies gives two
    thousand pairs, not half a million, and union-find still joins them all.

    Args:
        signatures: ``(n, num_perm)`` uint32 signatures; rows of :data:`EMPTY` never pair.
        bands: number of bands.
        rows: values per band.
        new: optional bool mask of rows to check; pairs of two rows outside it are skipped
            (they were checked on an earlier run).
    """
    import numpy as np

    valid = ~(signatures == EMPTY).all(axis=1)
    index = np.flatnonzero(valid)
    keys = band_keys(signatures[index], bands, rows)
    firsts: list[Array] = []
    seconds: list[Array] = []
    for band in range(bands):
        order = np.argsort(keys[:, band], kind="stable")
        ordered = keys[order, band]
        same = ordered[1:] == ordered[:-1]
        if not same.any():
            continue
        run_start = np.concatenate([[True], ~same])
        head = np.maximum.accumulate(np.where(run_start, np.arange(len(order)), 0))
        members = np.flatnonzero(~run_start)
        for partner in (head[members], members - 1):
            a, b = index[order[partner]], index[order[members]]
            firsts.append(np.minimum(a, b))
            seconds.append(np.maximum(a, b))
    if not firsts:
        empty = np.zeros(0, np.int64)
        return empty, empty
    a, b = np.concatenate(firsts), np.concatenate(seconds)
    n = max(signatures.shape[0], 1)
    pairs = np.unique(a.astype(np.int64) * n + b)
    a, b = pairs // n, pairs % n
    if new is not None:
        keep = new[a] | new[b]
        a, b = a[keep], b[keep]
    return a, b
