"""DuckDB connections as curata opens them for SQL that users write."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection whose session time zone is UTC.

    DuckDB otherwise takes the machine's zone, and with it ``hour(ts)``, ``ts::DATE``, the text
    of a timestamp and the zone of timestamps it returns: the same query over the same version
    would give other results, and other column types, on another machine or Ray node.
    """
    import duckdb

    con = duckdb.connect()
    con.execute("SET GLOBAL TimeZone = 'UTC'")  # also for the connection's cursors
    return con
