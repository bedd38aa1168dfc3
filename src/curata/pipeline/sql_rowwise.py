"""Deciding whether a SQL step is row-wise, and making it carry row provenance.

A ``SELECT`` over ``batch`` with only projections, filters and ``unnest`` computes each output
row from one input row. For such a query, ``_row`` is appended to the select list (through
DuckDB's own parser, never by editing text), so the executor knows which input row each output
row came from and can cache per row. Anything else (aggregates, ORDER BY, LIMIT, DISTINCT,
window functions, joins, CTEs) is not row-wise.
"""

from __future__ import annotations

import json
from functools import lru_cache

from curata.errors import InvalidInput
from curata.pipeline.step import ROW_COLUMN

_ONE_SELECT = "A sql step takes exactly one SELECT statement (over the table `batch`)."


@lru_cache(maxsize=256)
def compile_row_wise(query: str) -> str | None:
    """The query with ``_row`` added to its output if it is row-wise, else None.

    Raises:
        InvalidInput: the text is not a single SELECT statement.
    """
    import duckdb

    con = duckdb.connect()
    try:
        serialized = json.loads(
            con.execute("SELECT json_serialize_sql(?)", [query]).fetchall()[0][0]
        )
    except duckdb.Error as err:
        raise InvalidInput(f"The SQL step query does not parse: {err}") from err
    if serialized.get("error"):
        message = str(serialized.get("error_message"))
        if "Only SELECT statements" in message:  # it parses, as something else
            raise InvalidInput(_ONE_SELECT)
        raise InvalidInput(f"The SQL step query does not parse: {message}")
    statements = serialized["statements"]
    if len(statements) != 1 or statements[0]["node"].get("type") != "SELECT_NODE":
        raise InvalidInput(_ONE_SELECT)
    node = statements[0]["node"]
    source = node.get("from_table") or {}
    simple = (
        source.get("type") == "BASE_TABLE"
        and source.get("table_name") == "batch"
        and not node.get("modifiers")
        and not node.get("group_expressions")
        and not node.get("having")
        and not node.get("qualify")
        and not node.get("sample")
        and not (node.get("cte_map") or {}).get("map")
    )
    if not simple:
        return None
    if _has_non_row_wise_function(con, node):
        return None
    if not any(_star_keeps_row(e) for e in node["select_list"]):
        node["select_list"].append(
            {"class": "COLUMN_REF", "type": "COLUMN_REF", "alias": "", "column_names": [ROW_COLUMN]}
        )
    rewritten: str = con.execute(
        "SELECT json_deserialize_sql(?)", [json.dumps(serialized)]
    ).fetchall()[0][0]
    return rewritten


def _star_keeps_row(expr: dict[str, object]) -> bool:
    """Whether a select-list entry is a ``*`` (or ``COLUMNS(*)``) that yields ``_row``: one
    that neither excludes nor renames it. ``COLUMNS('regex')`` may or may not match it, so it
    does not count (the step drops a second ``_row``)."""
    if expr.get("class") != "STAR" or expr.get("expr") is not None:
        return False
    named = [n[-1] if isinstance(n, list) else n for n in _star_excludes(expr)]
    for listed, field in (("qualified_exclude_list", None), ("rename_list", "key")):
        items = expr.get(listed)
        for item in items if isinstance(items, list) else []:
            ref = item.get(field) if field else item
            named.append(ref.get("column") if isinstance(ref, dict) else None)
    return ROW_COLUMN not in {str(n).lower() for n in named}


def _has_non_row_wise_function(con: object, node: object) -> bool:
    """Whether the parse tree calls an aggregate or window function (or has a subquery, which
    may read other rows)."""
    import duckdb

    assert isinstance(con, duckdb.DuckDBPyConnection)
    classes, functions = _walk(node)
    if classes & {"WINDOW", "SUBQUERY"}:
        return True
    if not functions:
        return False
    placeholders = ",".join("?" for _ in functions)
    rows = con.execute(
        "SELECT 1 FROM duckdb_functions() "
        f"WHERE function_type = 'aggregate' AND function_name IN ({placeholders}) LIMIT 1",
        sorted(functions),
    ).fetchall()
    return bool(rows)


def _walk(tree: object) -> tuple[set[str], set[str]]:
    """Expression classes and function names anywhere in a serialized parse tree."""
    classes: set[str] = set()
    functions: set[str] = set()
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("class"), str):
                classes.add(item["class"])
            if item.get("class") == "FUNCTION" and isinstance(item.get("function_name"), str):
                functions.add(item["function_name"].lower())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return classes, functions


@lru_cache(maxsize=256)
def _select_list(query: str) -> str | None:
    import duckdb

    con = duckdb.connect()
    tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [query]).fetchall()[0][0])
    if tree.get("error") or len(tree.get("statements", [])) != 1:
        return None
    node = tree["statements"][0]["node"]
    if node.get("type") != "SELECT_NODE":
        return None
    return json.dumps(node["select_list"])


def sql_column_lineage(query: str, input_columns: list[str]) -> dict[str, list[str]] | None:
    """Output column -> the input columns its expression reads, from DuckDB's parse tree; None
    when an output has no name that can be known without running the query."""
    select_list = _select_list(query)
    if select_list is None:
        return None
    mapping: dict[str, list[str]] = {}
    for expr in json.loads(select_list):
        if expr.get("class") == "STAR":
            excluded = {
                name[-1] if isinstance(name, list) else str(name) for name in _star_excludes(expr)
            }
            mapping |= {c: [c] for c in input_columns if c not in excluded}
            continue
        name = expr.get("alias") or (
            expr["column_names"][-1] if expr.get("class") == "COLUMN_REF" else None
        )
        if not name:
            return None
        mapping[name] = sorted(_column_refs(expr) & set(input_columns))
    return mapping


def _star_excludes(expr: dict[str, object]) -> list[object]:
    excluded = expr.get("exclude_list") or []
    out: list[object] = []
    for item in excluded if isinstance(excluded, list) else []:
        if isinstance(item, dict):
            out.append(item.get("column_names") or item.get("name") or item.get("exclude_name"))
        else:
            out.append(item)
    return [o for o in out if o is not None]


def _column_refs(tree: object) -> set[str]:
    found: set[str] = set()
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("class") == "COLUMN_REF" and item.get("column_names"):
                found.add(str(item["column_names"][-1]))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found
