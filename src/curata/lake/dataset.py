"""Dataset: the handle for writing to and reading the history of one named dataset."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from curata.errors import AlreadyExists, InvalidInput, NotFound, StorageError
from curata.lake import history
from curata.lake import schema as t
from curata.lake.catalog import utcnow
from curata.lake.changes import RowDiff, diff_datasets
from curata.lake.publish import PreparedAppend
from curata.lake.refs import MAIN, Ref, coerce_ref, validate_label
from curata.lake.snapshot import Snapshot
from curata.lake.tables import conform, to_arrow_table

if TYPE_CHECKING:
    from os import PathLike

    from curata.lake.lake import Lake
    from curata.lake.models import Commit, DatasetInfo


class Dataset:
    """A named, versioned dataset in a lake.

    Every write publishes exactly one new version (or none, when nothing changed) and returns
    its :class:`~curata.lake.models.Commit`.

    >>> ds = lake.dataset("tickets")  # doctest: +SKIP
    >>> ds.upsert(corrections, message="fix answers").summary  # doctest: +SKIP
    'upsert: +5 rows, 10 updated (answer, status)'
    """

    def __init__(self, lake: Lake, name: str) -> None:
        self._lake = lake
        self.name = name

    def __repr__(self) -> str:
        return f"<Dataset {self.name}>"

    # -- writes ---------------------------------------------------------------------------------

    def append(
        self, data: Any, *, message: str = "", author: str | None = None, branch: str = MAIN
    ) -> Commit | None:
        """Add rows; returns the new commit, or None when ``data`` has no rows.

        The data files are written before the catalog lock is taken, so a large append blocks
        other writers only for the commit itself.

        Raises:
            InvalidInput: the columns differ from the dataset's (named in the message), or, on
                a keyed dataset, keys are duplicated or exist already.
        """
        table = to_arrow_table(data)
        prepared = self._prepare_append(table, branch)
        with self._lake.publish(message=message, author=author) as pub:
            if prepared is None:
                pub.append(self.name, table, branch=branch)
            else:
                pub.append_prepared(self.name, prepared, branch=branch)
        return _single(pub.commits)

    def _prepare_append(self, table: Any, branch: str) -> PreparedAppend | None:
        with self._lake.catalog.read() as conn:
            head = history.head_of(conn, self.name, branch)
        commit = head.commit
        if commit is None or table.num_rows == 0:
            return None
        try:
            ds = self._lake.store.open_at(head.row.storage_path, commit.lance_version)
        except StorageError:
            # gc compacted that version between the catalog read and the open: write under
            # the lock instead (preparing outside it only shortens the time it is held).
            return None
        table = conform(table, ds.schema, self.name)
        fragments = self._lake.store.write_fragments(ds, table)
        return PreparedAppend(
            table=table, fragments=fragments, lance_version=commit.lance_version, opened=ds
        )

    def upsert(
        self,
        data: Any,
        *,
        key: str | None = None,
        message: str = "",
        author: str | None = None,
        branch: str = MAIN,
    ) -> Commit | None:
        """Update rows whose key exists and insert the rest; None when nothing changed.

        ``data`` may carry only the key and the columns to change, and may add columns.

        Raises:
            InvalidInput: no key (neither the dataset's nor ``key``), duplicate or empty keys.
        """
        with self._lake.publish(message=message, author=author) as pub:
            pub.upsert(self.name, data, key=key, branch=branch)
        return _single(pub.commits)

    def delete(
        self, where: str, *, message: str = "", author: str | None = None, branch: str = MAIN
    ) -> Commit | None:
        """Delete rows matching a SQL predicate; None when no row matched."""
        with self._lake.publish(message=message, author=author) as pub:
            pub.delete(self.name, where, branch=branch)
        return _single(pub.commits)

    def overwrite(
        self, data: Any, *, message: str = "", author: str | None = None, branch: str = MAIN
    ) -> Commit | None:
        """Replace every row (the schema may change); None when the content is identical."""
        with self._lake.publish(message=message, author=author) as pub:
            pub.overwrite(self.name, data, branch=branch)
        return _single(pub.commits)

    def revert(
        self,
        ref: Ref | str | int,
        *,
        message: str = "",
        author: str | None = None,
        branch: str = MAIN,
    ) -> Commit | None:
        """Publish the content of an earlier version as a new version; history is kept."""
        target = coerce_ref(self.name, ref)
        with self._lake.publish(message=message or f"revert to {target}", author=author) as pub:
            pub.revert(self.name, target, branch=branch)
        return _single(pub.commits)

    # -- reads ----------------------------------------------------------------------------------

    def at(self, ref: Ref | str | int | None = None) -> Snapshot:
        """The snapshot at ``ref``: a version (``7``), tag (``"prod"``), branch
        (``"branch:exp"``) or None for the head of main.

        Raises:
            NotFound: the ref does not exist, the dataset has no versions yet, or gc removed it.
        """
        return self._lake.snapshot(coerce_ref(self.name, ref))

    @property
    def head(self) -> Snapshot:
        """The head of main."""
        return self.at()

    def info(self) -> DatasetInfo:
        """Catalog entry: kind, key, owner, tags, head version, rows, columns, branches, tags."""
        return self._lake.dataset_info(self.name)

    def log(self, branch: str | None = None) -> list[Commit]:
        """Commits, newest first: all of them, or those reachable from ``branch``'s head."""
        with self._lake.catalog.read() as conn:
            row = history.dataset_row(conn, self.name)
            if branch is not None and branch not in history.refs_of(conn, row.id, "branch"):
                history.resolve_version(conn, row, Ref(self.name, branch=branch))
            return history.commits_of(conn, row, branch)

    def diff(
        self,
        a: Ref | str | int,
        b: Ref | str | int | None = None,
        *,
        rows: bool = False,
        limit: int = 100,
    ) -> RowDiff:
        """What changed from ``a`` to ``b`` (default: head of main): schema and rows by key.

        With ``rows=True`` the added, deleted and updated rows are returned too (at most
        ``limit`` of each).
        """
        old, new = self.at(a), self.at(b)
        return diff_datasets(
            old.lance_dataset(), new.lance_dataset(), old.key, with_rows=rows, limit=limit
        )

    def export(
        self,
        path: str | PathLike[str],
        *,
        format: str | None = None,
        ref: Ref | str | int | None = None,
        overwrite: bool = False,
    ) -> int:
        """Write the rows at ``ref`` (default: head of main) to a Parquet, CSV or JSON Lines
        file, or to a Hugging Face dataset folder (``format="hf"``); returns the rows written.

        Rows stream in batches, so memory stays bounded whatever the size of the version.

        >>> lake.dataset("tickets").export("tickets.parquet", ref="prod")  # doctest: +SKIP
        1200

        Args:
            path: the file, or the folder for ``hf``.
            format: ``parquet``, ``csv``, ``jsonl`` or ``hf``; by default told from ``path``.
            ref: the version, tag or branch to export.
            overwrite: replace an existing target.

        Raises:
            NotFound: the ref does not exist.
            InvalidInput: unknown format, the target exists, or the rows do not fit the format
                (list or struct columns in CSV).
            MissingDependency: ``hf`` without the ``datasets`` package.
        """
        from curata.formats import write_table

        snapshot = self.at(ref)
        return write_table(
            snapshot.to_batches(), path, format, overwrite=overwrite, schema=snapshot.schema
        )

    # -- refs -------------------------------------------------------------------------------------

    def tag(
        self, name: str, ref: Ref | str | int | None = None, *, author: str | None = None
    ) -> int:
        """Point tag ``name`` at ``ref`` (default: head of main), moving it if it exists.

        Moving a tag is one catalog update, so readers of ``NAME@TAG`` switch atomically.
        Returns the tagged version.
        """
        validate_label(name, "tag")
        target = coerce_ref(self.name, ref)
        with self._lake.catalog.write() as conn:
            row = self._locked_row(conn)
            if name in history.refs_of(conn, row.id, "branch"):
                raise AlreadyExists(f"{self.name!r} has a branch named {name!r}; pick another tag.")
            version = self._live_version(conn, row, target, "tag")
            self._set_ref(conn, row.id, "tag", name, version, author=author)
        return version

    def untag(self, name: str) -> None:
        """Remove a tag (the version stays)."""
        with self._lake.catalog.write() as conn:
            row = self._locked_row(conn)
            deleted = conn.execute(
                sa.delete(t.refs).where(
                    t.refs.c.dataset_id == row.id, t.refs.c.kind == "tag", t.refs.c.name == name
                )
            )
            if deleted.rowcount == 0:
                raise NotFound(f"{self.name!r} has no tag {name!r}.")

    def branch(
        self, name: str, from_: Ref | str | int | None = None, *, author: str | None = None
    ) -> int:
        """Create branch ``name`` at ``from_`` (default: head of main); returns its version.

        Write to it with ``branch=name``; read it with ``at("branch:NAME")``.
        """
        validate_label(name, "branch name")
        source = coerce_ref(self.name, from_)
        with self._lake.catalog.write() as conn:
            row = self._locked_row(conn)
            if name in history.refs_of(conn, row.id, "branch"):
                raise AlreadyExists(f"{self.name!r} already has a branch {name!r}.")
            if name in history.refs_of(conn, row.id, "tag"):
                raise AlreadyExists(f"{self.name!r} has a tag named {name!r}; pick another name.")
            version = self._live_version(conn, row, source, "branch from")
            self._set_ref(conn, row.id, "branch", name, version, author=author)
        return version

    def _locked_row(self, conn: Any) -> Any:
        """The dataset's catalog row, locked against writers and gc for this transaction."""
        row = self._lake.catalog.lock_datasets(conn, [self.name]).get(self.name)
        return row if row is not None else history.dataset_row(conn, self.name)

    def _live_version(self, conn: Any, row: Any, ref: Ref, verb: str) -> int:
        """The version ``ref`` names, which must exist and not have been removed by gc."""
        version = history.resolve_version(conn, row, ref)
        if version is None:
            raise InvalidInput(f"{ref} has no versions yet; write to it before you {verb} it.")
        commit = history.commit_row(conn, row.id, version)
        if commit is not None and commit.pruned_at is not None:
            raise NotFound(f"{self.name}@{version} was removed by `curata gc`; cannot {verb} it.")
        return version

    def branches(self) -> dict[str, int | None]:
        """Branch name -> head version."""
        with self._lake.catalog.read() as conn:
            return history.refs_of(conn, history.dataset_row(conn, self.name).id, "branch")

    def tags(self) -> dict[str, int]:
        """Tag -> version."""
        with self._lake.catalog.read() as conn:
            refs = history.refs_of(conn, history.dataset_row(conn, self.name).id, "tag")
        return {k: v for k, v in refs.items() if v is not None}

    def _set_ref(
        self, conn: Any, dataset_id: int, kind: str, name: str, version: int, *, author: str | None
    ) -> None:
        values = {
            "version": version,
            "updated_at": utcnow(),
            "updated_by": author or self._lake.author,
        }
        where = (t.refs.c.dataset_id == dataset_id, t.refs.c.kind == kind, t.refs.c.name == name)
        if conn.execute(sa.update(t.refs).where(*where).values(**values)).rowcount == 0:
            conn.execute(
                sa.insert(t.refs).values(dataset_id=dataset_id, kind=kind, name=name, **values)
            )

    # -- metadata ---------------------------------------------------------------------------------

    def set(
        self,
        *,
        owner: str | None = None,
        description: str | None = None,
        tags: Sequence[str] | None = None,
        classifications: dict[str, str] | None = None,
    ) -> DatasetInfo:
        """Change owner, description, tags (replacing them) or column classifications (merged;
        an empty class removes one). Unknown columns are refused."""
        values: dict[str, Any] = {}
        if owner is not None:
            values["owner"] = owner or None
        if description is not None:
            values["description"] = description
        if tags is not None:
            values["tags"] = sorted({tag.strip() for tag in tags if tag.strip()})
        with self._lake.catalog.write() as conn:
            row = history.dataset_row(conn, self.name)
            if classifications:
                values["classifications"] = self._merge_classes(conn, row, classifications)
            if values:
                conn.execute(
                    sa.update(t.datasets).where(t.datasets.c.id == row.id).values(**values)
                )
        return self.info()

    def _merge_classes(self, conn: Any, row: Any, classes: dict[str, str]) -> dict[str, str]:
        columns: list[str] = []
        head = history.resolve_version(conn, row, Ref(self.name, branch=MAIN))
        if head is not None:
            commit = history.commit_row(conn, row.id, head)
            columns = [c["name"] for c in commit.schema] if commit is not None else []
        unknown = [c for c in classes if columns and c not in columns]
        if unknown:
            raise InvalidInput(
                f"{self.name!r} has no column(s) {', '.join(unknown)}.",
                hint=f"Its columns are: {', '.join(columns)}.",
            )
        merged = dict(row.classifications or {})
        for column, cls in classes.items():
            if cls:
                merged[column] = cls
            else:
                merged.pop(column, None)
        return merged


def _single(commits: list[Commit]) -> Commit | None:
    return commits[0] if commits else None
