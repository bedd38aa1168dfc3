"""Change logs and diffs between versions.

A change log counts rows added, updated (with the columns that changed) and deleted, and
columns added, removed and retyped. Diffs read only what differs: Lance fragments that two
versions share hold identical rows, so only the fragments one version has and the other lacks
are streamed into DuckDB and compared there (by key when the dataset has one, as multisets
otherwise), within a memory limit past which DuckDB spills to a temporary folder.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from curata.lake.storage import stream

if TYPE_CHECKING:
    import lance
    import pyarrow as pa


@dataclass
class ChangeLog:
    """What one commit (or a diff between two versions) changed."""

    rows_added: int = 0
    rows_updated: int = 0
    rows_deleted: int = 0
    updated_columns: dict[str, int] = field(default_factory=dict)
    columns_added: list[str] = field(default_factory=list)
    columns_removed: list[str] = field(default_factory=list)
    columns_retyped: list[dict[str, str]] = field(default_factory=list)

    def add(self, other: ChangeLog) -> None:
        """Fold another change of the same commit into this one (rows only)."""
        self.rows_added += other.rows_added
        self.rows_updated += other.rows_updated
        self.rows_deleted += other.rows_deleted
        for col, n in other.updated_columns.items():
            self.updated_columns[col] = self.updated_columns.get(col, 0) + n

    def set_schema_changes(self, old: pa.Schema | None, new: pa.Schema) -> None:
        """Record columns added, removed and retyped between two schemas."""
        added, removed, retyped = schema_changes(old, new)
        self.columns_added, self.columns_removed, self.columns_retyped = added, removed, retyped

    @property
    def is_empty(self) -> bool:
        """True when nothing changed."""
        return not (
            self.rows_added
            or self.rows_updated
            or self.rows_deleted
            or self.columns_added
            or self.columns_removed
            or self.columns_retyped
        )

    def summary(self, operation: str | None = None) -> str:
        """One line, e.g. ``upsert: +5 rows, 10 updated (answer), -2 rows; column added: lang``."""
        rows: list[str] = []
        if self.rows_added:
            rows.append(f"+{self.rows_added} {_plural(self.rows_added, 'row')}")
        if self.rows_updated:
            cols = ", ".join(sorted(self.updated_columns))
            rows.append(f"{self.rows_updated} updated" + (f" ({cols})" if cols else ""))
        if self.rows_deleted:
            rows.append(f"-{self.rows_deleted} {_plural(self.rows_deleted, 'row')}")
        parts = [", ".join(rows)] if rows else []
        if self.columns_added:
            label = _plural(len(self.columns_added), "column")
            parts.append(f"{label} added: {', '.join(self.columns_added)}")
        if self.columns_removed:
            label = _plural(len(self.columns_removed), "column")
            parts.append(f"{label} removed: {', '.join(self.columns_removed)}")
        if self.columns_retyped:
            desc = ", ".join(
                f"{c['column']} {c['from']} -> {c['to']}" for c in self.columns_retyped
            )
            parts.append(f"{_plural(len(self.columns_retyped), 'column')} retyped: {desc}")
        body = "; ".join(parts) or "no changes"
        return f"{operation}: {body}" if operation else body

    def to_dict(self, operation: str | None = None) -> dict[str, Any]:
        """JSON-ready form, as stored in the catalog and printed by ``--json``."""
        return {
            "rows_added": self.rows_added,
            "rows_updated": self.rows_updated,
            "rows_deleted": self.rows_deleted,
            "updated_columns": dict(sorted(self.updated_columns.items())),
            "columns_added": list(self.columns_added),
            "columns_removed": list(self.columns_removed),
            "columns_retyped": list(self.columns_retyped),
            "summary": self.summary(operation),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChangeLog:
        """Inverse of :meth:`to_dict`."""
        return cls(
            rows_added=int(data.get("rows_added", 0)),
            rows_updated=int(data.get("rows_updated", 0)),
            rows_deleted=int(data.get("rows_deleted", 0)),
            updated_columns=dict(data.get("updated_columns", {})),
            columns_added=list(data.get("columns_added", [])),
            columns_removed=list(data.get("columns_removed", [])),
            columns_retyped=list(data.get("columns_retyped", [])),
        )


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"


def describe_schema(schema: pa.Schema) -> list[dict[str, str]]:
    """Schema as a JSON-ready list of ``{"name", "type"}``."""
    return [{"name": f.name, "type": str(f.type)} for f in schema]


def schema_changes(
    old: pa.Schema | None, new: pa.Schema
) -> tuple[list[str], list[str], list[dict[str, str]]]:
    """Columns added, removed and retyped from ``old`` to ``new``."""
    if old is None:
        return [], [], []
    old_types = {f.name: f.type for f in old}
    new_types = {f.name: f.type for f in new}
    added = [n for n in new.names if n not in old_types]
    removed = [n for n in old.names if n not in new_types]
    retyped = [
        {"column": n, "from": str(old_types[n]), "to": str(new_types[n])}
        for n in new.names
        if n in old_types and old_types[n] != new_types[n]
    ]
    return added, removed, retyped


@dataclass
class RowDiff:
    """Rows that differ between two versions, with the changes counted."""

    changes: ChangeLog
    added: pa.Table | None = None
    deleted: pa.Table | None = None
    updated: list[dict[str, Any]] | None = None


# DuckDB keeps at most this much of a diff in memory and spills the rest to a temporary
# folder: the two sides of a rewrite hold millions of rows each (a keyless overwrite of 9M rows
# peaked at 5.3 GiB with both sides materialised, at 0.9 GiB streamed under this limit).
DIFF_MEMORY_LIMIT = "512MB"
# DuckDB runs a diff on at most this many threads: each needs its share of the memory limit to
# spill (64 MB ran out of memory with 16 threads where it passed with 2).
DIFF_THREADS = 4


def _fragment_signature(fragment: Any) -> str:
    meta = fragment.metadata.to_json()
    return json.dumps(
        {"id": meta["id"], "files": meta["files"], "deletion": meta["deletion_file"]},
        sort_keys=True,
        default=str,
    )


def _unshared_fragments(ds: lance.LanceDataset, other: lance.LanceDataset) -> list[Any]:
    """Fragments of ``ds`` that ``other`` does not have (shared ones hold identical rows)."""
    shared = {_fragment_signature(f) for f in other.get_fragments()}
    return [f for f in ds.get_fragments() if _fragment_signature(f) not in shared]


_database: tuple[int, Any] | None = None


def _diff_database() -> Any:
    """This process's DuckDB database for diffs: memory-limited, spilling to a temporary
    folder removed at exit. Diffs take cursors on it (a new database costs about 30 ms, which
    a small diff, such as a knowledge base's manifest, would pay many times over)."""
    import duckdb

    global _database  # noqa: PLW0603 - one per process, created on first use
    if _database is None or _database[0] != os.getpid():  # re-made in a forked child
        spill = tempfile.mkdtemp(prefix="curata-diff-")
        atexit.register(shutil.rmtree, spill, ignore_errors=True)
        con = duckdb.connect(
            config={
                "memory_limit": DIFF_MEMORY_LIMIT,
                "temp_directory": spill,
                "preserve_insertion_order": False,
                "threads": min(DIFF_THREADS, os.cpu_count() or 1),
            }
        )
        _database = (os.getpid(), con)
    return _database[1]


class _Sides:
    """The rows of two versions outside the fragments they share, as the tables ``before_t``
    and ``after_t`` of a DuckDB connection that spills to a temporary folder.

    Nothing is materialised: each query gets new Lance readers (a reader streams once) and
    DuckDB pulls their batches as it goes.
    """

    def __init__(
        self,
        old: lance.LanceDataset,
        new: lance.LanceDataset,
        old_columns: list[str],
        new_columns: list[str],
    ) -> None:
        self._before = (old, _unshared_fragments(old, new), old_columns)
        self._after = (new, _unshared_fragments(new, old), new_columns)
        self.con: Any = _diff_database().cursor()

    def __enter__(self) -> _Sides:
        return self

    def __exit__(self, *exc: object) -> None:
        self.con.close()

    def _bind(self) -> None:
        sides = {"before_t": self._before, "after_t": self._after}
        for name, (ds, fragments, columns) in sides.items():
            self.con.register(name, stream(ds, columns, fragments=fragments))

    def values(self, query: str) -> tuple[Any, ...]:
        """The first row of ``query``."""
        self._bind()
        # fetchall, not fetchone: DuckDB 2 relations have no fetchone().
        return tuple(self.con.sql(query).fetchall()[0])

    def table(self, query: str) -> pa.Table:
        """The result of ``query``."""
        self._bind()
        return self.con.sql(query).to_arrow_table()


def diff_datasets(
    old: lance.LanceDataset | None,
    new: lance.LanceDataset | None,
    key: str | None,
    *,
    with_rows: bool = False,
    limit: int = 100,
) -> RowDiff:
    """Compare two Lance versions of one dataset.

    Rows are compared on the columns both versions have; with a key, a row whose key is in
    both but whose values differ counts as updated, and the changed columns are named. With
    ``with_rows``, up to ``limit`` rows of each kind are returned.
    """
    import pyarrow as pa

    changes = ChangeLog()
    new_schema = new.schema if new is not None else pa.schema([])
    old_schema = old.schema if old is not None else None
    changes.set_schema_changes(old_schema, new_schema)
    if old is None or new is None or old_schema is None:
        return _one_sided(old, new, changes, with_rows, limit)
    common = [c for c in new_schema.names if c in old_schema.names]
    # Rows are matched by key only while the key keeps its kind of type: 1 and "1" do not join.
    if (
        key is None
        or key not in common
        or not _same_kind(old_schema.field(key).type, new_schema.field(key).type)
    ):
        with _Sides(old, new, common, common) as sides:
            return _multiset_diff(sides, changes, common, with_rows, limit)
    with _Sides(old, new, old_schema.names, new_schema.names) as sides:
        schemas = (old_schema, new_schema)
        return _keyed_diff(sides, changes, key, schemas, with_rows=with_rows, limit=limit)


def _one_sided(
    old: lance.LanceDataset | None,
    new: lance.LanceDataset | None,
    changes: ChangeLog,
    with_rows: bool,
    limit: int,
) -> RowDiff:
    """A diff where one version does not exist: all rows added, or all deleted."""
    only = new if old is None else old
    n = only.count_rows() if only is not None else 0
    if old is None:
        changes.rows_added = n
    else:
        changes.rows_deleted = n
    rows = only.to_table(limit=limit) if (with_rows and only is not None) else None
    if old is None:
        return RowDiff(changes, added=rows, updated=[] if with_rows else None)
    return RowDiff(changes, deleted=rows, updated=[] if with_rows else None)


def _keyed_diff(
    sides: _Sides,
    changes: ChangeLog,
    key: str,
    schemas: tuple[pa.Schema, pa.Schema],
    *,
    with_rows: bool,
    limit: int,
) -> RowDiff:
    """Rows matched by key: added, deleted, or updated in the columns named."""
    k = quote_ident(key)
    value_cols, tests = _change_tests(key, *schemas, changes.columns_added)
    flags = ", ".join(f"{test} AS {quote_ident('chg_' + c)}" for c, test in tests.items())
    # A CTE, not a table: the join streams through the counts (and spills) instead of being
    # kept whole.
    joined = (
        "WITH joined AS (SELECT "
        f"b.{k} IS NOT NULL AS in_before, a.{k} IS NOT NULL AS in_after, "
        f"coalesce(a.{k}, b.{k}) AS k" + (f", {flags}" if flags else "") + " "
        f"FROM before_t b FULL OUTER JOIN after_t a ON b.{k} = a.{k}) "
    )
    any_change = " OR ".join(quote_ident("chg_" + c) for c in value_cols) or "false"
    counts = ", ".join(
        [
            "count(*) FILTER (WHERE in_after AND NOT in_before)",
            "count(*) FILTER (WHERE in_before AND NOT in_after)",
            f"count(*) FILTER (WHERE in_before AND in_after AND ({any_change}))",
        ]
        + [
            f"count(*) FILTER (WHERE in_before AND in_after AND {quote_ident('chg_' + c)})"
            for c in value_cols
        ]
    )
    row = sides.values(f"{joined}SELECT {counts} FROM joined")
    changes.rows_added, changes.rows_deleted, changes.rows_updated = row[0], row[1], row[2]
    changes.updated_columns = {c: n for c, n in zip(value_cols, row[3:], strict=True) if n}
    if not with_rows:
        return RowDiff(changes)
    added = sides.table(
        f"SELECT a.* FROM after_t a ANTI JOIN before_t b ON a.{k} = b.{k} LIMIT {limit}"
    )
    deleted = sides.table(
        f"SELECT b.* FROM before_t b ANTI JOIN after_t a ON a.{k} = b.{k} LIMIT {limit}"
    )
    keys = sides.table(
        f"{joined}SELECT k FROM joined WHERE in_before AND in_after AND ({any_change}) "
        f"ORDER BY k LIMIT {limit}"
    )
    updated = _updated_rows(sides, keys, key, value_cols)
    return RowDiff(changes, added=added, deleted=deleted, updated=updated)


def _change_tests(
    key: str, old: pa.Schema, new: pa.Schema, columns_added: list[str]
) -> tuple[list[str], dict[str, str]]:
    """The value columns compared between ``b`` (before) and ``a`` (after), and the SQL test
    of each that says whether a matched row changed there."""
    value_cols = [c for c in new.names if c in old.names and c != key]
    # A column retyped across kinds (string -> double, say) is compared by its text, which
    # DuckDB can always produce; comparing the values would fail or cast one side arbitrarily.
    # Within a kind (int64 -> double) values compare as they are, so 2 and 2.0 are no update.
    retyped = {c for c in value_cols if not _same_kind(old.field(c).type, new.field(c).type)}

    def compared(alias: str, column: str) -> str:
        ref = f"{alias}.{quote_ident(column)}"
        return f"CAST({ref} AS VARCHAR)" if column in retyped else ref

    # A column the new version adds counts as changed in the rows where it holds a value, as
    # the change log of the upsert that added it says.
    added = [c for c in columns_added if c != key]
    tests = {c: f"({compared('b', c)} IS DISTINCT FROM {compared('a', c)})" for c in value_cols}
    tests |= {c: f"(a.{quote_ident(c)} IS NOT NULL)" for c in added}
    return [*value_cols, *added], tests


def _same_kind(a: pa.DataType, b: pa.DataType) -> bool:
    """Whether DuckDB compares values of types ``a`` and ``b`` by value (same type, both
    numbers or both strings)."""
    import pyarrow.types as pt

    def number(t: pa.DataType) -> bool:
        return bool(pt.is_integer(t) or pt.is_floating(t) or pt.is_decimal(t))

    def text(t: pa.DataType) -> bool:
        return bool(pt.is_string(t) or pt.is_large_string(t) or pt.is_string_view(t))

    return a == b or (number(a) and number(b)) or (text(a) and text(b))


def _multiset_diff(
    sides: _Sides, changes: ChangeLog, common: list[str], with_rows: bool, limit: int
) -> RowDiff:
    """Rows compared whole, as multisets: a row's copies in the new version minus its copies
    in the old one are rows added (or, below zero, deleted)."""
    if not common:
        return RowDiff(changes)
    cols = ", ".join(quote_ident(c) for c in common)
    # UNION ALL gives both sides the same column types, as EXCEPT ALL did (1 and 1.0 are one
    # value, a column retyped from numbers to text compares by its text).
    both = f"SELECT {cols}, 1 AS __side FROM after_t UNION ALL SELECT {cols}, -1 FROM before_t"
    # Counting groups rows by a 128-bit hash of their JSON text: for a rewrite of 9M rows,
    # 10 s under the memory limit where grouping the whole rows spilled them and took 77 s.
    # Two different rows share a hash with odds of about n^2 / 2^129 (1e-25 for 10M rows).
    row = ", ".join(f"{quote_ident(c)} := {quote_ident(c)}" for c in common)
    hashed = (
        f"SELECT md5_number(to_json(struct_pack({row}))) AS __h, sum(__side) AS __net "
        f"FROM ({both}) GROUP BY __h"
    )
    added, deleted = sides.values(
        "SELECT coalesce(sum(__net) FILTER (WHERE __net > 0), 0), "
        f"coalesce(-sum(__net) FILTER (WHERE __net < 0), 0) FROM ({hashed})"
    )
    changes.rows_added, changes.rows_deleted = int(added), int(deleted)
    if not with_rows:
        return RowDiff(changes)

    # The rows themselves are grouped whole (exact; asked for with a limit, by `dataset diff`).
    counted = f"SELECT {cols}, sum(__side) AS __net FROM ({both}) GROUP BY ALL"

    def copies(sign: str) -> pa.Table:
        # A row with n copies more on one side is n rows added (or deleted).
        return sides.table(
            f"SELECT {cols} FROM (SELECT *, unnest(range(abs(__net)::BIGINT)) "
            f"FROM ({counted}) WHERE __net {sign} 0) LIMIT {limit}"
        )

    return RowDiff(changes, added=copies(">"), deleted=copies("<"), updated=[])


def _updated_rows(
    sides: _Sides, keys: pa.Table, key: str, value_cols: list[str]
) -> list[dict[str, Any]]:
    """The old and new values of the updated rows whose keys are ``keys`` (column ``k``)."""
    k = quote_ident(key)
    sides.con.register("upd_keys", keys)
    before = sides.table(f"SELECT b.* FROM before_t b SEMI JOIN upd_keys u ON b.{k} = u.k")
    after = sides.table(f"SELECT a.* FROM after_t a SEMI JOIN upd_keys u ON a.{k} = u.k")
    old_by_key = {r[key]: r for r in before.to_pylist()}
    out: list[dict[str, Any]] = []
    for new_row in sorted(after.to_pylist(), key=lambda r: str(r[key])):
        old_row = old_by_key.get(new_row[key], {})
        changed = {
            c: {"old": old_row.get(c), "new": new_row.get(c)}
            for c in value_cols
            if old_row.get(c) != new_row.get(c)
        }
        out.append({"key": new_row[key], "changes": changed})
    return out


def quote_ident(name: str) -> str:
    """Quote an identifier for DuckDB."""
    return '"' + name.replace('"', '""') + '"'
