"""Built-in steps: ``sql``, ``python``, ``rename``, ``select``, ``cast``."""

from __future__ import annotations

import hashlib
import importlib
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from curata.duck import connect as duck_connect
from curata.duck import error_text
from curata.errors import InvalidInput
from curata.pipeline.sql_rowwise import compile_row_wise, sql_column_lineage
from curata.pipeline.step import ROW_COLUMN, Step, register_step

if TYPE_CHECKING:
    import pyarrow as pa


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SqlParams(_Strict):
    """Parameters of the ``SqlStep`` step."""

    query: str = Field(description="DuckDB SELECT over the table `batch`.")


@register_step
class SqlStep(Step[SqlParams]):
    """A DuckDB ``SELECT`` over the batch, which is the table ``batch``:
    ``SELECT id, lower(text) AS text FROM batch WHERE lang = 'en'``.

    Projections, filters and ``unnest`` are row-wise and cached per row. A query that
    aggregates, sorts, limits, deduplicates or uses window functions sees the whole input at
    once and is recomputed on every run.
    """

    name = "sql"
    # 2: queries run in UTC (before, in the machine's time zone), so results cached by
    # version 1 may differ.
    version = "2"
    Params = SqlParams

    def __init__(self, params: Any = None, *, id: str | None = None) -> None:
        super().__init__(params, id=id)
        self._row_wise_query = compile_row_wise(self.params.query)

    @property
    def is_row_wise(self) -> bool:
        return self._row_wise_query is not None

    def prepare(self) -> None:
        self._con = duck_connect()

    def column_lineage(self, input_columns: list[str]) -> dict[str, list[str]] | None:
        return sql_column_lineage(self.params.query, input_columns)

    def process(self, batch: pa.RecordBatch) -> pa.RecordBatch | pa.Table:
        import duckdb

        if not hasattr(self, "_con"):
            self.prepare()
        con = self._con
        query = self.params.query
        if ROW_COLUMN in batch.schema.names and self._row_wise_query is not None:
            query = self._row_wise_query
        con.register("batch", batch)
        try:
            result = con.sql(query).to_arrow_table()
        except duckdb.DataError as err:  # a value that does not convert: `on_error` applies
            raise ValueError(str(err)) from err
        except duckdb.Error as err:
            raise InvalidInput(f"Step {self.id!r}: the query failed: {error_text(err)}") from err
        finally:
            con.unregister("batch")
        while result.column_names.count(ROW_COLUMN) > 1:  # COLUMNS('regex') matched it too
            result = result.remove_column(result.column_names.index(ROW_COLUMN))
        return result


def import_function(path: str) -> Callable[..., Any]:
    """Import ``package.module:function`` (or ``package.module.function``).

    Raises:
        InvalidInput: the module or attribute does not exist or is not callable.
    """
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise InvalidInput(f"{path!r} is not a function path; use package.module:function.")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise InvalidInput(f"Cannot import module {module_name!r} for {path!r}: {err}") from err
    fn = module
    for part in attr.split("."):
        if not hasattr(fn, part):
            raise InvalidInput(f"Module {module_name!r} has no attribute {attr!r} (from {path!r}).")
        fn = getattr(fn, part)
    if not callable(fn):
        raise InvalidInput(f"{path!r} is not callable.")
    return fn


class PythonParams(_Strict):
    """Parameters of the ``PythonStep`` step."""

    function: str = Field(description="package.module:function taking and returning a batch")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments")
    row_wise: bool = Field(True, description="each output row depends on one input row")
    version: str = Field("1", description="bump to invalidate cached results")

    @field_validator("function")
    @classmethod
    def _importable(cls, value: str) -> str:
        try:
            import_function(value)
        except InvalidInput as err:  # a ValueError lets pydantic name the field
            raise ValueError(err.message) from err
        return value


@register_step
class PythonStep(Step[PythonParams]):
    """Call a Python function ``batch -> batch`` (pyarrow RecordBatch or Table in and out).

    The function's source is part of the fingerprint, so editing it invalidates its cached
    results; bump ``version`` when behaviour changes for another reason (a new model file).
    """

    name = "python"
    parallel = True
    Params = PythonParams

    @property
    def is_row_wise(self) -> bool:
        return bool(self.params.row_wise)

    def code_version(self) -> str:
        fn = import_function(self.params.function)
        try:
            source = inspect.getsource(fn)
        except (OSError, TypeError):
            source = ""
        digest = hashlib.sha256(source.encode()).hexdigest()[:16]
        return f"{self.version}:{self.params.version}:{digest}"

    def prepare(self) -> None:
        self._fn = import_function(self.params.function)

    def process(self, batch: pa.RecordBatch) -> pa.RecordBatch | pa.Table:
        import pyarrow as pa

        if not hasattr(self, "_fn"):
            self.prepare()
        out = self._fn(batch, **self.params.kwargs)
        if isinstance(out, pa.RecordBatch | pa.Table):
            return out
        raise InvalidInput(
            f"Step {self.id!r}: {self.params.function} returned {type(out).__name__}, "
            "not a pyarrow RecordBatch or Table."
        )


