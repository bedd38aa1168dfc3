"""Change logs and diffs between versions.

A change log counts rows added, updated (with the columns that changed) and deleted, and
columns added, removed and retyped. Diffs read only what differs: Lance fragments that two
versions share hold identical rows, so only the fragments one version has and the other lacks
are scanned and compared (by key in DuckDB when the dataset has one, as multisets otherwise).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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


def _fragment_signature(fragment: Any) -> str:
    meta = fragment.metadata.to_json()
    return json.dumps(
        {"id": meta["id"], "files": meta["files"], "deletion": meta["deletion_file"]},
        sort_keys=True,
        default=str,
    )


def _unshared_rows(
    ds: lance.LanceDataset | None, other: lance.LanceDataset | None, columns: list[str]
) -> pa.Table:
    """Rows of ``ds`` in fragments that ``other`` does not have, limited to ``columns``."""
    import pyarrow as pa

    if ds is None:
        return pa.table({})
    shared = set() if other is None else {_fragment_signature(f) for f in other.get_fragments()}
    fragments = [f for f in ds.get_fragments() if _fragment_signature(f) not in shared]
    if not fragments:
        return ds.schema.empty_table().select(columns)
    return ds.scanner(columns=columns, fragments=fragments).to_table()


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
    import duckdb
    import pyarrow as pa

    changes = ChangeLog()
    new_schema = new.schema if new is not None else pa.schema([])
    changes.set_schema_changes(old.schema if old is not None else None, new_schema)
    old_cols = old.schema.names if old is not None else []
    common = [c for c in new_schema.names if c in old_cols]
    if old is None or new is None:
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

    before = _unshared_rows(old, new, common if key is None else old_cols)
    after = _unshared_rows(new, old, common if key is None else new_schema.names)
    con: Any = duckdb.connect()
    con.register("before_t", before)
    con.register("after_t", after)
    cols_sql = ", ".join(quote_ident(c) for c in common)
    # Rows are matched by key only while the key keeps its kind of type: 1 and "1" do not join.
    if (
        key is None
        or key not in common
        or not _same_kind(old.schema.field(key).type, new_schema.field(key).type)
    ):
        return _multiset_diff(con, changes, cols_sql, with_rows, limit)
    k = quote_ident(key)
    value_cols = [c for c in common if c != key]
    # A column retyped across kinds (string -> double, say) is compared by its text, which
    # DuckDB can always produce; comparing the values would fail or cast one side arbitrarily.
    # Within a kind (int64 -> double) values compare as they are, so 2 and 2.0 are no update.
    retyped = {
        c for c in value_cols if not _same_kind(old.schema.field(c).type, new_schema.field(c).type)
    }

    def compared(alias: str, column: str) -> str:
        ref = f"{alias}.{quote_ident(column)}"
        return f"CAST({ref} AS VARCHAR)" if column in retyped else ref

    # A column the new version adds counts as changed in the rows where it holds a value, as
    # the change log of the upsert that added it says.
    added = [c for c in changes.columns_added if c != key]
    tests = {c: f"({compared('b', c)} IS DISTINCT FROM {compared('a', c)})" for c in value_cols}
    tests |= {c: f"(a.{quote_ident(c)} IS NOT NULL)" for c in added}
    value_cols = [*value_cols, *added]
    flags = ", ".join(f"{test} AS {quote_ident('chg_' + c)}" for c, test in tests.items())
    con.execute(
        "CREATE TEMP TABLE joined AS SELECT "
        f"b.{k} IS NOT NULL AS in_before, a.{k} IS NOT NULL AS in_after, "
        f"coalesce(a.{k}, b.{k}) AS k" + (f", {flags}" if flags else "") + " "
        f"FROM before_t b FULL OUTER JOIN after_t a ON b.{k} = a.{k}"
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
    # fetchall, not fetchone: DuckDB 2 relations have no fetchone().
    row = con.sql(f"SELECT {counts} FROM joined").fetchall()[0]
    changes.rows_added, changes.rows_deleted, changes.rows_updated = row[0], row[1], row[2]
    changes.updated_columns = {c: n for c, n in zip(value_cols, row[3:], strict=True) if n}
    if not with_rows:
        return RowDiff(changes)
    added = con.sql(
        f"SELECT a.* FROM after_t a ANTI JOIN before_t b ON a.{k} = b.{k} LIMIT {limit}"
    ).to_arrow_table()
    deleted = con.sql(
        f"SELECT b.* FROM before_t b ANTI JOIN after_t a ON a.{k} = b.{k} LIMIT {limit}"
    ).to_arrow_table()
    updated = _updated_rows(con, key, value_cols, any_change, limit)
    return RowDiff(changes, added=added, deleted=deleted, updated=updated)


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
    con: Any, changes: ChangeLog, cols_sql: str, with_rows: bool, limit: int
) -> RowDiff:
    if not cols_sql:
        return RowDiff(changes)
    added_sql = f"SELECT {cols_sql} FROM after_t EXCEPT ALL SELECT {cols_sql} FROM before_t"
    deleted_sql = f"SELECT {cols_sql} FROM before_t EXCEPT ALL SELECT {cols_sql} FROM after_t"
    changes.rows_added = con.sql(f"SELECT count(*) FROM ({added_sql})").fetchall()[0][0]
    changes.rows_deleted = con.sql(f"SELECT count(*) FROM ({deleted_sql})").fetchall()[0][0]
    if not with_rows:
        return RowDiff(changes)
    return RowDiff(
        changes,
        added=con.sql(f"{added_sql} LIMIT {limit}").to_arrow_table(),
        deleted=con.sql(f"{deleted_sql} LIMIT {limit}").to_arrow_table(),
        updated=[],
    )


def _updated_rows(
    con: Any, key: str, value_cols: list[str], any_change: str, limit: int
) -> list[dict[str, Any]]:
    k = quote_ident(key)
    keys = con.sql(
        f"SELECT k FROM joined WHERE in_before AND in_after AND ({any_change}) "
        f"ORDER BY k LIMIT {limit}"
    ).to_arrow_table()
    con.register("upd_keys", keys)
    before = con.sql(
        f"SELECT b.* FROM before_t b SEMI JOIN upd_keys u ON b.{k} = u.k"
    ).to_arrow_table()
    after = con.sql(
        f"SELECT a.* FROM after_t a SEMI JOIN upd_keys u ON a.{k} = u.k"
    ).to_arrow_table()
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
