"""A Snapshot is one published version of a dataset, read-only."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Any

from curata.duck import connect as duck_connect
from curata.lake.storage import lance_errors

if TYPE_CHECKING:
    import duckdb
    import lance
    import pandas
    import polars
    import pyarrow as pa

    from curata.lake.models import Commit


class Snapshot:
    """One version of a dataset, as resolved from a reference such as ``tickets@prod``.

    >>> snap = lake.dataset("tickets").at("prod")  # doctest: +SKIP
    >>> snap.to_pandas().head()  # doctest: +SKIP
    """

    def __init__(self, commit: Commit, lance_ds: lance.LanceDataset, key: str | None) -> None:
        self.commit = commit
        self._ds = lance_ds
        self.key = key

    @property
    def dataset(self) -> str:
        """Name of the dataset."""
        return self.commit.dataset

    @property
    def version(self) -> int:
        """The curata version number."""
        return self.commit.version

    @property
    def ref(self) -> str:
        """``name@version``: a reference that always means exactly this snapshot."""
        return self.commit.ref

    @cached_property
    def schema(self) -> pa.Schema:
        """Arrow schema of the rows."""
        # Kept: Lance builds it anew on every call (about 1 ms, a tenth of a vector search).
        return self._ds.schema

    def __repr__(self) -> str:
        return f"<Snapshot {self.ref} rows={self.commit.rows}>"

    def count_rows(self, filter: str | None = None) -> int:
        """Number of rows, or rows matching a SQL predicate."""
        with lance_errors(f"Counting rows of {self.ref}"):
            return int(self._ds.count_rows(filter=filter))

    def to_arrow(
        self, columns: list[str] | None = None, filter: str | None = None, limit: int | None = None
    ) -> pa.Table:
        """Rows as a pyarrow Table, optionally only some columns, rows matching a SQL filter,
        or the first ``limit`` rows."""
        with lance_errors(f"Reading {self.ref}"):
            return self._ds.to_table(columns=columns, filter=filter, limit=limit)

    def to_batches(
        self, columns: list[str] | None = None, filter: str | None = None, batch_size: int = 65536
    ) -> Iterator[pa.RecordBatch]:
        """Stream the rows as record batches (bounded memory)."""
        with lance_errors(f"Reading {self.ref}"):
            yield from self._ds.to_batches(columns=columns, filter=filter, batch_size=batch_size)

    def to_pandas(
        self, columns: list[str] | None = None, filter: str | None = None
    ) -> pandas.DataFrame:
        """Rows as a pandas DataFrame (needs ``curata[pandas]``)."""
        _require("pandas", "pandas", "to_pandas()")
        frame: pandas.DataFrame = self.to_arrow(columns, filter).to_pandas()
        return frame

    def to_polars(
        self, columns: list[str] | None = None, filter: str | None = None
    ) -> polars.DataFrame:
        """Rows as a polars DataFrame (needs ``curata[polars]``)."""
        _require("polars", "polars", "to_polars()")
        import polars as pl

        frame = pl.from_arrow(self.to_arrow(columns, filter))
        assert isinstance(frame, pl.DataFrame)
        return frame

    def to_duckdb(
        self, connection: duckdb.DuckDBPyConnection | None = None
    ) -> duckdb.DuckDBPyRelation:
        """A lazy DuckDB relation over the snapshot (filters and projections are pushed down)."""
        con = connection or duck_connect()
        return con.from_arrow(self._ds)

    def nearest(
        self,
        column: str,
        vector: Any,
        k: int = 10,
        *,
        filter: str | None = None,
        columns: list[str] | None = None,
    ) -> pa.Table:
        """The ``k`` rows whose vector ``column`` is nearest to ``vector`` (cosine), nearest
        first, with their distance in ``_distance``; ``filter`` (SQL) is applied first."""
        from curata.lake.search import vector_search

        return vector_search(
            self._ds, column, vector, k, filter=filter, columns=columns, schema=self.schema
        )

    def search_text(
        self,
        column: str,
        query: str,
        k: int = 10,
        *,
        filter: str | None = None,
        columns: list[str] | None = None,
    ) -> pa.Table:
        """The ``k`` rows whose text ``column`` best matches ``query`` (BM25, needs a full-text
        index), best first, with their score in ``_score``."""
        from curata.lake.search import text_search

        return text_search(self._ds, column, query, k, filter=filter, columns=columns)

    def lance_dataset(self) -> lance.LanceDataset:
        """The underlying Lance dataset at this version (for curata's own layers)."""
        return self._ds

    def to_dict(self) -> dict[str, Any]:
        """The commit behind the snapshot, JSON-ready."""
        return self.commit.to_dict()


def _require(module: str, extra: str, feature: str) -> None:
    import importlib.util

    from curata.errors import MissingDependency

    if importlib.util.find_spec(module) is None:
        raise MissingDependency(module, extra, feature)
