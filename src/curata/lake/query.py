"""SQL over dataset references through DuckDB."""

from __future__ import annotations

from typing import TYPE_CHECKING

from curata.errors import InvalidInput, NotFound
from curata.lake.refs import parse_ref

if TYPE_CHECKING:
    import pyarrow as pa

    from curata.lake.lake import Lake


def run_query(lake: Lake, sql: str) -> pa.Table:
    """Run ``sql`` in DuckDB with every table name that is a dataset reference bound to that
    snapshot (``"tickets@orig"``, ``tickets``). Other names (CTEs, files DuckDB reads itself)
    are left to DuckDB."""
    import duckdb

    try:
        names = duckdb.get_table_names(sql)
    except duckdb.Error as err:
        raise InvalidInput(f"The SQL does not parse: {err}") from err
    con = duckdb.connect()
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
        raise InvalidInput(f"The query failed: {err}") from err
