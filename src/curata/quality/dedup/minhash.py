"""MinHash signatures of word n-gram shingles, computed with numpy over whole batches.

The sketch is one-permutation MinHash with optimal densification (Li, Owen & Zhang 2012;
Shrivastava 2017): each shingle is hashed once, the hash picks one of ``num_perm`` bins and
its low 32 bits compete for that bin's minimum; bins no shingle fell into borrow the value of
a bin chosen by a fixed hash sequence. For any bin, two documents agree with probability equal
to their Jaccard similarity, as with ``num_perm`` independent permutations — at one hash per
shingle instead of ``num_perm``.

Text is tokenised on bytes: a word is a run of ASCII letters and digits or non-ASCII
characters (Unicode general punctuation and no-break spaces separate words), lower-cased.
Every hash is defined here from fixed constants, so signatures stay comparable across
processes, machines and library versions (they are stored in the lake).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from curata.errors import InvalidInput
from curata.quality.dedup.normalise import as_text_array

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    Array = np.ndarray[Any, Any]

#: value of a bin of a document that has no shingles at all
EMPTY = 0xFFFFFFFF
#: texts are tokenised in pieces of about this many bytes (bounded memory, warm caches)
PIECE_BYTES = 4 << 20
_GOLDEN = 0x9E3779B97F4A7C15
_MAX_ATTEMPTS = 4096


@dataclass(frozen=True)
class MinHashParams:
    """How signatures are made; equal fingerprints give comparable signatures."""

    num_perm: int = 128
    ngram: int = 5
    seed: int = 1

    def __post_init__(self) -> None:
        if not 8 <= self.num_perm <= 1024:
            raise InvalidInput(f"num_perm must be between 8 and 1024, not {self.num_perm}.")
        if not 1 <= self.ngram <= 16:
            raise InvalidInput(f"ngram must be between 1 and 16 words, not {self.ngram}.")

    @property
    def fingerprint(self) -> str:
        """``oph1-p128-n5-s1``: the algorithm version and the parameters."""
        return f"oph1-p{self.num_perm}-n{self.ngram}-s{self.seed}"


def splitmix64(x: Array) -> Array:
    """The splitmix64 finaliser: a well-mixed uint64 from a uint64 array (wraps, no copy
    of the input)."""
    import numpy as np

    mixed: Array = x ^ (x >> np.uint64(30))  # a new array; the rest works in it
    mixed *= np.uint64(0xBF58476D1CE4E5B9)
    mixed ^= mixed >> np.uint64(27)
    mixed *= np.uint64(0x94D049BB133111EB)
    mixed ^= mixed >> np.uint64(31)
    return mixed


def _constants(count: int, salt: int) -> Array:
    """``count`` fixed odd uint64 constants."""
    import numpy as np

    base = np.arange(count, dtype=np.uint64) + np.uint64(salt * 1_000_003 + 1)
    return splitmix64(base * np.uint64(_GOLDEN)) | np.uint64(1)


def _tables() -> tuple[Array, Array]:
    import numpy as np

    word = np.zeros(256, bool)
    word[ord("0") : ord("9") + 1] = True
    word[ord("a") : ord("z") + 1] = True
    word[ord("A") : ord("Z") + 1] = True
    word[128:] = True
    tab = _constants(64 * 256, 7).reshape(64, 256)
    return word, tab


_WORD_BYTE, _TAB = _tables()
_WORD_BYTE_TABLE = _WORD_BYTE.astype("uint8").tobytes()


def _translate(data: Array, table: bytes, dtype: str) -> Array:
    """``data`` (bytes) mapped through a 256-byte table, as ``dtype``: bytes.translate is about
    three times as fast as indexing (numpy first widens every uint8 index to 64 bits)."""
    import numpy as np

    out: Array = np.frombuffer(data.tobytes().translate(table), dtype)
    return out


_BLOCK_MULT = _constants(4, 11)


def hash_strings(arr: pa.Array) -> Array:
    """A 64-bit hash of each string of a (large_)string array without nulls: tabulation
    hashing of (position, byte), then mixed with the length."""
    import numpy as np

    offsets, data = _buffers(arr)
    lengths = np.diff(offsets)
    if len(data) == 0:
        return splitmix64(lengths.astype(np.uint64))
    pos = np.arange(len(data), dtype=np.int64) - np.repeat(offsets[:-1], lengths)
    contrib = np.zeros(len(data) + 1, np.uint64)  # a trailing 0: every start is an index
    contrib[:-1] = _TAB[pos & 63, data] * ((pos >> 6).astype(np.uint64) * np.uint64(2) + 1)
    sums = np.add.reduceat(contrib, offsets[:-1]) if len(arr) else contrib[:0]
    sums[lengths == 0] = 0
    return splitmix64(sums ^ (lengths.astype(np.uint64) * np.uint64(_GOLDEN)))


def _buffers(arr: pa.Array) -> tuple[Array, Array]:
    """Offsets (from 0) and bytes of a large_string array."""
    import numpy as np

    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], np.int64, len(arr) + 1, arr.offset * 8)
    if bufs[2] is None or offsets[-1] == offsets[0]:
        return offsets - offsets[0], np.zeros(0, np.uint8)
    data = np.frombuffer(bufs[2], np.uint8)[offsets[0] : offsets[-1]]
    return offsets - offsets[0], data


def _pieces(arr: pa.LargeStringArray) -> list[pa.LargeStringArray]:
    """Consecutive slices of about PIECE_BYTES each (a longer text is a piece of its own)."""
    import numpy as np

    offsets, _ = _buffers(arr)
    if len(arr) == 0:
        return []
    cuts = np.searchsorted(offsets, np.arange(PIECE_BYTES, offsets[-1], PIECE_BYTES))
    bounds = np.unique(np.concatenate([[0], np.minimum(cuts, len(arr)), [len(arr)]]))
    return [arr.slice(int(a), int(b - a)) for a, b in pairwise(bounds)]


def _word_mask(data: Array) -> Array:
    """Which bytes belong to words."""
    import numpy as np

    mask = _translate(data, _WORD_BYTE_TABLE, "bool").copy()  # written to below
    if len(data) < 2 or not mask.any():
        return mask
    lead = np.flatnonzero(data[:-1] == 0xC2)
    nbsp = lead[np.isin(data[lead + 1], (0xA0, 0xAB, 0xBB))]  # no-break space, « »
    mask[nbsp] = mask[nbsp + 1] = False
    if len(data) >= 3:
        e2 = np.flatnonzero(data[:-2] == 0xE2)
        punct = e2[(data[e2 + 1] == 0x80) | (data[e2 + 1] == 0x81)]  # U+2000-U+207F
        mask[punct] = mask[punct + 1] = mask[punct + 2] = False
    return mask


def _piece_words(piece: pa.LargeStringArray) -> tuple[Array, Array]:
    """Word hashes of one piece, in order, and the number of words of each text."""
    import numpy as np
    import pyarrow.compute as pc

    offsets, data = _buffers(piece)
    ascii_only = len(data) == 0 or int(data.max()) < 128
    # Arrow's ascii_lower is five times as fast as a byte table here.
    piece = pc.ascii_lower(piece) if ascii_only else pc.utf8_lower(piece)
    offsets, data = _buffers(piece)
    n = len(data)
    if n == 0:
        return np.zeros(0, np.uint64), np.zeros(len(piece), np.int64)
    is_word = _translate(data, _WORD_BYTE_TABLE, "bool") if ascii_only else _word_mask(data)
    first = is_word.copy()
    first[1:] &= ~is_word[:-1]
    last = is_word.copy()
    last[:-1] &= ~is_word[1:]
    text_starts = offsets[:-1][offsets[:-1] < n]
    first[text_starts] = is_word[text_starts]
    text_ends = offsets[1:][offsets[1:] > 0] - 1
    last[text_ends] = is_word[text_ends]
    starts = np.flatnonzero(first)
    lengths = np.flatnonzero(last) + 1 - starts
    counts = np.searchsorted(starts, offsets[1:]) - np.searchsorted(starts, offsets[:-1])
    return _hash_spans(data, starts, lengths), counts


def _hash_spans(data: Array, starts: Array, lengths: Array) -> Array:
    """A 64-bit hash of each byte span: words of up to 32 bytes are read 8 bytes at a time
    (four gathers at most), longer ones by tabulation over their bytes."""
    import numpy as np

    padded = np.zeros(len(data) + 8, np.uint8)
    padded[: len(data)] = data
    # Element i: the 8 bytes from byte i, as one (unaligned) integer; gathering from it is twice
    # as fast as gathering rows of 8 bytes.
    eight = np.ndarray((len(data) + 1,), np.uint64, buffer=padded, strides=(1,))
    acc = lengths.astype(np.uint64) * np.uint64(_GOLDEN)
    short = lengths <= 32
    # Every span gets its first block without selecting rows (most words have one block);
    # long spans are hashed apart below, which replaces what this adds to them.
    acc += _first_bytes(eight[starts], np.minimum(lengths, 8)) * _BLOCK_MULT[0]
    rows = np.flatnonzero(short & (lengths > 8))  # the few words with a second block
    for block in range(1, 4):
        rows = rows[lengths[rows] > 8 * block]
        if len(rows) == 0:
            break
        values = eight[starts[rows] + 8 * block]
        keep = np.minimum(lengths[rows] - 8 * block, 8)
        acc[rows] += _first_bytes(values, keep) * _BLOCK_MULT[block]
    long_rows = np.flatnonzero(~short)
    if len(long_rows):
        acc[long_rows] = _hash_long(data, starts[long_rows], lengths[long_rows])
    return splitmix64(acc)


def _first_bytes(values: Array, keep: Array) -> Array:
    """The first ``keep`` (1-8) bytes of each little-endian 8-byte value, the rest zeroed: two
    shifts, where a lookup of the mask by ``keep`` would gather."""
    import numpy as np

    drop = (np.uint64(8) - keep.astype(np.uint64)) * np.uint64(8)
    kept: Array = (values << drop) >> drop
    return kept


def _hash_long(data: Array, starts: Array, lengths: Array) -> Array:
    """Tabulation hash of long spans (linear in their bytes, whatever their lengths)."""
    import numpy as np

    total = int(lengths.sum())
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    pos = np.arange(total, dtype=np.int64) - np.repeat(first, lengths)
    values = data[np.repeat(starts, lengths) + pos]
    contrib = _TAB[pos & 63, values] * ((pos >> 6).astype(np.uint64) * np.uint64(2) + 1)
    sums: Array = np.add.reduceat(contrib, first) + np.uint64(1)
    return sums


def word_hashes(texts: Any) -> tuple[Array, Array]:
    """The hash of every word of every text, in order, and the number of words per text
    (null texts have none).

    >>> h, counts = word_hashes(["Hello, world!", None, "hello WORLD"])
    >>> counts.tolist(), bool(h[0] == h[2]), bool(h[1] == h[3])
    ([2, 0, 2], True, True)
    """
    import numpy as np
    import pyarrow.compute as pc

    arr = pc.fill_null(as_text_array(texts), "")
    parts = [_piece_words(p) for p in _pieces(arr)]
    if not parts:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def shingle_hashes(words: Array, counts: Array, ngram: int, seed: int = 1) -> tuple[Array, Array]:
    """Hashes of the word ``ngram``-grams of each text and the text each belongs to (texts of
    fewer words give one shingle of all their words; texts without words give none).

    Returns:
        ``(hashes, docs)``: uint64 hashes and int64 text positions, grouped by text in order.
    """
    import numpy as np

    n_docs = len(counts)
    doc_of_word = np.repeat(np.arange(n_docs, dtype=np.int64), counts)
    mult = _constants(ngram, 100 + seed)
    windows = len(words) - ngram + 1
    hashes = np.zeros(0, np.uint64)
    docs = np.zeros(0, np.int64)
    if windows > 0:
        acc = words[:windows] * mult[0]
        for k in range(1, ngram):
            acc += words[k : k + windows] * mult[k]
        valid = doc_of_word[:windows] == doc_of_word[ngram - 1 :]
        hashes, docs = acc[valid], doc_of_word[:windows][valid]
    short = np.flatnonzero((counts > 0) & (counts < ngram))
    if len(short):
        first = np.concatenate([[0], np.cumsum(counts)])[short]
        acc = np.zeros(len(short), np.uint64)
        for k in range(ngram - 1):
            has = counts[short] > k
            acc[has] += words[first[has] + k] * mult[k]
        hashes = np.concatenate([hashes, acc])
        docs = np.concatenate([docs, short])
        order = np.argsort(docs, kind="stable")
        hashes, docs = hashes[order], docs[order]
    salt = np.uint64(splitmix64(np.array([seed], np.uint64))[0])
    return splitmix64(hashes ^ salt), docs


def text_shingles(texts: Any, params: MinHashParams) -> tuple[Array, Array]:
    """:func:`shingle_hashes` of texts."""
    words, counts = word_hashes(texts)
    return shingle_hashes(words, counts, params.ngram, params.seed)


def signatures(texts: Any, params: MinHashParams | None = None) -> Array:
    """MinHash signatures of ``texts``: an ``(n, num_perm)`` uint32 array. A text without
    words gets a row of :data:`EMPTY`, which matches nothing.

    >>> sig = signatures(["the cat sat on the mat today", "the cat sat on the mat today"])
    >>> sig.shape, bool((sig[0] == sig[1]).all())
    ((2, 128), True)
    """
    import numpy as np
    import pyarrow.compute as pc

    params = params or MinHashParams()
    arr = pc.fill_null(as_text_array(texts), "")
    out = [_piece_signatures(p, params) for p in _pieces(arr)]
    if not out:
        return np.zeros((0, params.num_perm), np.uint32)
    return np.concatenate(out)


def _piece_signatures(piece: pa.LargeStringArray, params: MinHashParams) -> Array:
    import numpy as np

    k = params.num_perm
    words, counts = _piece_words(piece)
    hashes, docs = shingle_hashes(words, counts, params.ngram, params.seed)
    bins = ((hashes >> np.uint64(32)) * np.uint64(k)) >> np.uint64(32)
    values = np.minimum(hashes & np.uint64(0xFFFFFFFF), np.uint64(EMPTY - 1)).astype(np.uint32)
    flat = np.full(len(piece) * k, EMPTY, np.uint32)
    np.minimum.at(flat, docs * k + bins.astype(np.int64), values)
    sig: Array = flat.reshape(len(piece), k)
    _densify(sig, params.seed)
    return sig


def _densify(sig: Array, seed: int) -> None:
    """Fill empty bins in place (optimal densification): empty bin ``j`` takes the value of
    the first filled bin along a hash sequence of ``(j, attempt)``, the same for every text."""
    import numpy as np

    k = sig.shape[1]
    filled = sig != EMPTY
    has_any = filled.any(axis=1)
    rows, cols = np.nonzero(~filled & has_any[:, None])
    base = _constants(2, 200 + seed)
    attempt = 1
    while len(rows) and attempt <= _MAX_ATTEMPTS:
        key = cols.astype(np.uint64) * base[0] + base[1:] * np.uint64(attempt)
        pick = (((splitmix64(key) >> np.uint64(32)) * np.uint64(k)) >> np.uint64(32)).astype(
            np.int64
        )
        ok = filled[rows, pick]
        sig[rows[ok], cols[ok]] = sig[rows[ok], pick[ok]]
        rows, cols = rows[~ok], cols[~ok]
        attempt += 1
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):  # astronomically rare
        nxt = np.flatnonzero(np.roll(filled[r], -c))[0]
        sig[r, c] = sig[r, (c + nxt) % k]


def estimated_jaccard(a: Array, b: Array) -> Array:
    """Share of equal bins between rows of two signature arrays (empty rows give 0)."""
    import numpy as np

    same = (a == b).mean(axis=-1)
    return np.where((a == EMPTY).all(axis=-1) | (b == EMPTY).all(axis=-1), 0.0, same)
