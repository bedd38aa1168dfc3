"""Conditions: checking a metric in Python, and rendering a per-row condition as SQL.

Null rows fail every per-row condition except the negated ones (``!=``, ``not in``,
``not between``, ``not matches``), which are the exact complement of their positive form, so a
NULL passes them unless NULL is listed: ``ColumnValues "age" != 21`` passes NULL rows,
``ColumnValues "age" not in [21, NULL]`` fails them (as Glue documents for ``!=`` and ``not in``).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from curata.errors import InvalidInput
from curata.quality.rules.model import Condition, Value, ValueKind
from curata.quality.rules.sql import NUMERIC, epoch_expr, number_literal, quote_string

_REL_TOL = 1e-9


def fmt(value: float) -> str:
    """A metric as a person reads it: ``0.98``, ``42``, ``1.2e-05``."""
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    if abs(value) < 1e-4:
        return f"{value:.2g}"
    return f"{value:.4f}".rstrip("0").rstrip(".")


def count(n: int, noun: str) -> str:
    """``1 row``, ``3 rows``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _equal(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_REL_TOL, abs_tol=1e-12)


def check_number(condition: Condition, value: float) -> bool:
    """Whether a metric satisfies a numeric (or duration) condition.

    Equality allows for floating-point rounding (``Completeness "x" = 0.3`` holds for 3/10).
    """
    numbers = [v.number for v in condition.values]
    op = condition.op
    if op == "=":
        result = _equal(value, numbers[0])
    elif op == "in":
        result = any(_equal(value, n) for n in numbers)
    elif op == "between":
        result = numbers[0] <= value <= numbers[1] or any(_equal(value, n) for n in numbers)
    elif op == ">":
        result = value > numbers[0] and not _equal(value, numbers[0])
    elif op == ">=":
        result = value >= numbers[0] or _equal(value, numbers[0])
    elif op == "<":
        result = value < numbers[0] and not _equal(value, numbers[0])
    elif op == "<=":
        result = value <= numbers[0] or _equal(value, numbers[0])
    else:
        raise InvalidInput(f"'{op}' does not compare numbers.")
    return result != condition.negated


def check_string(condition: Condition, value: str) -> bool:
    """Whether a name satisfies ``= "x"`` / ``in ["x", "y"]`` (or their negations)."""
    return (value in {v.text for v in condition.values}) != condition.negated


def numeric_sql(condition: Condition, expr: str) -> str:
    """A per-row SQL condition on a never-NULL numeric expression (a length, a count, an age)."""
    numbers = [number_literal(v.number) for v in condition.values]
    positive = _positive(condition.op, expr, numbers)
    return f"NOT {positive}" if condition.negated else positive


def _positive(op: str, expr: str, literals: list[str]) -> str:
    if op == "between":
        return f"coalesce({expr} BETWEEN {literals[0]} AND {literals[1]}, false)"
    if op == "in":
        return f"coalesce({expr} IN ({', '.join(literals)}), false)"
    if op == "matches":
        return f"coalesce(regexp_full_match(CAST({expr} AS VARCHAR), {literals[0]}), false)"
    return f"coalesce({expr} {op} {literals[0]}, false)"


def value_sql(condition: Condition, column: str, family: str, now: float) -> str:
    """``ColumnValues``' per-row condition for a column of the given type family.

    Values are rendered for the column's type: dates and ``now()`` as epoch seconds against a
    date/timestamp column, numbers against numbers, text against text.

    Args:
        condition: the rule's condition.
        column: the quoted column (or an expression).
        family: the column's type family (see :func:`curata.quality.rules.sql.family`).
        now: the evaluation time in epoch seconds, for ``now()``.

    Raises:
        InvalidInput: a value that cannot be compared with this column (text with a numeric
            column, a number with a date column, ...).
    """
    keywords = [v for v in condition.values if v.kind is ValueKind.KEYWORD]
    plain = [v for v in condition.values if v.kind is not ValueKind.KEYWORD]
    temporal = family in ("date", "timestamp") or (
        family == "string" and any(v.kind is ValueKind.NOW for v in plain)
    )
    expr = epoch_expr(column, family) if temporal and condition.op != "matches" else column
    parts = []
    if plain:
        literals = [_literal(v, family, temporal, condition.op, now) for v in plain]
        parts.append(_positive(condition.op, expr, literals))
    parts.extend(_keyword_sql(k.text, column, family) for k in keywords)
    positive = parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"
    return f"NOT {positive}" if condition.negated else positive


def _keyword_sql(keyword: str, column: str, family: str) -> str:
    if keyword == "NULL":
        return f"({column} IS NULL)"
    if family != "string":
        return "false"
    if keyword == "EMPTY":
        return f"coalesce({column} = '', false)"
    return rf"coalesce(regexp_full_match({column}, '\s+'), false)"  # WHITESPACES_ONLY


def _literal(value: Value, family: str, temporal: bool, op: str, now: float) -> str:
    if op == "matches":
        return quote_string(value.text)
    if temporal:
        return number_literal(_epoch(value, now))
    if value.kind is ValueKind.NOW:
        raise InvalidInput(f"{value.text} compares with dates, but the column is {family}.")
    if family in NUMERIC:
        if value.kind is ValueKind.NUMBER:
            return number_literal(value.number)
        try:
            return number_literal(float(value.text))
        except ValueError:
            raise InvalidInput(
                f'"{value.text}" is not a number, but the column is numeric ({family}).'
            ) from None
    if family == "boolean":
        truth = {"true": "true", "false": "false", "1": "true", "0": "false"}
        text = value.text.lower()
        if text not in truth:
            raise InvalidInput(f"{value.text} is not true or false (the column is boolean).")
        return truth[text]
    if family == "string":
        return quote_string(value.text)
    raise InvalidInput(f"ColumnValues cannot compare a {family} column with {value.text}.")


def _epoch(value: Value, now: float) -> float:
    if value.kind is ValueKind.NOW:
        return now + value.number
    if value.kind is ValueKind.STRING:
        try:
            parsed = datetime.fromisoformat(value.text)
        except ValueError:
            raise InvalidInput(
                f'"{value.text}" is not a date; write "2024-01-31" or (now() - 3 days).'
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    raise InvalidInput(f'{value.text} is not a date; write "2024-01-31" or (now() - 3 days).')
