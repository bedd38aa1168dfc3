"""Publishing: one catalog transaction that writes and publishes new dataset versions.

The catalog row is the publish point. Inside one :class:`Publication` every dataset touched is
locked, brought to its published head in Lance, written, and finally recorded as one new
commit per (dataset, branch) when the transaction commits. If anything fails before that, the
transaction rolls back and the Lance versions written are orphans no reader ever sees; the
next writer restores the published version before writing on top of it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from curata.errors import InvalidInput, NotFound
from curata.lake import history
from curata.lake import schema as t
from curata.lake.catalog import utcnow
from curata.lake.changes import ChangeLog, describe_schema, diff_datasets, quote_ident
from curata.lake.models import Commit
from curata.lake.refs import MAIN, Ref, validate_label
from curata.lake.registry import check_new_dataset, insert_dataset, lock_name
from curata.lake.tables import check_key, conform, to_arrow_table

if TYPE_CHECKING:
    import lance
    import pyarrow as pa
    from sqlalchemy.engine import Connection

    from curata.lake.lake import Lake


@dataclass
class _Target:
    """One (dataset, branch) being written in this publication."""

    row: sa.Row[Any]
    branch: str
    base: sa.Row[Any] | None
    ds: lance.LanceDataset | None
    base_schema: pa.Schema | None = None
    changes: ChangeLog = field(default_factory=ChangeLog)
    operations: list[str] = field(default_factory=list)

    @property
    def key(self) -> str | None:
        return self.row.primary_key  # type: ignore[no-any-return]

    @property
    def path(self) -> str:
        return self.row.storage_path  # type: ignore[no-any-return]


@dataclass(frozen=True)
class StagedOverwrite:
    """The whole new content of a dataset, written as uncommitted data files (no lock held)."""

    dataset: str
    schema: pa.Schema
    fragments: list[Any]
    rows: int


@dataclass(frozen=True)
class PreparedAppend:
    """Data files written for an append before taking the lock."""

    table: pa.Table
    fragments: list[Any]
    lance_version: int
    opened: lance.LanceDataset | None = None


class Publication:
    """Writes that publish together, as one new version per dataset and branch touched.

    Get one from :meth:`curata.Lake.publish`:

    >>> with lake.publish(message="sync") as pub:  # doctest: +SKIP
    ...     pub.delete("chunks", "doc_id = 'a.md'")
    ...     pub.append("chunks", new_chunks)
    ...     pub.upsert("documents", docs)
    """

    def __init__(
        self, lake: Lake, conn: Connection, *, message: str, author: str, run_id: str | None
    ) -> None:
        self._lake = lake
        self._conn = conn
        self.message = message
        self.author = author
        self.run_id = run_id
        self.publish_id = uuid.uuid4().hex
        self._targets: dict[tuple[str, str], _Target] = {}
        self._max_versions: dict[int, int] = {}
        self.commits: list[Commit] = []

    # -- targets -------------------------------------------------------------------------------

    def _target(self, name: str, branch: str, opened: lance.LanceDataset | None = None) -> _Target:
        if (name, branch) in self._targets:
            return self._targets[(name, branch)]
        head = history.head_of(self._conn, name, branch, lock=True)
        row, base = head.row, head.commit
        self._max_versions[row.id] = max(self._max_versions.get(row.id, 0), head.max_version)
        ds = None
        if base is not None:
            ds = self._lake.store.checkout_for_write(row.storage_path, base.lance_version, opened)
        schema = ds.schema if ds is not None else None
        target = _Target(row=row, branch=branch, base=base, ds=ds, base_schema=schema)
        self._targets[(name, branch)] = target
        return target

    # -- datasets ------------------------------------------------------------------------------

    def create_dataset(
        self,
        name: str,
        *,
        kind: str = "records",
        key: str | None = None,
        description: str = "",
        owner: str | None = None,
        tags: Sequence[str] = (),
    ) -> bool:
        """Create dataset ``name`` in this publication's transaction, unless it exists.

        Unlike :meth:`curata.Lake.create_dataset`, a run that fails or is killed before the
        publication commits leaves no empty dataset behind. Returns whether it was created.

        Raises:
            InvalidInput: a bad name, kind or key column.
        """
        check_new_dataset(name, kind, key)
        lock_name(self._conn, name)
        exists = self._conn.execute(
            sa.select(t.datasets.c.id).where(t.datasets.c.name == name)
        ).first()
        if exists is not None:
            return False
        insert_dataset(
            self._conn,
            name,
            kind=kind,
            key=key,
            description=description,
            owner=owner,
            tags=tags,
            author=self.author,
        )
        return True

    # -- writes --------------------------------------------------------------------------------

    def append(self, name: str, data: Any, *, branch: str = MAIN) -> None:
        """Add rows. Columns must match the dataset's (types are cast where safe)."""
        target = self._target(name, branch)
        table = to_arrow_table(data)
        if target.ds is None:
            self._create(target, table, "append")
            return
        table = conform(table, target.ds.schema, name)
        self._check_new_keys(target, table)
        fragments = self._lake.store.write_fragments(target.ds, table)
        self._commit_fragments(target, table, fragments)

    def append_prepared(self, name: str, prepared: PreparedAppend, *, branch: str = MAIN) -> None:
        """Commit an append whose data files were written before the lock was taken."""
        target = self._target(name, branch, prepared.opened)
        if target.ds is None or target.base is None:
            self._create(target, prepared.table, "append")
            return
        if target.base.lance_version != prepared.lance_version:
            # Someone published in between: re-check the rows against the new head.
            self.append(name, prepared.table, branch=branch)
            return
        self._check_new_keys(target, prepared.table)
        self._commit_fragments(target, prepared.table, prepared.fragments)

    def _commit_fragments(self, target: _Target, table: pa.Table, fragments: list[Any]) -> None:
        assert target.ds is not None
        if table.num_rows == 0:
            return
        target.ds = self._lake.store.commit_append(target.ds, fragments)
        target.changes.rows_added += table.num_rows
        target.operations.append("append")

    def _check_new_keys(self, target: _Target, table: pa.Table) -> None:
        """On a keyed dataset, appended keys must be unique and not present yet."""
        import pyarrow.compute as pc

        if target.key is None or target.ds is None:
            return
        check_key(table, target.key, target.row.name)
        if table.num_rows == 0:
            return  # Lance rejects an empty isin() on string keys ("string vs null")
        existing = target.ds.to_table(
            columns=[target.key], filter=pc.field(target.key).isin(table.column(target.key))
        )
        if existing.num_rows:
            keys = existing.column(target.key).to_pylist()
            raise InvalidInput(
                f"{len(keys)} key(s) of the appended rows exist in {target.row.name!r} already: "
                + ", ".join(repr(k) for k in keys[:10])
                + (" ..." if len(keys) > 10 else ""),
                hint="Use upsert to update existing rows.",
            )

    def _create(self, target: _Target, table: pa.Table, operation: str) -> None:
        if target.key is not None:
            check_key(table, target.key, target.row.name)
        if table.num_columns == 0:
            raise InvalidInput(f"Cannot create {target.row.name!r} from a table with no columns.")
        target.ds = self._index_key(target, self._lake.store.create(target.path, table))
        target.changes.rows_added += table.num_rows
        target.operations.append(operation)

    def _index_key(self, target: _Target, ds: lance.LanceDataset) -> lance.LanceDataset:
        """Index the key column of freshly written content, so key lookups (append checks,
        upserts) read only the matching rows. Rows appended later are covered by ``gc``."""
        if target.key is None or target.key not in ds.schema.names or ds.count_rows() == 0:
            return ds
        return self._lake.store.index_scalar(ds, target.key)

    def upsert(self, name: str, data: Any, *, key: str | None = None, branch: str = MAIN) -> None:
        """Update rows whose key exists, insert the others.

        The input may hold only some columns (the others keep their values) and may bring new
        columns (added to the dataset, empty in rows not in the input).
        """
        target = self._target(name, branch)
        key = self._upsert_key(target, key)
        table = to_arrow_table(data)
        check_key(table, key, name)
        if target.ds is None:
            self._create(target, table, "upsert")
            return
        schema = target.ds.schema  # Lance builds it anew on every access
        if key not in schema.names:
            raise InvalidInput(f"Key column {key!r} is not a column of {name!r}.")
        table = conform(table, schema, name, partial=True)
        if table.num_rows == 0:
            return  # nothing to change; Lance rejects an empty isin() on string keys
        new_fields = [f for f in table.schema if f.name not in schema.names]
        out, changes = _plan_upsert(target.ds, table, key)
        if out.num_rows == 0:
            return
        if new_fields:
            target.ds = self._lake.store.add_null_columns(target.ds, new_fields)
        out = out.cast(target.ds.schema)
        target.ds = self._lake.store.merge(target.ds, out, key)
        target.changes.add(changes)
        target.operations.append("upsert")

    def _upsert_key(self, target: _Target, key: str | None) -> str:
        if target.key is not None and key is not None and key != target.key:
            raise InvalidInput(
                f"{target.row.name!r} has primary key {target.key!r}; cannot upsert by {key!r}."
            )
        chosen = key or target.key
        if chosen is None:
            raise InvalidInput(
                f"Upsert into {target.row.name!r} needs a key column.",
                hint="The dataset has no primary key: pass key=... (CLI: --key COL).",
            )
        return chosen

    def delete(self, name: str, where: str, *, branch: str = MAIN) -> None:
        """Delete the rows matching a SQL predicate such as ``"status = 'spam'"``."""
        if not where.strip():
            raise InvalidInput("An empty predicate would delete every row; use overwrite instead.")
        target = self._target(name, branch)
        if target.ds is None:
            raise InvalidInput(f"{name!r} has no rows to delete yet.")
        n = self._lake.store.count(target.ds, where)
        if n == 0:
            return
        target.ds = self._lake.store.delete(target.ds, where)
        target.changes.rows_deleted += n
        target.operations.append("delete")

    def overwrite(self, name: str, data: Any, *, branch: str = MAIN) -> None:
        """Replace all rows (and possibly the schema)."""
        target = self._target(name, branch)
        table = to_arrow_table(data)
        if target.ds is None:
            self._create(target, table, "overwrite")
            return
        if target.key is not None:
            check_key(table, target.key, name)
        before = target.ds
        target.ds = self._lake.store.overwrite(before, table)
        target.changes.add(diff_datasets(before, target.ds, target.key).changes)
        target.ds = self._index_key(target, target.ds)
        target.operations.append("overwrite")

    def overwrite_staged(self, staged: StagedOverwrite, *, branch: str = MAIN) -> None:
        """Commit content staged with :meth:`curata.Lake.stage_overwrite` as the new rows."""
        target = self._target(staged.dataset, branch)
        before = target.ds
        read_version = None if before is None else before.version
        target.ds = self._lake.store.commit_overwrite(
            target.path, staged.schema, staged.fragments, read_version
        )
        if target.key is not None:
            _check_unique_key(target.ds, target.key, staged.dataset)
        if before is None:
            target.changes.rows_added += staged.rows
        else:
            target.changes.add(diff_datasets(before, target.ds, target.key).changes)
        target.ds = self._index_key(target, target.ds)
        target.operations.append("overwrite")

    def revert(self, name: str, to: Ref, *, branch: str = MAIN) -> None:
        """Make the content of version ``to`` the new head (history is kept)."""
        target = self._target(name, branch)
        version = history.resolve_version(self._conn, target.row, to)
        row = None if version is None else history.commit_row(self._conn, target.row.id, version)
        if row is None:
            raise NotFound(f"{to} has no content to revert to.")
        if row.pruned_at is not None:
            raise NotFound(f"{name}@{version} was removed by `curata gc` and cannot be restored.")
        before = target.ds
        target.ds = self._lake.store.restore(target.path, row.lance_version)
        target.changes.add(diff_datasets(before, target.ds, target.key).changes)
        target.operations.append("revert")

    def index_for_search(
        self, name: str, *, vector: str | None = None, text: str | None = None, branch: str = MAIN
    ) -> None:
        """Build or update the search indexes of ``name`` (a vector column, a text column) so
        the version this publishes carries them. Call it after the writes to ``name``."""
        from curata.lake.search import update_search_indexes

        target = self._target(name, branch)
        if target.ds is None:
            return
        target.ds = update_search_indexes(
            target.ds, self._lake.store.open_at_latest, vector=vector, text=text
        )

    def base_version(self, name: str, branch: str = MAIN) -> int | None:
        """The published head of ``name`` this publication writes on (locking the dataset):
        compare it with the version read before, to refuse writes based on stale reads."""
        target = self._target(name, branch)
        return None if target.base is None else int(target.base.version)

    def resulting_version(self, name: str, branch: str = MAIN) -> int | None:
        """The version ``name`` will be at once this publication commits, given the writes so
        far: a new version when they changed something, else the current head."""
        target = self._targets.get((name, branch))
        if target is None:
            with_head = history.head_of(self._conn, name, branch)
            return None if with_head.commit is None else int(with_head.commit.version)
        if not self._will_commit(target):
            return None if target.base is None else int(target.base.version)
        dataset_id = target.row.id
        earlier = 0
        for other in self._targets.values():
            if other is target:
                break
            if other.row.id == dataset_id and self._will_commit(other):
                earlier += 1
        return self._max_versions[dataset_id] + earlier + 1

    # -- publish -------------------------------------------------------------------------------

    def _will_commit(self, target: _Target) -> bool:
        if not target.operations or target.ds is None:
            return False
        target.changes.set_schema_changes(target.base_schema, target.ds.schema)
        return not (target.changes.is_empty and target.base is not None)

    def _finish(self) -> list[Commit]:
        """Record one commit per target that changed; called inside the transaction."""
        now = utcnow()
        for (name, branch), target in self._targets.items():
            if not self._will_commit(target):
                continue
            assert target.ds is not None
            ops = set(target.operations)
            operation = target.operations[0] if len(ops) == 1 else "transform"
            if target.base is None and operation == "append":
                operation = "create"
            commit = Commit(
                dataset=name,
                version=self._next_version(target.row.id),
                branch=branch,
                parent=None if target.base is None else target.base.version,
                author=self.author,
                timestamp=now.replace(tzinfo=UTC),
                message=self.message,
                operation=operation,
                rows=target.ds.count_rows(),
                schema=describe_schema(target.ds.schema),
                changes=target.changes.to_dict(operation),
                run_id=self.run_id,
                lance_version=target.ds.version,
            )
            self._conn.execute(
                sa.insert(t.commits).values(
                    dataset_id=target.row.id,
                    version=commit.version,
                    branch=branch,
                    parent_version=commit.parent,
                    lance_version=commit.lance_version,
                    author=commit.author,
                    created_at=now,
                    message=commit.message,
                    operation=commit.operation,
                    row_count=commit.rows,
                    schema=commit.schema,
                    changes=commit.changes,
                    run_id=commit.run_id,
                    publish_id=self.publish_id,
                )
            )
            self._move_branch(target.row.id, branch, commit.version, now)
            self.commits.append(commit)
        return self.commits

    def _next_version(self, dataset_id: int) -> int:
        # Read with the head under the dataset lock, so no other writer can take it meanwhile.
        self._max_versions[dataset_id] += 1
        return self._max_versions[dataset_id]

    def _move_branch(self, dataset_id: int, branch: str, version: int, now: Any) -> None:
        validate_label(branch, "branch name")
        updated = self._conn.execute(
            sa.update(t.refs)
            .where(
                t.refs.c.dataset_id == dataset_id,
                t.refs.c.kind == "branch",
                t.refs.c.name == branch,
            )
            .values(version=version, updated_at=now, updated_by=self.author)
        )
        if updated.rowcount == 0:
            self._conn.execute(
                sa.insert(t.refs).values(
                    dataset_id=dataset_id,
                    kind="branch",
                    name=branch,
                    version=version,
                    updated_at=now,
                    updated_by=self.author,
                )
            )


