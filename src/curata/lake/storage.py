"""Lance behind one door: every read and write of a dataset's files goes through here.

Lance keeps one linear history of versions per dataset. curata maps its own versions (and
branches) onto it through the catalog: before a write, the Lance dataset is brought to the
published version the write builds on, restoring it when Lance's latest differs (an orphan
written by a crashed writer, or the head of another branch). Errors from Lance become
:class:`~curata.errors.StorageError` or :class:`~curata.errors.InvalidInput`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from curata.errors import CurataError, InvalidInput, StorageError

if TYPE_CHECKING:
    import lance
    import pyarrow as pa

# Lance logs a warning for every dataset it creates; that is noise for curata's users.
os.environ.setdefault("LANCE_LOG", "error")

# The datasets a store opens share one Lance session: its caches of index and file metadata.
# A dataset opened without one starts cold, so each search of a knowledge base read the vector
# index's centroids and probed partitions from disk again (kb.search p50 18.5 ms with a new
# session per open, 10.8 ms shared, at 100k chunks). The bounds are Lance's caches' sizes;
# they fill only with what is read.
SESSION_INDEX_CACHE_BYTES = 1 << 30
SESSION_METADATA_CACHE_BYTES = 256 << 20

# Scans of a local lake read one fragment at a time. Lance's default keeps several in flight:
# the input scan of a 10M-row pipeline held about 0.2 GiB more for it, and read no faster from
# a local disk (about 1.2 s for 10M rows either way on 2 cores: the reads within a fragment
# still run in parallel). On an object store Lance's default stays, since overlapping
# fragments hides the latency of each request.
LOCAL_FRAGMENT_READAHEAD = 1


def _scan_defaults(uri: str) -> dict[str, Any] | None:
    """Default scan options for the Lance dataset at ``uri`` (None: Lance's own)."""
    from curata.config import is_remote

    return None if is_remote(uri) else {"fragment_readahead": LOCAL_FRAGMENT_READAHEAD}


def _release_freed_memory() -> None:
    """Give the memory this process has freed back to the system (with glibc; elsewhere a no-op).

    Lance's reader and writer threads free large buffers into glibc's per-thread arenas, which
    keep them: the process running a 10M-row pipeline held about 0.75 GiB while it streamed the
    output, 0.6 GiB with this called after each piece written (a few milliseconds a call).
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    import ctypes

    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, TypeError, AttributeError):  # not glibc (macOS, musl, Windows)
        return None


@contextmanager
def lance_errors(what: str) -> Iterator[None]:
    """Translate Lance's exceptions into curata's, naming ``what`` was being done."""
    try:
        yield
    except CurataError:
        raise
    except (ValueError, OSError, RuntimeError, TypeError, NotImplementedError) as err:
        text = str(err).split(", /home/runner", 1)[0].split(", /Users/", 1)[0]
        if "LanceError(Schema)" in text or "Invalid user input" in text or "parse" in text:
            raise InvalidInput(f"{what}: {text}") from err
        raise StorageError(f"{what}: {text}") from err


def stream(
    ds: lance.LanceDataset, columns: list[str], *, fragments: list[Any] | None = None
) -> pa.RecordBatchReader:
    """A reader of ``columns`` of ``ds`` (of ``fragments`` only, when given: none, no rows)."""
    # ds may come from a commit, which does not carry the defaults LanceStore opens with.
    options = _scan_defaults(ds.uri) or {}
    with lance_errors(f"Reading {ds.uri}"):
        return ds.scanner(columns=columns, fragments=fragments, **options).to_reader()


class LanceStore:
    """Lance datasets under one root URI (``<lake>/data``)."""

    def __init__(self, root: str, storage_options: dict[str, str] | None = None) -> None:
        self.root = root.rstrip("/")
        self.storage_options = storage_options
        self._session: Any = None  # lance.Session (not exported for typing)

    def __getstate__(self) -> dict[str, Any]:
        # A worker process starts its own session.
        return {**self.__dict__, "_session": None}

    @property
    def session(self) -> Any:
        """The Lance session of the datasets this store opens (created on first use)."""
        if self._session is None:
            import lance

            self._session = lance.Session(  # type: ignore[attr-defined]
                index_cache_size_bytes=SESSION_INDEX_CACHE_BYTES,
                metadata_cache_size_bytes=SESSION_METADATA_CACHE_BYTES,
            )
        return self._session

    def uri(self, path: str) -> str:
        """Absolute URI of a dataset stored at ``path`` (relative to the lake)."""
        return f"{self.root}/{path}"

    def open(self, path: str, version: int | None = None) -> lance.LanceDataset | None:
        """Open ``path`` at ``version`` (latest when None); None when nothing is stored yet."""
        import lance

        uri = self.uri(path)
        try:
            return lance.dataset(
                uri,
                version=version,
                storage_options=self.storage_options,
                default_scan_options=_scan_defaults(uri),
                session=self.session,
            )
        except ValueError as err:
            if "was not found" in str(err) and version is None:
                return None
            raise StorageError(f"Cannot open {uri} at Lance version {version}: {err}") from err
        except OSError as err:
            raise StorageError(f"Cannot open {uri}: {err}") from err

    def open_at(self, path: str, version: int) -> lance.LanceDataset:
        """Open ``path`` at a version that must exist."""
        ds = self.open(path, version)
        if ds is None:  # pragma: no cover - open() only returns None without a version
            raise StorageError(f"{self.uri(path)} has no Lance version {version}")
        return ds

    def checkout_for_write(
        self, path: str, version: int, opened: lance.LanceDataset | None = None
    ) -> lance.LanceDataset:
        """The dataset at ``version``, made Lance's latest (restoring it if something else is).

        ``opened`` is the dataset already open at ``version``, to save opening it again.
        """
        with lance_errors(f"Preparing {path} for writing"):
            ds = opened if opened is not None and opened.version == version else None
            ds = ds or self.open_at(path, version)
            if ds.latest_version != version:
                ds.restore()  # type: ignore[no-untyped-call]
                ds = self.open_at(path, ds.latest_version)
            return ds

    def create(self, path: str, table: pa.Table, *, replace: bool = True) -> lance.LanceDataset:
        """Write the first version; anything left by a writer that never published is replaced
        (with ``replace=False``, fail if a version exists: someone else created it)."""
        import lance

        mode = "overwrite" if replace and self.open(path) is not None else "create"
        with lance_errors(f"Writing {path}"):
            return lance.write_dataset(
                table, self.uri(path), mode=mode, storage_options=self.storage_options
            )

    def write_fragments(self, ds: lance.LanceDataset, table: pa.Table) -> list[Any]:
        """Write data files for an append without committing them (no lock needed)."""
        import lance

        with lance_errors(f"Writing data files to {ds.uri}"):
            return list(
                lance.fragment.write_fragments(
                    table, ds, schema=ds.schema, storage_options=self.storage_options
                )
            )

    def write_new_fragments(self, path: str, reader: pa.RecordBatchReader) -> list[Any]:
        """Stream batches into data files for a dataset that will be overwritten, without
        committing (no lock needed; the files stay invisible until committed). The new content
        may have another schema than the dataset has now."""
        import lance

        with lance_errors(f"Writing data files to {path}"):
            fragments = list(
                lance.fragment.write_fragments(
                    reader,
                    self.uri(path),
                    schema=reader.schema,
                    mode="overwrite",  # field ids of the new schema, not checked against the old
                    storage_options=self.storage_options,
                )
            )
        _release_freed_memory()
        return fragments

    def commit_overwrite(
        self, path: str, schema: pa.Schema, fragments: list[Any], read_version: int | None
    ) -> lance.LanceDataset:
        """Commit fragments from :meth:`write_new_fragments` as the dataset's whole content."""
        import lance

        with lance_errors(f"Committing an overwrite of {path}"):
            op = lance.LanceOperation.Overwrite(schema, fragments)
            return lance.LanceDataset.commit(
                self.uri(path), op, read_version=read_version, storage_options=self.storage_options
            )

    def commit_append(self, ds: lance.LanceDataset, fragments: list[Any]) -> lance.LanceDataset:
        """Commit fragments written by :meth:`write_fragments` on top of ``ds``."""
        import lance

        with lance_errors(f"Committing an append to {ds.uri}"):
            op = lance.LanceOperation.Append(fragments)
            # Committing through the open dataset (not its URI) reuses its loaded manifest.
            return lance.LanceDataset.commit(
                ds, op, read_version=ds.version, storage_options=self.storage_options
            )

    def index_scalar(self, ds: lance.LanceDataset, column: str) -> lance.LanceDataset:
        """(Re)build a B-tree index on ``column`` so equality and IN filters skip the scan;
        returns the dataset at the new Lance version this makes."""
        with lance_errors(f"Indexing {column} of {ds.uri}"):
            ds.create_scalar_index(column, "BTREE", replace=True)
            return self.open_at_latest(ds)

    def overwrite(self, ds: lance.LanceDataset, table: pa.Table) -> lance.LanceDataset:
        """Replace the content (and possibly the schema) of ``ds``."""
        import lance

        with lance_errors(f"Overwriting {ds.uri}"):
            return lance.write_dataset(
                table, ds.uri, mode="overwrite", storage_options=self.storage_options
            )

    def add_null_columns(
        self, ds: lance.LanceDataset, fields: list[pa.Field]
    ) -> lance.LanceDataset:
        """Add columns that are null in every existing row (metadata only, no data rewritten)."""
        with lance_errors(f"Adding columns to {ds.uri}"):
            ds.add_columns([f.with_nullable(True) for f in fields])
            return self.open_at_latest(ds)

    def merge(self, ds: lance.LanceDataset, table: pa.Table, key: str) -> lance.LanceDataset:
        """Update rows of ``table`` whose ``key`` exists, insert the others."""
        with lance_errors(f"Upserting into {ds.uri}"):
            (
                ds.merge_insert(key)
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute(table)
            )
            return self.open_at_latest(ds)

    def delete(self, ds: lance.LanceDataset, predicate: str) -> lance.LanceDataset:
        """Delete the rows matching a SQL predicate."""
        with lance_errors(f"Deleting rows from {ds.uri}"):
            ds.delete(predicate)
            return self.open_at_latest(ds)

    def restore(self, path: str, version: int) -> lance.LanceDataset:
        """Make a new latest Lance version with the content of ``version`` (no data copied)."""
        with lance_errors(f"Restoring {path} to Lance version {version}"):
            ds = self.open_at(path, version)
            ds.restore()  # type: ignore[no-untyped-call]
            return self.open_at_latest(ds)

    def count(self, ds: lance.LanceDataset, predicate: str | None = None) -> int:
        """Rows in ``ds``, or rows matching ``predicate``."""
        with lance_errors(f"Counting rows of {ds.uri}" if predicate is None else "Bad predicate"):
            return int(ds.count_rows(filter=predicate))

    def open_at_latest(self, ds: lance.LanceDataset) -> lance.LanceDataset:
        """Re-open ``ds`` at Lance's latest version."""
        import lance

        options = _scan_defaults(ds.uri)
        return lance.dataset(
            ds.uri,
            storage_options=self.storage_options,
            default_scan_options=options,
            session=self.session,
        )

    # -- maintenance (used by curata.lake.maintenance) -----------------------------------------

    def lance_versions(self, path: str) -> list[int]:
        """Every Lance version stored at ``path``, oldest first (empty when nothing is stored)."""
        ds = self.open(path)
        if ds is None:
            return []
        with lance_errors(f"Listing the Lance versions of {path}"):
            return sorted(int(v["version"]) for v in ds.versions())

    def fragment_count(self, ds: lance.LanceDataset) -> int:
        """Number of fragments (groups of data files) in ``ds``."""
        with lance_errors(f"Listing the fragments of {ds.uri}"):
            return len(ds.get_fragments())

    def compaction_plan(self, ds: lance.LanceDataset) -> tuple[int, int]:
        """What compacting ``ds`` would do: (fragments rewritten, fragments written).

        ``(0, 0)`` means Lance sees nothing worth compacting. The second number is an estimate
        (one output fragment per task; a task may write more).

        Lance only compacts fragments that one index segment covers, so an index in several
        segments (small syncs add one each) is work too: :meth:`compact` merges the segments
        first, and the estimate is then every fragment into one per million rows.
        """
        from lance.optimize import Compaction, CompactionOptions

        with lance_errors(f"Planning the compaction of {ds.uri}"):
            if any(len(index.segments) > 1 for index in ds.describe_indices()):
                fragments = len(ds.get_fragments())
                return fragments, min(fragments, max(1, -(-ds.count_rows() // 1_000_000)))
            plan = Compaction.plan(ds, CompactionOptions())
            return sum(len(task.fragments) for task in plan.tasks), int(plan.num_tasks())

    def compact(self, ds: lance.LanceDataset, target_rows: int | None = None) -> lance.LanceDataset:
        """Rewrite small fragments (and ones with many deleted rows) into fewer large ones (of
        ``target_rows`` rows; Lance's default when None: 1M).

        ``ds`` must be Lance's latest version; the result is a new latest version with the same
        rows and schema.
        """
        from curata.lake.search import index_new_rows  # search builds on this module

        with lance_errors(f"Compacting {ds.uri}"):
            if ds.describe_indices():
                # Lance never merges indexed and unindexed fragments: index the new rows first
                # (which also keeps key lookups fast), and merge the segments of each index.
                index_new_rows(ds, merge_all=True)
                ds = self.open_at_latest(ds)
            ds.optimize.compact_files(target_rows_per_fragment=target_rows)
            return self.open_at_latest(ds)

    def same_content(self, path: str, a: int, b: int) -> bool:
        """Whether Lance versions ``a`` and ``b`` hold the same files and schema (e.g. ``b`` is a
        restore of ``a``), so keeping ``b`` keeps no rows that ``a`` does not have."""
        with lance_errors(f"Comparing Lance versions {a} and {b} of {path}"):
            x, y = self.open_at(path, a), self.open_at(path, b)
            if x.schema != y.schema:
                return False
            frags_x = [f.metadata.to_json() for f in x.get_fragments()]
            return frags_x == [f.metadata.to_json() for f in y.get_fragments()]

    def remove_versions(self, path: str, versions: list[int]) -> None:
        """Delete Lance ``versions`` of ``path`` and the files only they use.

        The latest version is never removed. Files no version references (left by writers that
        never committed) are deleted only once Lance deems them abandoned (7 days old): a live
        writer may be about to commit them, since appends write their files before the lock.
        With no ``versions``, only that sweep of abandoned files runs.
        """
        ds = self.open(path)
        if ds is None:
            return
        with lance_errors(f"Removing old Lance versions of {path}"):
            ds.cleanup_old_versions(
                versions=sorted(versions) or [ds.version],
                delete_unverified=False,
                error_if_tagged_old_versions=False,
            )

    def remove_all(self, path: str) -> None:
        """Delete everything stored at ``path`` (only for data no commit references)."""
        import pyarrow.fs as pafs

        with lance_errors(f"Removing {path}"):
            fs, root = self._filesystem(self.uri(path))
            if fs.get_file_info(root).type != pafs.FileType.NotFound:
                fs.delete_dir(root)
        # A dataset made again at this path restarts at version 1: cached entries of the one
        # removed must not be mistaken for its.
        self._session = None

    def folders(self) -> list[str]:
        """The ``*.lance`` folders directly under the store's root, sorted."""
        import pyarrow.fs as pafs

        with lance_errors("Listing the data folder"):
            fs, root = self._filesystem(self.root)
            selector = pafs.FileSelector(root, recursive=False, allow_not_found=True)
            return sorted(
                info.base_name
                for info in fs.get_file_info(selector)
                if info.type == pafs.FileType.Directory and info.base_name.endswith(".lance")
            )

    def last_change(self, path: str) -> tuple[int, float | None]:
        """Bytes stored at ``path`` and the newest modification time of its files (seconds
        since the epoch; None when it holds no file)."""
        import pyarrow.fs as pafs

        with lance_errors(f"Listing {path}"):
            fs, root = self._filesystem(self.uri(path))
            selector = pafs.FileSelector(root, recursive=True, allow_not_found=True)
            files = [i for i in fs.get_file_info(selector) if i.type == pafs.FileType.File]
        times = [i.mtime.timestamp() for i in files if i.mtime is not None]
        return sum(i.size or 0 for i in files), max(times, default=None)

    @staticmethod
    def _filesystem(uri: str) -> tuple[Any, str]:
        import pyarrow.fs as pafs

        from curata.config import is_remote

        if not is_remote(uri):
            uri = os.path.abspath(uri.removeprefix("file://"))
        fs, root = pafs.FileSystem.from_uri(uri)
        return fs, str(root)

    def disk_usage(self, path: str) -> int:
        """Bytes of all files stored at ``path`` (0 when nothing is stored)."""
        from contextlib import suppress

        from curata.config import is_remote

        uri = self.uri(path)
        if not is_remote(uri):
            total = 0
            for folder, _, names in os.walk(uri.removeprefix("file://")):
                for name in names:
                    with suppress(FileNotFoundError):  # removed while we walk: no longer counts
                        total += os.path.getsize(os.path.join(folder, name))
            return total
        return self.last_change(path)[0]
