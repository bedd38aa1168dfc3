"""Tabular files in and out: Parquet, CSV, JSON Lines, and Hugging Face dataset folders.

:func:`read_table` turns a file into an Arrow table, with errors that point at the line to fix;
:func:`write_table` streams record batches to a file, so exporting a large version needs
bounded memory.

Round trips are exact for Parquet. CSV and JSON Lines keep what their text can say: the reader
infers types again, so timestamps written with fractions of a second come back from JSON Lines
as strings, dates as timestamps; bytes are written as base64 text. CSV cannot hold list or
struct columns (use Parquet or JSON Lines). In CSV an unquoted empty field reads as null and a
quoted one (``""``) as an empty string, so nulls and empty strings both survive.

>>> table = read_table("tickets.csv")  # doctest: +SKIP
>>> write_table(table, "tickets.parquet")  # doctest: +SKIP
1200
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import itertools
import json
import math
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from curata.errors import CurataError, InvalidInput, MissingDependency, NotFound, StorageError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["EXPORT_FORMATS", "FORMATS", "detect_format", "read_table", "write_table"]

FORMATS = ("parquet", "csv", "jsonl")
"""Formats :func:`read_table` reads."""

EXPORT_FORMATS = (*FORMATS, "hf")
"""Formats :func:`write_table` writes; ``hf`` is a folder for ``datasets.load_from_disk``."""

_EXTENSIONS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json-lines": "jsonl",
    ".json": "jsonl",
}
_MAX_LISTED = 10
_REPLACE_HINT = "Pass --overwrite (overwrite=True in Python) to replace it."
_MAX_BLOCK = 2**31 - 1  # Arrow's block size is an int32
_JSON_KIND_CHANGE = re.compile(r"Column\((?P<path>[^)]*)\) changed from \w+ to (?P<kind>\w+)")

StrPath: TypeAlias = str | os.PathLike[str]


def detect_format(path: StrPath) -> str:
    """The format of ``path`` told by its extension: one of :data:`FORMATS`.

    ``.json`` counts as JSON Lines (one object per line), the form data tools write.

    >>> detect_format("tickets.ndjson")
    'jsonl'

    Raises:
        InvalidInput: the extension is not one curata knows.
    """
    return _chosen_format(path, None, FORMATS)


def read_table(path: StrPath, format: str | None = None) -> pa.Table:
    """Read a whole Parquet, CSV or JSON Lines file into an Arrow table.

    Args:
        path: a local file.
        format: one of :data:`FORMATS`; by default told from the extension.

    Returns:
        The rows, with types as stored (Parquet) or as inferred from the text (CSV, JSONL).

    Raises:
        NotFound: there is no file at ``path``.
        InvalidInput: unknown format, an empty or unreadable file, text that is not UTF-8,
            CSV rows with the wrong number of fields (their line numbers are listed) or a
            JSON Lines line that does not parse or changes a field's type (its line number).
    """
    fmt = _chosen_format(path, format, FORMATS)
    file = Path(path)
    if not file.exists():
        raise NotFound(f"{file} does not exist.")
    if file.is_dir():
        raise InvalidInput(f"{file} is a folder; give the path of a {fmt} file.")
    if file.stat().st_size == 0:
        raise InvalidInput(f"{file} is empty.")
    try:
        table = {"parquet": _read_parquet, "csv": _read_csv, "jsonl": _read_jsonl}[fmt](file)
    except PermissionError as err:
        raise InvalidInput(f"Cannot read {file}: permission denied.") from err
    if table.num_columns == 0:
        raise InvalidInput(f"{file} has no data.")
    return _type_empty_columns(table) if fmt != "parquet" else table


def _type_empty_columns(table: pa.Table) -> pa.Table:
    """Columns empty in every row come out of CSV and JSON as type null, which no later value
    fits; text is the likeliest type for them."""
    import pyarrow as pa

    fields = [
        pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in table.schema
    ]
    return table.cast(pa.schema(fields))


def write_table(
    data: pa.Table | pa.RecordBatch | pa.RecordBatchReader | Iterable[pa.RecordBatch],
    path: StrPath,
    format: str | None = None,
    *,
    overwrite: bool = False,
    schema: pa.Schema | None = None,
) -> int:
    """Stream rows to a Parquet, CSV or JSON Lines file, or a Hugging Face dataset folder.

    Files are written beside the target and renamed into place at the end, so a failed export
    leaves no partial file; missing parent folders are created.

    Args:
        data: an Arrow table, a record batch, a reader or any iterable of record batches.
        path: the file (or, for ``hf``, the folder) to write.
        format: one of :data:`EXPORT_FORMATS`; by default told from the extension.
        overwrite: replace an existing non-empty target. An existing folder is replaced only
            when it holds a Hugging Face dataset, so a mistyped path cannot delete a folder.
        schema: the columns to write when ``data`` yields no batch at all.

    Returns:
        The number of rows written.

    Raises:
        InvalidInput: unknown format, the target exists (without ``overwrite``), or the
            rows cannot be written in that format (list or struct columns in CSV).
        MissingDependency: ``hf`` without the ``datasets`` package.
        StorageError: the file system refused the write.
    """
    import pyarrow as pa

    fmt = _chosen_format(path, format, EXPORT_FORMATS)
    if fmt == "hf":
        _require_datasets()
    target = Path(path)
    _check_target(target, fmt, overwrite)
    first_schema, batches = _schema_and_batches(data, schema)
    if fmt == "csv":
        _check_csv_columns(first_schema, target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "hf":
            return _write_hf(batches, first_schema, target)
        writer = {"parquet": _write_parquet, "csv": _write_csv, "jsonl": _write_jsonl}[fmt]
        return _write_file(writer, batches, first_schema, target)
    except CurataError:
        raise
    except (PermissionError, IsADirectoryError, NotADirectoryError) as err:
        raise InvalidInput(f"Cannot write {target}: {err.strerror}.") from err
    except OSError as err:
        raise StorageError(f"Writing {target} failed: {err}") from err
    except (pa.ArrowException, ValueError, TypeError) as err:
        raise InvalidInput(f"Cannot write the rows to {target} as {fmt}: {err}") from err


# -- reading ----------------------------------------------------------------------------------


def _chosen_format(path: StrPath, format: str | None, choices: tuple[str, ...]) -> str:
    if format is None:
        detected = _EXTENSIONS.get(Path(path).suffix.lower())
        if detected is None:
            raise InvalidInput(
                f"Cannot tell the format of {os.fspath(path)} from its extension.",
                hint=f"Pass --format (format= in Python), one of: {', '.join(choices)}.",
            )
        return detected
    fmt = format.lower()
    if fmt not in choices:
        raise InvalidInput(f"Unknown format {format!r}; use one of {', '.join(choices)}.")
    return fmt


def _read_parquet(file: Path) -> pa.Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(file)
    except (pa.ArrowException, OSError) as err:
        if isinstance(err, PermissionError):
            raise
        raise InvalidInput(f"{file} is not a readable Parquet file: {err}") from err


def _read_csv(file: Path) -> pa.Table:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    bad: list[Any] = []

    def skip_and_keep(row: Any) -> str:
        bad.append(row)
        return "skip"

    parse = pcsv.ParseOptions(newlines_in_values=True, invalid_row_handler=skip_and_keep)
    # Unquoted empty fields are nulls, quoted ones ("") empty strings: both survive a round trip.
    convert = pcsv.ConvertOptions(strings_can_be_null=True, quoted_strings_can_be_null=False)

    def read(block_size: int) -> pa.Table:
        bad.clear()
        options = pcsv.ReadOptions(block_size=block_size)
        return pcsv.read_csv(
            file, read_options=options, parse_options=parse, convert_options=convert
        )

    try:
        table = _with_growing_blocks(read, file)
    except pa.ArrowInvalid as err:
        if "Empty CSV" in str(err):
            raise InvalidInput(f"{file} is empty.") from err
        raise InvalidInput(f"{file} cannot be read as CSV: {err}") from err
    try:
        names_ok = bool(table.column_names)
    except UnicodeDecodeError:  # Arrow does not check the header is UTF-8
        names_ok = False
    # ... and reads fields that are not UTF-8 as binary columns.
    if not names_ok or any(pa.types.is_binary(f.type) for f in table.schema):
        _raise_not_utf8(file)
    if bad:
        _raise_bad_csv_rows(file, bad)
    return table


def _raise_bad_csv_rows(file: Path, bad: list[Any]) -> None:
    expected = bad[0].expected_columns
    found = [
        f"line {line}: expected {expected} fields, found {count}"
        for line, count in itertools.islice(_csv_records(file), 1, None)
        if count != expected
    ][:_MAX_LISTED]
    if not found:  # our scanner and Arrow's parser disagree: show the rows instead
        found = [f"{r.text[:60]!r}: expected {expected}, found {r.actual_columns}" for r in bad]
    more = f"; and {len(bad) - _MAX_LISTED} more" if len(bad) > _MAX_LISTED else ""
    noun = "row does" if len(bad) == 1 else "rows do"
    raise InvalidInput(
        f"{file}: {len(bad)} {noun} not parse ({'; '.join(found[:_MAX_LISTED])}{more}).",
        hint="Fix or remove those rows; a field holding a comma, quote or newline must be "
        'in double quotes, with its quotes doubled ("").',
    )


def _csv_records(file: Path) -> Iterator[tuple[int, int]]:
    """(first line, number of fields) of each record, the header included; quoted fields may
    span lines. Empty lines between records are skipped, as Arrow does."""
    quoted = at_field_start = after_quote = False
    start, fields = 0, 1
    with file.open(encoding="utf-8-sig", errors="replace") as text:
        for number, text_line in enumerate(text, 1):
            line = text_line.rstrip("\n")
            if not start:
                if not line:
                    continue
                start, fields, at_field_start, after_quote = number, 1, True, False
            if not quoted and '"' not in line:
                fields += line.count(",")
            else:
                for char in line:
                    if quoted:
                        quoted, after_quote = char != '"', char == '"'
                    elif char == '"' and (at_field_start or after_quote):
                        quoted, at_field_start, after_quote = True, False, False
                    elif char == ",":
                        fields, at_field_start, after_quote = fields + 1, True, False
                    else:
                        at_field_start = after_quote = False
            if not quoted:
                yield start, fields
                start = 0
    if start:
        yield start, fields


def _read_jsonl(file: Path) -> pa.Table:
    import pyarrow as pa
    import pyarrow.json as pjson

    def read(block_size: int) -> pa.Table:
        return pjson.read_json(file, read_options=pjson.ReadOptions(block_size=block_size))

    try:
        table = _with_growing_blocks(read, file)
        table.validate(full=True)  # Arrow's JSON reader does not check strings are UTF-8
    except pa.ArrowInvalid as err:
        _raise_json_error(file, str(err))
    return table


def _raise_json_error(file: Path, message: str) -> None:
    """Point at the line to fix. Arrow's "in row N" counts from the start of a block, so the
    line is found by reading the file again (only on this error path)."""
    problem = _first_bad_json_line(file)
    if problem is None:
        change = _JSON_KIND_CHANGE.search(message)
        if change:
            problem = _first_kind_change(file, change["path"], change["kind"])
    hint = "JSON Lines needs one JSON object per line, each field of one type throughout."
    if problem is None:
        detail = re.sub(r" in row \d+$", "", message)
        raise InvalidInput(f"{file} cannot be read as JSON Lines: {detail}", hint=hint)
    line, what = problem
    raise InvalidInput(f"{file}: line {line} {what}.", hint=hint)


def _first_bad_json_line(file: Path) -> tuple[int, str] | None:
    def reject(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    with file.open("rb") as raw:
        for number, data in enumerate(raw, 1):
            try:
                line = data.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                return number, "is not UTF-8 text"
            if not line.strip():
                continue
            try:
                value = json.loads(line, parse_constant=reject)
            except ValueError as err:
                return number, f"is not valid JSON ({err})"
            if not isinstance(value, dict):
                return number, f"holds a JSON {_json_kind(value)}, not an object"
    return None


def _first_kind_change(file: Path, column: str, kind: str) -> tuple[int, str] | None:
    """First line where ``column`` (Arrow's path, like ``/a/[]/b``) holds a ``kind`` value."""
    parts = [p for p in column.split("/") if p]
    with file.open(encoding="utf-8-sig") as text:
        for number, line in enumerate(text, 1):
            values = [json.loads(line)] if line.strip() else []
            for part in parts:
                if part == "[]":
                    values = [v for lst in values if isinstance(lst, list) for v in lst]
                else:
                    values = [obj[part] for obj in values if isinstance(obj, dict) and part in obj]
            if any(_json_kind(v) == kind for v in values):
                name = ".".join(p for p in parts if p != "[]")
                return number, f"gives field {name!r} a {kind}, unlike the lines before it"
    return None


def _json_kind(value: Any) -> str:
    if value is None or isinstance(value, bool | str | list | dict):
        return {type(None): "null", bool: "boolean", str: "string", list: "array"}.get(
            type(value), "object"
        )
    return "number"


def _with_growing_blocks(read: Callable[[int], pa.Table], file: Path) -> pa.Table:
    """Arrow parses in blocks (1 MiB) and fails on a row longer than one: retry with larger."""
    import pyarrow as pa

    block = 1 << 20
    while True:
        try:
            return read(block)
        except pa.ArrowInvalid as err:
            if "straddling" not in str(err) or block >= min(file.stat().st_size, _MAX_BLOCK):
                raise
            block = min(block * 16, _MAX_BLOCK)


def _raise_not_utf8(file: Path) -> None:
    line = _first_non_utf8_line(file)
    raise InvalidInput(
        f"{file} is not UTF-8 text" + ("." if line is None else f" (line {line})."),
        hint=f"Convert it first, e.g. iconv -f latin1 -t utf-8 {file} > utf8-{file.name}",
    )


def _first_non_utf8_line(file: Path) -> int | None:
    with file.open("rb") as raw:
        for number, data in enumerate(raw, 1):
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return None


# -- writing ----------------------------------------------------------------------------------


def _require_datasets() -> None:
    import importlib.util

    if importlib.util.find_spec("datasets") is None:
        raise MissingDependency("datasets", "hf", "Export to a Hugging Face dataset")


def _check_target(target: Path, fmt: str, overwrite: bool) -> None:
    if target.is_dir():
        if fmt != "hf":
            raise InvalidInput(f"{target} is a folder; give the path of the {fmt} file.")
        if not any(target.iterdir()):
            return
        if not overwrite:
            raise InvalidInput(f"{target} exists.", hint=_REPLACE_HINT)
        if not (target / "state.json").is_file():
            raise InvalidInput(
                f"{target} is a folder that does not hold a Hugging Face dataset; "
                "curata will not replace it.",
                hint="Choose a new or empty folder.",
            )
    elif target.exists() and target.stat().st_size > 0 and not overwrite:
        raise InvalidInput(f"{target} exists.", hint=_REPLACE_HINT)


def _schema_and_batches(
    data: Any, schema: pa.Schema | None
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data.schema, iter(data.to_batches())
    if isinstance(data, pa.RecordBatch):
        return data.schema, iter([data])
    if isinstance(data, pa.RecordBatchReader):
        return data.schema, iter(data)
    batches = iter(data)
    first = next(batches, None)
    if first is None:
        return (schema if schema is not None else pa.schema([])), iter(())
    return first.schema, itertools.chain([first], batches)


def _write_file(
    writer: Callable[[Iterator[pa.RecordBatch], pa.Schema, Path], int],
    batches: Iterator[pa.RecordBatch],
    schema: pa.Schema,
    target: Path,
) -> int:
    # Not tempfile.mkstemp: its file mode (0600) would stay on the exported file.
    part = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        rows = writer(batches, schema, part)
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
    return rows


def _write_parquet(batches: Iterator[pa.RecordBatch], schema: pa.Schema, path: Path) -> int:
    import pyarrow.parquet as pq

    rows = 0
    with pq.ParquetWriter(path, schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def _check_csv_columns(schema: pa.Schema, target: Path) -> None:
    import pyarrow as pa

    nested = [f"{f.name} ({f.type})" for f in schema if pa.types.is_nested(f.type)]
    if nested:
        raise InvalidInput(
            f"CSV cannot hold the nested column(s) {', '.join(nested[:_MAX_LISTED])} of {target}.",
            hint="Export to Parquet or JSON Lines instead, or leave those columns out.",
        )


def _write_csv(batches: Iterator[pa.RecordBatch], schema: pa.Schema, path: Path) -> int:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    rows = 0
    text_schema = _bytes_as_base64(pa.RecordBatch.from_pylist([], schema=schema)).schema
    with pcsv.CSVWriter(path, text_schema) as writer:
        for batch in batches:
            writer.write_batch(_bytes_as_base64(batch))
            rows += batch.num_rows
    return rows


def _bytes_as_base64(batch: pa.RecordBatch) -> pa.RecordBatch:
    """CSV is text: binary columns become base64, as in JSON Lines."""
    import pyarrow as pa

    for i, field in enumerate(batch.schema):
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            texts = [None if b is None else _base64(b) for b in batch.column(i).to_pylist()]
            batch = batch.set_column(i, field.name, pa.array(texts, pa.string()))
    return batch


def _write_jsonl(batches: Iterator[pa.RecordBatch], schema: pa.Schema, path: Path) -> int:
    rows = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for batch in batches:
            for row in batch.to_pylist():
                try:
                    line = json.dumps(row, ensure_ascii=False, allow_nan=False, default=_json_value)
                except ValueError:  # NaN or infinity, which JSON cannot say: write null
                    line = json.dumps(_finite(row), ensure_ascii=False, default=_json_value)
                out.write(line + "\n")
            rows += batch.num_rows
    return rows


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return _base64(value)
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)  # str keeps every digit of a decimal
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    raise TypeError(f"JSON Lines cannot hold a value of type {type(value).__name__}")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _write_hf(batches: Iterator[pa.RecordBatch], schema: pa.Schema, target: Path) -> int:
    """Batches go to one Arrow file, which ``datasets`` maps (not loads) and saves in shards."""
    import tempfile

    import datasets
    import pyarrow as pa

    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as tmp:
        rows_file, staged = Path(tmp, "rows.arrow"), Path(tmp, "dataset")
        rows = 0
        with pa.OSFile(str(rows_file), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
            for batch in batches:
                writer.write_batch(batch)
                rows += batch.num_rows
        progress_was_off = datasets.are_progress_bars_disabled()
        datasets.disable_progress_bars()  # a library does not draw on the user's terminal
        try:
            dataset = datasets.Dataset.from_file(str(rows_file))
            dataset.save_to_disk(str(staged))
            del dataset  # release the memory map before the folder is removed
        finally:
            if not progress_was_off:
                datasets.enable_progress_bars()
        replaced = Path(tmp, "replaced")  # removed with tmp once the new one is in place
        if target.is_dir():
            target.rename(replaced)
        elif target.exists():
            target.unlink()
        try:
            staged.rename(target)
        except OSError:
            if replaced.exists():
                replaced.rename(target)
            raise
    return rows
