"""Safe SQL text for rules: quoting, literals, column types, and checks of user SQL.

Nothing a user wrote is pasted into a query as is. Column names are quoted identifiers, values
are escaped literals, and the two places where DQDL takes SQL (a ``where`` predicate and a
``CustomSql`` statement) go through DuckDB's own parser first: a predicate is re-rendered from
its parse tree, and a statement must parse as exactly one SELECT.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pyarrow as pa

from curata.errors import InvalidInput

TABLE = '"primary"'
"""The table every rule reads; DQDL's CustomSql calls it ``primary``."""


def quote_ident(name: str) -> str:
    """A double-quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def quote_string(text: str) -> str:
    """A single-quoted SQL string literal.

    Raises:
        InvalidInput: the text contains a NUL character, which no SQL string can hold.
    """
    if "\x00" in text:
        raise InvalidInput("A value in the rules contains a NUL character.")
    return "'" + text.replace("'", "''") + "'"


def number_literal(value: float) -> str:
    """A numeric literal (integral values without a fraction)."""
    if not math.isfinite(value):
        raise InvalidInput(f"{value} is not a finite number.")
    if value == int(value) and abs(value) < 2**63:
        return str(int(value))
    return repr(value)


def family(dtype: pa.DataType) -> str:
    """The kind of an Arrow type as rules see it.

    Returns:
        One of ``string``, ``integer``, ``float``, ``decimal``, ``boolean``, ``date``,
        ``timestamp``, ``binary``, ``nested`` or ``other``.
    """
    checks = (
        ("string", (pa.types.is_string, pa.types.is_large_string, _is_string_view)),
        ("integer", (pa.types.is_integer,)),
        ("float", (pa.types.is_floating,)),
        ("decimal", (pa.types.is_decimal,)),
        ("boolean", (pa.types.is_boolean,)),
        ("date", (pa.types.is_date,)),
        ("timestamp", (pa.types.is_timestamp,)),
        ("binary", (pa.types.is_binary, pa.types.is_large_binary, pa.types.is_fixed_size_binary)),
        ("nested", (pa.types.is_nested,)),
    )
    for name, tests in checks:
        if any(test(dtype) for test in tests):
            return name
    return "other"


def _is_string_view(dtype: pa.DataType) -> bool:
    return bool(getattr(pa.types, "is_string_view", lambda _: False)(dtype))


NUMERIC = ("integer", "float", "decimal")


def epoch_expr(column_sql: str, column_family: str) -> str:
    """Seconds since 1970 (UTC) of a date, timestamp or ISO-text column, NULL where unknown.

    Comparing in epoch seconds sidesteps time zones: a naive timestamp is read as UTC, an aware
    one is converted, a date is its midnight.
    """
    if column_family == "date":
        return f"epoch(CAST({column_sql} AS TIMESTAMP))"
    if column_family == "timestamp":
        return f"epoch({column_sql})"
    return f"epoch(TRY_CAST({column_sql} AS TIMESTAMP))"


def find_column(names: list[str], wanted: str) -> str | None:
    """The column called ``wanted`` (exact match first, then ignoring case), or None."""
    if wanted in names:
        return wanted
    folded = [n for n in names if n.lower() == wanted.lower()]
    return folded[0] if len(folded) == 1 else None


def _serialize(con: Any, sql: str) -> dict[str, Any]:
    tree: dict[str, Any] = json.loads(
        con.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()[0][0]
    )
    return tree


def _classes(tree: object) -> set[str]:
    found: set[str] = set()
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("class"), str):
                found.add(item["class"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def where_predicate(con: Any, predicate: str) -> str:
    """A ``where`` clause as DuckDB renders it from its parse tree.

    Args:
        con: a DuckDB connection (used for its parser only).
        predicate: the SQL predicate as written in the rule.

    Raises:
        InvalidInput: it is not one predicate over the row's columns (it does not parse, reads
            other rows through a subquery, or tries to end the statement).
    """
    tree = _serialize(con, f"SELECT 1 FROM {TABLE} WHERE {predicate}")
    statements = tree.get("statements") or []
    if tree.get("error") or len(statements) != 1:
        detail = tree.get("error_message", "it is not one SQL predicate")
        raise InvalidInput(f'The where clause "{predicate}" does not parse: {detail}')
    node = statements[0]["node"]
    simple = (
        node.get("type") == "SELECT_NODE"
        and node.get("where_clause")
        and not node.get("modifiers")
        and not node.get("group_expressions")
        and not node.get("having")
        and not (node.get("cte_map") or {}).get("map")
        and len(node.get("select_list", [])) == 1
    )
    if not simple or "SUBQUERY" in _classes(node["where_clause"]):
        raise InvalidInput(
            f'The where clause "{predicate}" must be one predicate over the row\'s columns '
            "(no subqueries, no GROUP BY, ORDER BY or LIMIT)."
        )
    node["select_list"] = [node["where_clause"]]
    node["where_clause"] = None
    rendered: str = con.execute("SELECT json_deserialize_sql(?)", [json.dumps(tree)]).fetchall()[0][
        0
    ]
    prefix, suffix = "SELECT ", f" FROM {TABLE}"
    if not (rendered.startswith(prefix) and rendered.endswith(suffix)):  # pragma: no cover
        raise InvalidInput(f'The where clause "{predicate}" cannot be used.')
    return "(" + rendered[len(prefix) : -len(suffix)] + ")"


_PRIMARY = re.compile(
    r"""('(?:[^']|'')*')|("(?:[^"]|"")*")|(--[^\n]*)|(/\*.*?\*/)|\b(primary)\b(?!\s+key\b)""",
    re.IGNORECASE | re.DOTALL,
)


def custom_statement(con: Any, statement: str) -> str:
    """A CustomSql statement ready to run: ``primary`` quoted, checked to be one SELECT.

    DQDL names the checked table ``primary``, a reserved word in DuckDB, so the bare word is
    quoted (outside strings, quoted names and comments).

    Raises:
        InvalidInput: the statement does not parse, or is not exactly one SELECT.
    """

    def quote(match: re.Match[str]) -> str:
        return TABLE if match.group(5) else match.group(0)

    rewritten = _PRIMARY.sub(quote, statement)
    tree = _serialize(con, rewritten)
    if tree.get("error"):
        detail = str(tree.get("error_message"))
        if "Only SELECT" in detail:
            detail = "only a SELECT statement can be checked"
        raise InvalidInput(f"The CustomSql statement does not parse: {detail}")
    if len(tree.get("statements") or []) != 1:
        raise InvalidInput("A CustomSql rule takes exactly one SELECT statement.")
    return rewritten
