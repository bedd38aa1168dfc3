"""Exact Jaccard similarity of the shingle sets of pairs of texts (to verify LSH candidates).

Sets are compared with sorts, not hash tables: each shingle hash is cut to its top 40 bits and
tagged with its text (or its pair) in the 24 bits above, so sorting one uint64 array groups
every set and brings the shingles two sets share next to each other. Two different shingles of
one pair of texts meet in 40 bits with a probability of about ``|A| * |B| / 2**40`` (one in
25 million for 200-shingle texts): the similarity is exact in practice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from curata.quality.dedup.minhash import MinHashParams, text_shingles

if TYPE_CHECKING:
    import numpy as np

    Array = np.ndarray[Any, Any]

#: pairs (or texts) tagged in one sort: the tag has 24 bits
BLOCK = 1 << 24
#: pairs compared at once (bounds the memory of one comparison)
PAIR_BLOCK = 1 << 16
_SHIFT = 40


class ShingleSets:
    """The distinct shingle hashes (top 40 bits) of some texts, sorted, stored flat with offsets.

    >>> import numpy as np
    >>> sets = ShingleSets(["a b c d e f", "a b c d e g", "x"], MinHashParams())
    >>> sets.jaccard(np.array([0, 0]), np.array([1, 2])).round(2).tolist()
    [0.33, 0.0]
    """

    def __init__(self, texts: Any, params: MinHashParams) -> None:
        import numpy as np

        hashes, docs = text_shingles(texts, params)
        n = len(texts)
        parts: list[Array] = []
        owners: list[Array] = []
        for lo in range(0, n, BLOCK):
            sel = (docs >= lo) & (docs < lo + BLOCK) if n > BLOCK else slice(None)
            tagged = ((docs[sel] - lo).astype(np.uint64) << np.uint64(_SHIFT)) | (
                hashes[sel] >> np.uint64(64 - _SHIFT)
            )
            tagged.sort()
            distinct = np.ones(len(tagged), bool)
            distinct[1:] = tagged[1:] != tagged[:-1]
            tagged = tagged[distinct]
            parts.append(tagged & np.uint64((1 << _SHIFT) - 1))
            owners.append((tagged >> np.uint64(_SHIFT)).astype(np.int64) + lo)
        self.hashes: Array = np.concatenate(parts) if parts else np.zeros(0, np.uint64)
        owner = np.concatenate(owners) if owners else np.zeros(0, np.int64)
        self.offsets: Array = np.concatenate(
            [[0], np.cumsum(np.bincount(owner, minlength=n))]
        ).astype(np.int64)

    def sizes(self, docs: Array) -> Array:
        """Number of distinct shingles of each of ``docs``."""
        result: Array = self.offsets[docs + 1] - self.offsets[docs]
        return result

    def _gather(self, docs: Array) -> tuple[Array, Array]:
        """The shingles of ``docs`` one after the other, and which entry of ``docs`` each
        belongs to."""
        import numpy as np

        sizes = self.sizes(docs)
        owner = np.repeat(np.arange(len(docs)), sizes)
        starts = np.repeat(self.offsets[docs] - np.cumsum(sizes) + sizes, sizes)
        return self.hashes[starts + np.arange(len(owner))], owner

    def jaccard(self, a: Array, b: Array) -> Array:
        """Exact Jaccard similarity of the sets of ``a[i]`` and ``b[i]`` (0 when both are
        empty)."""
        import numpy as np

        out = np.zeros(len(a), np.float64)
        for lo in range(0, len(a), PAIR_BLOCK):
            pa_, pb = a[lo : lo + PAIR_BLOCK], b[lo : lo + PAIR_BLOCK]
            ha, oa = self._gather(pa_)
            hb, ob = self._gather(pb)
            # Within a pair each side's values are distinct: a value seen twice is shared.
            both = np.concatenate(
                [
                    (oa.astype(np.uint64) << np.uint64(_SHIFT)) | ha,
                    (ob.astype(np.uint64) << np.uint64(_SHIFT)) | hb,
                ]
            )
            both.sort()
            shared = both[1:][both[1:] == both[:-1]] >> np.uint64(_SHIFT)
            inter = np.bincount(shared.astype(np.int64), minlength=len(pa_)).astype(np.float64)
            union = self.sizes(pa_) + self.sizes(pb) - inter
            out[lo : lo + PAIR_BLOCK] = np.divide(
                inter, union, out=np.zeros_like(inter), where=union > 0
            )
        return out
