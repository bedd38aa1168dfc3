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
    except duckdb.BinderException:
        # get_table_names binds the query to placeholder tables, which JOIN ... USING and
        # NATURAL JOIN cannot pass; then every identifier is a candidate (non-datasets are
        # skipped below, and DuckDB reports real errors when the query runs).
        names = _identifiers(sql)
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