def _missing(batch: pa.RecordBatch, columns: list[str], step: str) -> None:
    gone = [c for c in columns if c not in batch.schema.names]
    if gone:
        raise InvalidInput(
            f"Step {step!r}: no column(s) {', '.join(gone)} in the input.",
            hint=f"Columns: {', '.join(n for n in batch.schema.names if n != ROW_COLUMN)}.",
        )


class RenameParams(_Strict):
    """Parameters of the ``RenameStep`` step."""

    columns: dict[str, str] = Field(description="old name -> new name")


@register_step
class RenameStep(Step[RenameParams]):
    """Rename columns: ``{old: new}``."""

    name = "rename"
    Params = RenameParams

    def process(self, batch: pa.RecordBatch) -> pa.RecordBatch | pa.Table:
        _missing(batch, list(self.params.columns), self.id)
        names = [self.params.columns.get(n, n) for n in batch.schema.names]
        return batch.rename_columns(names)

    def column_lineage(self, input_columns: list[str]) -> dict[str, list[str]]:
        return {self.params.columns.get(c, c): [c] for c in input_columns}


class SelectParams(_Strict):
    """Parameters of the ``SelectStep`` step."""

    columns: list[str] = Field(min_length=1, description="columns to keep")


@register_step
class SelectStep(Step[SelectParams]):
    """Keep only these columns, in this order."""

    name = "select"
    Params = SelectParams

    def process(self, batch: pa.RecordBatch) -> pa.RecordBatch | pa.Table:
        _missing(batch, self.params.columns, self.id)
        keep = list(self.params.columns)
        if ROW_COLUMN in batch.schema.names and ROW_COLUMN not in keep:
            keep.append(ROW_COLUMN)
        return batch.select(keep)

    def column_lineage(self, input_columns: list[str]) -> dict[str, list[str]]:
        return {c: [c] for c in self.params.columns}


class CastParams(_Strict):
    """Parameters of the ``CastStep`` step."""

    columns: dict[str, str] = Field(description="column -> Arrow type name")
    safe: bool = Field(True, description="fail on lossy casts instead of truncating")

    @field_validator("columns")
    @classmethod
    def _known_types(cls, value: dict[str, str]) -> dict[str, str]:
        for type_name in value.values():
            try:
                parse_arrow_type(type_name)
            except InvalidInput as err:  # a ValueError lets pydantic name the field
                raise ValueError(f"{err.message} {err.hint}") from err
        return value


@register_step
class CastStep(Step[CastParams]):
    """Change column types: ``{column: type}`` with Arrow type names (``int64``, ``string``,
    ``float32``, ``timestamp[ms]``, ``date32``, ``bool``...)."""

    name = "cast"
    Params = CastParams

    def process(self, batch: pa.RecordBatch) -> pa.RecordBatch | pa.Table:
        import pyarrow as pa

        _missing(batch, list(self.params.columns), self.id)
        fields = [
            pa.field(f.name, parse_arrow_type(self.params.columns[f.name]))
            if f.name in self.params.columns
            else f
            for f in batch.schema
        ]
        try:
            return batch.cast(pa.schema(fields), safe=self.params.safe)
        except pa.ArrowNotImplementedError as err:
            raise InvalidInput(f"Step {self.id!r}: {err}") from err
        except pa.ArrowInvalid as err:  # a value that does not convert: `on_error` applies
            raise ValueError(str(err)) from err

    def column_lineage(self, input_columns: list[str]) -> dict[str, list[str]]:
        return {c: [c] for c in input_columns}


def parse_arrow_type(name: str) -> pa.DataType:
    """An Arrow type from its name: ``int64``, ``string``, ``timestamp[ms]``, ``list<string>``...

    Raises:
        InvalidInput: unknown type name.
    """
    import pyarrow as pa

    try:
        return pa.type_for_alias(name.strip())
    except (ValueError, KeyError):
        pass
    text = name.strip()
    if text.startswith("timestamp[") and text.endswith("]"):
        unit, _, tz = text[len("timestamp[") : -1].partition(",")
        return pa.timestamp(unit.strip(), tz=tz.strip().removeprefix("tz=") or None)
    if text.startswith("list<") and text.endswith(">"):
        return pa.list_(parse_arrow_type(text[5:-1]))
    if text.startswith("decimal(") and text.endswith(")"):
        precision, _, scale = text[8:-1].partition(",")
        return pa.decimal128(int(precision), int(scale or 0))
    raise InvalidInput(
        f"Unknown Arrow type {name!r}.",
        hint="E.g. int64, float64, string, bool, date32, timestamp[ms], list<string>, "
        "decimal(10,2).",
    )
