"""Lance behind one door: every read and write of a dataset's files goes through here.

Lance keeps one linear history of versions per dataset. curata maps its own versions (and
branches) onto it through the catalog: before a write, the Lance dataset is brought to the
published version the write builds on, restoring it when Lance's latest differs (an orphan
written by a crashed writer, or the head of another branch). Errors from Lance become
:class:`~curata.errors.StorageError` or :class:`~curata.errors.InvalidInput`.
"""

from __future__ import annotations

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


class LanceStore:
    """Lance datasets under one root URI (``<lake>/data``)."""

    def __init__(self, root: str, storage_options: dict[str, str] | None = None) -> None:
        self.root = root.rstrip("/")
        self.storage_options = storage_options

    def uri(self, path: str) -> str:
        """Absolute URI of a dataset stored at ``path`` (relative to the lake)."""
        return f"{self.root}/{path}"

    def open(self, path: str, version: int | None = None) -> lance.LanceDataset | None:
        """Open ``path`` at ``version`` (latest when None); None when nothing is stored yet."""
        import lance

        uri = self.uri(path)
        try:
            return lance.dataset(uri, version=version, storage_options=self.storage_options)
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

    def checkout_for_write(self, path: str, version: int) -> lance.LanceDataset:
        """The dataset at ``version``, made Lance's latest (restoring it if something else is)."""
        with lance_errors(f"Preparing {path} for writing"):
            ds = self.open_at(path, version)
            if ds.latest_version != version:
                ds.restore()  # type: ignore[no-untyped-call]
                ds = self.open_at(path, ds.latest_version)
            return ds

    def create(self, path: str, table: pa.Table) -> lance.LanceDataset:
        """Write the first version; anything left by a writer that never published is replaced."""
        import lance

        mode = "overwrite" if self.open(path) is not None else "create"
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

    def commit_append(self, ds: lance.LanceDataset, fragments: list[Any]) -> lance.LanceDataset:
        """Commit fragments written by :meth:`write_fragments` on top of ``ds``."""
        import lance

        with lance_errors(f"Committing an append to {ds.uri}"):
            op = lance.LanceOperation.Append(fragments)
            return lance.LanceDataset.commit(
                ds.uri, op, read_version=ds.version, storage_options=self.storage_options
            )

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

        return lance.dataset(ds.uri, storage_options=self.storage_options)
