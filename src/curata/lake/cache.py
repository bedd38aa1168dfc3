"""Per-row step results, kept in the lake so that no work is done twice.

One Lance dataset per step fingerprint under ``<lake>/cache/``, holding for each input-row hash
(``__h``) the output rows the step made from it (``__k = 1``), or one marker row (``__k = 0``)
when it made none. The cache is not versioned data: any entry is a correct result of its
fingerprint, so entries written by runs that later failed or were killed are still good.
Concurrent runs may both write a hash; lookups keep the entries of one write (``__w``) only.

Lookups go through an in-memory index of the cache as it was at the first lookup: the first
8 hex digits of each hash as an unsigned 32-bit number, sorted, with the row's position (8
bytes a cached row; prefixes that match by chance only cost reading a row that is dropped).
A batch's hashes are found by binary search and their rows read with one ``take``; Lance's
own ``isin`` filter costs about 0.4 s for 65k hashes in a 1M-row cache, this about 50 ms.
Rows added after the index was built (by this run or a concurrent one) are not looked up
until the next run, so a row repeated in two batches of one run may be computed twice.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from curata.errors import StorageError
from curata.lake.query import duckdb_cursor
from curata.lake.storage import LanceStore, lance_errors

if TYPE_CHECKING:
    import lance
    import numpy as np
    import pyarrow as pa

HASH = "__h"
KIND = "__k"
WRITE = "__w"
META_COLUMNS = (HASH, KIND, WRITE)
# Tries of a cache write that races with other writers.
ADD_ATTEMPTS = 3
# finish() compacts when more than COMPACT_FRAGMENTS fragments have fewer than
# SMALL_FRAGMENT_ROWS rows, into fragments of FRAGMENT_ROWS (a first run's batch-sized
# fragments are left alone: rewriting them would cost as much as writing them).
COMPACT_FRAGMENTS = 32
SMALL_FRAGMENT_ROWS = 8_192
FRAGMENT_ROWS = 65_536


def hash_prefixes(hashes: pa.Array | pa.ChunkedArray) -> np.ndarray[Any, Any]:
    """The first 8 hex digits of each MD5 hex digest, as uint32."""
    import binascii

    import numpy as np
    import pyarrow as pa

    arr = hashes.combine_chunks() if isinstance(hashes, pa.ChunkedArray) else hashes
    if arr.type != pa.string():
        arr = arr.cast(pa.string())
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], np.int32, count=n + 1, offset=arr.offset * 4)
    if n == 0 or arr.null_count or not (np.diff(offsets) == 32).all():
        return np.array([int(h[:8], 16) for h in arr.to_pylist()], np.uint32)
    # Every digest is 32 hex digits, back to back: decode them all at once.
    data = memoryview(arr.buffers()[2])[offsets[0] : offsets[-1]]
    return np.frombuffer(binascii.unhexlify(data), ">u4").reshape(n, 4)[:, 0].astype(np.uint32)


def _written_twice(found: pa.Table) -> bool:
    """Whether some hash has rows from more than one write (concurrent runs computed it)."""
    writes = found.group_by(HASH).aggregate([(WRITE, "count_distinct")])
    return bool(writes.num_rows) and int(writes.column(1).to_numpy().max()) > 1


@dataclass
class _HashIndex:
    """Sorted hash prefixes of one version of a cache, and the row position of each."""

    ds: lance.LanceDataset
    prefixes: np.ndarray[Any, Any]
    positions: np.ndarray[Any, Any]

    @classmethod
    def build(cls, ds: lance.LanceDataset) -> _HashIndex:
        import numpy as np

        with lance_errors("Reading the step cache"):
            parts = [hash_prefixes(b.column(0)) for b in ds.to_batches(columns=[HASH])]
        prefixes = np.concatenate(parts) if parts else np.empty(0, np.uint32)
        order = np.argsort(prefixes, kind="stable")
        kind = np.uint32 if len(order) < 2**32 else np.uint64
        return cls(ds, prefixes[order], order.astype(kind))

    def candidates(self, hashes: pa.Array) -> np.ndarray[Any, Any]:
        """Sorted positions of the rows whose hash may be one of ``hashes``."""
        import numpy as np

        wanted = np.sort(hash_prefixes(hashes))
        lo = np.searchsorted(self.prefixes, wanted, "left")
        counts = np.searchsorted(self.prefixes, wanted, "right") - lo
        total = int(counts.sum())
        if total == 0:
            return np.empty(0, np.int64)
        # The index ranges [lo, lo + count) of every wanted prefix, flattened.
        starts = np.repeat(lo, counts)
        steps = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        return np.unique(self.positions[starts + steps]).astype(np.int64)


class StepCache:
    """Cached results of one step fingerprint."""

    def __init__(self, store: LanceStore, fingerprint: str) -> None:
        self._store = store
        self.fingerprint = fingerprint
        self.path = f"{fingerprint[:40]}.lance"
        self._ds = store.open(self.path)
        self._index: _HashIndex | None = None
        self.writable = True

    def __getstate__(self) -> dict[str, Any]:
        # Worker processes build their own index when they first look up.
        return {**self.__dict__, "_index": None}

    @property
    def is_empty(self) -> bool:
        """True when nothing is cached yet."""
        return self._ds is None

    def lookup(self, hashes: pa.Array) -> pa.Table | None:
        """Cached rows for the given row hashes (only hashes that are cached), or None."""
        import pyarrow.compute as pc

        if self._ds is None or len(hashes) == 0:
            return None
        if self._index is None:
            self._index = _HashIndex.build(self._ds)
        positions = self._index.candidates(hashes)
        if len(positions) == 0:
            return None
        with lance_errors("Reading the step cache"):
            found = self._index.ds.take(positions)
        # Equal prefixes are not equal hashes.
        found = found.filter(pc.is_in(found.column(HASH), value_set=hashes))
        if found.num_rows == 0:
            return None
        if len(pc.unique(found.column(WRITE))) > 1 and _written_twice(found):
            con = duckdb_cursor()
            con.register("found", found)
            found = con.sql(
                f"SELECT * FROM found QUALIFY {WRITE} = min({WRITE}) OVER (PARTITION BY {HASH})"
            ).to_arrow_table()
        return found

    def add(self, table: pa.Table) -> None:
        """Store rows that carry ``__h`` and ``__k`` plus the step's output columns.

        Never fails the run: the cache is only a shortcut. When the rows do not fit the cache
        (the step's output schema changed under the same fingerprint: a non-deterministic
        step), caching stops for this run; when a concurrent writer (another worker process or
        run) created or changed the cache meanwhile, the write is retried on its version.
        """
        import pyarrow as pa

        if not self.writable or table.num_rows == 0:
            return
        table = table.append_column(WRITE, pa.array([time.time_ns()] * table.num_rows, pa.int64()))
        for _ in range(ADD_ATTEMPTS):
            try:
                self._write(table)
                return
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, KeyError):
                break
            except StorageError:
                self._ds = self._store.open(self.path)
        self.writable = False

    def _write(self, table: pa.Table) -> None:
        if self._ds is None:
            with self._creation_lock():
                self._ds = self._store.open(self.path)  # created by another process meanwhile?
                if self._ds is None:
                    with lance_errors("Writing the step cache"):
                        self._ds = self._store.create(self.path, table, replace=False)
                    return
        table = table.select(self._ds.schema.names).cast(self._ds.schema)
        with lance_errors("Writing the step cache"):
            fragments = self._store.write_fragments(self._ds, table)
            self._ds = self._store.commit_append(self._ds, fragments)

    @contextmanager
    def _creation_lock(self) -> Iterator[None]:
        """Serialise the first write between processes of this machine: a Lance create does
        not fail when another process created the dataset meanwhile, one of the two is lost."""
        from curata.config import is_remote

        uri = self._store.uri(self.path)
        try:
            import fcntl
        except ImportError:  # Windows: unlocked, a lost first write costs only its recomputing
            fcntl = None  # type: ignore[assignment]
        if fcntl is None or is_remote(uri):
            yield
            return
        local = uri.removeprefix("file://")
        os.makedirs(os.path.dirname(local), exist_ok=True)
        with open(f"{local}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def finish(self) -> None:
        """Merge the small fragments runs leave behind (one per batch with rows to add: a re-run
        that computes a few rows per batch adds many tiny ones, which slow every lookup)."""
        if self._ds is None or not self.writable:
            return
        small = [
            f for f in self._ds.get_fragments() if f.metadata.physical_rows < SMALL_FRAGMENT_ROWS
        ]
        if len(small) > COMPACT_FRAGMENTS:
            self._ds = self._store.compact(self._ds, target_rows=FRAGMENT_ROWS)

    def clear(self) -> None:
        """Forget everything cached for this fingerprint."""
        self._store.remove_all(self.path)
        self._ds = None
        self._index = None