def _check_unique_key(ds: lance.LanceDataset, key: str, dataset: str) -> None:
    """The key column of the new content exists and has no nulls and no duplicates."""
    from curata.lake.query import duckdb_cursor

    if key not in ds.schema.names:
        raise InvalidInput(
            f"Key column {key!r} is not in the input for {dataset!r}.",
            hint=f"The input has columns {', '.join(ds.schema.names)}.",
        )
    con = duckdb_cursor()
    con.register("t", ds.scanner(columns=[key]).to_reader())
    k = quote_ident(key)
    dups = con.sql(
        f"SELECT {k} FROM t GROUP BY {k} HAVING count(*) > 1 OR {k} IS NULL LIMIT 10"
    ).fetchall()
    if dups:
        shown = ", ".join(repr(d[0]) for d in dups)
        raise InvalidInput(f"The new rows of {dataset!r} repeat or lack key {key!r}: {shown}.")


def _plan_upsert(ds: lance.LanceDataset, table: pa.Table, key: str) -> tuple[pa.Table, ChangeLog]:
    """Rows to merge (new rows, and existing rows that really change) and what changes.

    Existing rows are looked up by key; each output row keeps the stored value of every column
    the input does not provide, so partial upserts never blank a column.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from curata.lake.query import duckdb_cursor

    existing = ds.to_table(filter=pc.field(key).isin(table.column(key)))
    stored = ds.schema.names
    provided = [c for c in table.column_names if c != key and c in stored]
    new_cols = [c for c in table.column_names if c not in stored]
    con = duckdb_cursor()
    q = quote_ident
    inp = table.select([key, *provided, *new_cols]).append_column(
        "__i", pa.array(range(table.num_rows), pa.int64())
    )
    old = existing.select([key, *provided]).append_column(
        "__o", pa.array(range(existing.num_rows), pa.int64())
    )
    con.register("inp", inp)
    con.register("old", old)
    flags = [f"(i.{q(c)} IS DISTINCT FROM o.{q(c)})" for c in provided]
    flags += [f"(i.{q(c)} IS NOT NULL)" for c in new_cols]
    flag_sql = "".join(f", {f} AS f{n}" for n, f in enumerate(flags))
    plan = con.sql(
        f"SELECT i.__i AS ii, o.__o AS oi{flag_sql} "
        f"FROM inp i LEFT JOIN old o ON i.{q(key)} = o.{q(key)}"
    ).to_arrow_table()
    is_new = pc.is_null(plan.column("oi"))
    changed_cols = [*provided, *new_cols]
    if changed_cols:
        any_change = plan.column("f0")
        for n in range(1, len(changed_cols)):
            any_change = pc.or_(any_change, plan.column(f"f{n}"))
        keep = pc.or_(is_new, pc.fill_null(any_change, False))
    else:
        keep = is_new
    plan = plan.filter(keep)
    updated = plan.filter(pc.invert(pc.is_null(plan.column("oi"))))
    changes = ChangeLog(
        rows_added=plan.num_rows - updated.num_rows,
        rows_updated=updated.num_rows,
        updated_columns={
            c: n
            for i, c in enumerate(changed_cols)
            if (n := int(pc.sum(updated.column(f"f{i}").cast(pa.int64())).as_py() or 0))
        },
    )
    ii, oi = plan.column("ii"), plan.column("oi")
    columns = {}
    for name in [*stored, *new_cols]:
        source, idx = (table, ii) if name in table.column_names else (existing, oi)
        columns[name] = source.column(name).take(idx)
    return pa.table(columns), changes
