"""``reveal_pii``: read back the values that ``redact_pii(..., "encrypt")`` replaced.

It only reads: the clear values go to the caller (a table, a file), never into the lake.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from curata.errors import InvalidInput
from curata.quality.pii import load_key, reveal_text
from curata.quality.pii.encryption import TOKEN
from curata.quality.pii_lake.source import TextBatch, check_text_column, text_batches

if TYPE_CHECKING:
    import os

    import pyarrow as pa

    from curata.lake import Lake, Snapshot

ROW_POSITION = "row_position"


def reveal_pii(
    lake: Lake,
    ref: str,
    column: str,
    key_file: str | os.PathLike[str],
    *,
    limit: int | None = None,
    all_rows: bool = False,
) -> pa.Table:
    """The rows of ``ref`` with ``column``'s encrypted values decrypted.

    Args:
        lake: the lake.
        ref: the version to read (``tickets``, ``tickets@4``).
        column: the text column that was encrypted.
        key_file: the key file the values were encrypted with.
        limit: at most this many rows.
        all_rows: every row, not only those holding encrypted values.

    Returns:
        The dataset's key column (or ``row_position`` when it has no key) and ``column``
        with the original values put back.

    Raises:
        NotFound: no such version or key file.
        InvalidInput: no such column or not a text column, a damaged key, or a value that
            does not decrypt with this key (the message names the row).

    >>> reveal_pii(lake, "tickets@2", "body", "pii.key").to_pylist()[0]  # doctest: +SKIP
    {'ticket_id': 'T-1012', 'body': 'Please write to hannah.fischer@example.com ...'}
    """
    import pyarrow as pa

    snapshot = lake.ref(ref)
    batches = list(iter_revealed(snapshot, column, key_file, limit=limit, all_rows=all_rows))
    return pa.Table.from_batches(batches, schema=revealed_schema(snapshot, column))


def revealed_schema(snapshot: Snapshot, column: str) -> pa.Schema:
    """The columns :func:`reveal_pii` returns for ``snapshot``."""
    import pyarrow as pa

    text = check_text_column(snapshot.schema, column, snapshot.ref)
    if snapshot.key is not None:
        row = snapshot.schema.field(snapshot.key)
        if snapshot.key == column:
            return pa.schema([text])
        return pa.schema([row, text])
    return pa.schema([pa.field(ROW_POSITION, pa.int64()), text])


def iter_revealed(
    snapshot: Snapshot,
    column: str,
    key_file: str | os.PathLike[str],
    *,
    limit: int | None = None,
    all_rows: bool = False,
) -> Iterator[pa.RecordBatch]:
    """:func:`reveal_pii` as a stream of batches (bounded memory, for exports)."""
    import pyarrow as pa

    if limit is not None and limit < 0:
        raise InvalidInput("limit cannot be negative.")
    schema = revealed_schema(snapshot, column)
    key = load_key(key_file)
    left = limit
    for part in text_batches(snapshot, column):
        if left == 0:
            return
        keep: list[int] = []
        texts: list[str | None] = []
        for i, text in enumerate(part.texts):
            if not all_rows and (text is None or TOKEN.search(text) is None):
                continue
            keep.append(i)
            texts.append(None if text is None else _reveal(text, key, snapshot, part, i))
            if left is not None and len(keep) == left:
                break
        if left is not None:
            left -= len(keep)
        if not keep:
            continue
        index = pa.array(keep, pa.int64())
        rows = (
            part.batch.column(snapshot.key).take(index)
            if snapshot.key is not None
            else pa.array([part.first + i for i in keep], pa.int64())
        )
        revealed = pa.array(texts, schema.field(column).type)
        arrays = [revealed] if len(schema) == 1 else [rows, revealed]
        yield pa.RecordBatch.from_arrays(arrays, schema=schema)


def _reveal(text: str, key: bytes, snapshot: Snapshot, part: TextBatch, i: int) -> str:
    try:
        return reveal_text(text, key)
    except InvalidInput as err:
        row = f"key {part.keys[i]!r}" if part.keys is not None else f"position {part.first + i}"
        raise InvalidInput(
            f"Row {row} of {snapshot.ref}: {err.message}",
            hint=err.hint or "Use the key file the values were encrypted with.",
        ) from err
