"""SQL over dataset references through DuckDB."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from curata.duck import connect as duck_connect
from curata.duck import error_text
from curata.errors import InvalidInput, NotFound
from curata.lake.refs import parse_ref

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from curata.lake.lake import Lake


_connection: tuple[int, duckdb.DuckDBPyConnection] | None = None


def duckdb_cursor() -> duckdb.DuckDBPyConnection:
    """A new cursor on this process's in-memory DuckDB connection.

    Opening a connection costs about 15 ms, which every batch would pay several times; a
    cursor costs microseconds and keeps its registered tables to itself. The connection is
    re-opened in a forked child (DuckDB's threads do not survive a fork).
    """
    global _connection  # noqa: PLW0603 - one connection per process, created on first use
    if _connection is None or _connection[0] != os.getpid():
        _connection = (os.getpid(), duck_connect())
    return _connection[1].cursor()


def run_query(lake: Lake, sql: str) -> pa.Table:
    """Run ``sql`` in DuckDB with every table name that is a dataset reference bound to that
    snapshot (``"tickets@orig"``, ``tickets``). Other names (CTEs, files DuckDB reads itself)
    are left to DuckDB."""
    import duckdb

    try:
        names = duckdb.get_table_names(sql)
    except duckdb.BinderException:
        # get_table_names binds the query to placeholder tables, which JOIN ... USING and
        # NATURAL JOIN cannot pass; then every identifier is a candidate (non-datasets are
        # skipped below, and DuckDB reports real errors when the query runs).
        names = _identifiers(sql)
    except duckdb.Error as err:
        raise InvalidInput(f"The SQL does not parse: {error_text(err)}") from err
    con = duck_connect()
    for name in sorted(names):
        try:
            ref = parse_ref(name)
        except InvalidInput:
            continue
        if not lake.has_dataset(ref.name):
            if "@" in name:
                lake.dataset(ref.name)  # raises NotFound naming the nearest datasets
            continue
        con.register(name, lake.snapshot(ref).lance_dataset())
    try:
        return con.sql(sql).to_arrow_table()
    except duckdb.CatalogException as err:
        raise NotFound(f"{err}", hint="Tables are dataset references; see `curata ls`.") from err
    except duckdb.Error as err:
        raise InvalidInput(f"The query failed: {error_text(err)}") from err


def _identifiers(sql: str) -> set[str]:
    """Every identifier token of ``sql``, unquoted."""
    import duckdb

    tokens = duckdb.tokenize(sql)
    ends = [start for start, _ in tokens[1:]] + [len(sql)]
    names = set()
    for (start, kind), end in zip(tokens, ends, strict=True):
        if kind == duckdb.token_type.identifier:
            text = sql[start:end].strip()
            if len(text) > 1 and text[0] == text[-1] == '"':
                text = text[1:-1].replace('""', '"')
            names.add(text)
    return names
