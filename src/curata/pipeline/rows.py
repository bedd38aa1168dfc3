"""Row identity for caching: a content hash per row; and the per-batch helpers it needs."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

_connection: tuple[int, duckdb.DuckDBPyConnection] | None = None


def duckdb_cursor() -> duckdb.DuckDBPyConnection:
    """A new cursor on this process's in-memory DuckDB connection.

    Opening a connection costs about 15 ms, which every batch would pay several times; a
    cursor costs microseconds and keeps its registered tables to itself. The connection is
    re-opened in a forked child (DuckDB's threads do not survive a fork).
    """
    import duckdb

    global _connection  # noqa: PLW0603 - one connection per process, created on first use
    if _connection is None or _connection[0] != os.getpid():
        _connection = (os.getpid(), duckdb.connect())
    return _connection[1].cursor()


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
