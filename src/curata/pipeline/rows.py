"""Row identity for caching: a content hash per row."""

from __future__ import annotations

from typing import TYPE_CHECKING

from curata.lake.query import duckdb_cursor

if TYPE_CHECKING:
    import pyarrow as pa


def row_hashes(table: pa.Table) -> pa.ChunkedArray:
    """MD5 of each row's JSON form (column names and values): equal rows, equal hashes."""
    con = duckdb_cursor()
    con.register("t", table)
    return con.sql("SELECT md5(to_json(t)) AS h FROM t").to_arrow_table().column(0)


def positions(n: int) -> pa.Array:
    """0, 1, ..., n-1 as int64."""
    import numpy as np
    import pyarrow as pa

    return pa.array(np.arange(n, dtype=np.int64))
