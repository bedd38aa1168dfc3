"""Turning user data into Arrow tables a dataset accepts, with clear errors when it cannot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from curata.errors import InvalidInput

if TYPE_CHECKING:
    import pyarrow as pa

MAX_LISTED = 10


def to_arrow_table(data: Any, what: str = "input") -> pa.Table:
    """Accept a pyarrow Table / RecordBatch / RecordBatchReader, a pandas or polars DataFrame,
    a list of row dicts, or a dict of columns.

    Raises:
        InvalidInput: the object is none of those.
    """
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    module = type(data).__module__.split(".", 1)[0]
    if module == "pandas":
        return pa.Table.from_pandas(data, preserve_index=False)
    if module == "polars":
        return data.to_arrow()
    try:
        if isinstance(data, dict):
            return pa.table(data)
        if isinstance(data, list):
            return pa.Table.from_pylist(data)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise InvalidInput(f"Cannot turn {what} into a table: {err}") from err
    raise InvalidInput(
        f"Cannot write {what} of type {type(data).__name__}.",
        hint="Pass a pyarrow Table or RecordBatch, a pandas or polars DataFrame, "
        "a list of row dicts or a dict of columns.",
    )


def _listed(items: list[Any]) -> str:
    shown = ", ".join(repr(i) for i in items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def conform(table: pa.Table, target: pa.Schema, dataset: str, *, partial: bool = False) -> pa.Table:
    """Cast ``table`` to ``target``'s column order and types.

    With ``partial`` (upserts), ``table`` may omit columns and add new ones; the result keeps
    its own columns, cast where the target knows them. Otherwise the columns must match.

    Raises:
        InvalidInput: missing or unexpected columns (named), or a column that cannot be cast.
    """
    import pyarrow as pa

    names = set(table.column_names)
    missing = [n for n in target.names if n not in names]
    extra = [n for n in table.column_names if n not in target.names]
    if not partial and (missing or extra):
        parts = []
        if missing:
            parts.append(f"missing column(s) {_listed(missing)}")
        if extra:
            parts.append(f"unexpected column(s) {_listed(extra)}")
        raise InvalidInput(
            f"Schema mismatch writing to {dataset!r}: " + "; ".join(parts) + ".",
            hint=f"{dataset!r} has columns {', '.join(target.names)}. Rename or drop columns, "
            "use upsert to add columns, or overwrite to replace the schema.",
        )
    order = [n for n in target.names if n in names] + extra
    table = table.select(order)
    fields = [target.field(n) if n in target.names else table.schema.field(n) for n in order]
    try:
        return table.cast(pa.schema(fields))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as err:
        bad = [
            f"{f.name} ({table.schema.field(f.name).type} -> {f.type})"
            for f in fields
            if table.schema.field(f.name).type != f.type
        ]
        raise InvalidInput(
            f"Cannot convert column(s) {', '.join(bad)} to the types of {dataset!r}: {err}"
        ) from err


def check_key(table: pa.Table, key: str, dataset: str) -> None:
    """The key column exists, has no nulls and no duplicates.

    Raises:
        InvalidInput: naming the key column, or listing the duplicated values.
    """
    import pyarrow.compute as pc

    if key not in table.column_names:
        raise InvalidInput(
            f"Key column {key!r} is not in the input for {dataset!r}.",
            hint=f"The input has columns {', '.join(table.column_names)}.",
        )
    col = table.column(key)
    if col.null_count:
        raise InvalidInput(f"Key column {key!r} has {col.null_count} empty value(s).")
    counts = pc.value_counts(col)
    dup_mask = pc.greater(counts.field("counts"), 1)
    dups = counts.filter(dup_mask).field("values").to_pylist()
    if dups:
        raise InvalidInput(
            f"The input has {len(dups)} duplicated value(s) of key {key!r}: {_listed(dups)}.",
            hint="Each key may appear once per write; remove the duplicates first.",
        )
