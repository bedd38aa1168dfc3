"""How a ruleset is evaluated: each rule becomes one kind of check, and checks of the same kind
share a scan.

* aggregate checks (RowCount, Completeness, ColumnValues, Mean, ...) become columns of **one**
  ``SELECT agg, agg, ... FROM primary``; a ``where`` clause becomes ``FILTER (WHERE ...)``;
* frequency checks (Uniqueness, IsUnique, IsPrimaryKey) share one ``GROUPING SETS`` query per
  ``where`` clause;
* query checks (CustomSql, ReferentialIntegrity, ClassImbalance) run one query each;
* scan checks (PiiCount, Language, ValidChatFormat, TermGroupRatio, TokenCount with a tokenizer)
  read the columns they need in one streamed scan per ``where`` clause and work in Python;
* static checks are decided from the schema alone (ColumnExists, ColumnCount, a rule on a column
  that does not exist).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa

from curata.quality.rules.conditions import check_number, count, fmt
from curata.quality.rules.model import Condition, Rule
from curata.quality.rules.result import ERROR, FAIL, PASS
from curata.quality.rules.sql import family, find_column, quote_ident, where_predicate

TextCounter = Callable[[list[str | None]], list[int]]
"""A callback that returns one count per text (PII spans, tokens)."""


class RuleError(Exception):
    """A rule that cannot be evaluated; its message becomes the rule's ERROR message."""


@dataclass(frozen=True)
class Verdict:
    """The outcome of one plain rule."""

    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    message: str = ""


@dataclass(frozen=True)
class StaticCheck:
    """Decided without reading data."""

    verdict: Verdict


@dataclass(frozen=True)
class AggregateCheck:
    """Aggregates (alias -> SQL) that become columns of the shared aggregate query."""

    exprs: dict[str, str]
    finish: Callable[[dict[str, Any]], Verdict]


@dataclass(frozen=True)
class FrequencyStats:
    """Counts over the groups of one column set: rows, values seen once, rows with no NULL key."""

    rows: int
    singles: int
    complete: int


@dataclass(frozen=True)
class FrequencyCheck:
    """A check on how often each value (tuple) of ``columns`` occurs."""

    columns: tuple[str, ...]
    where: str | None
    finish: Callable[[FrequencyStats], Verdict]


@dataclass(frozen=True)
class QueryCheck:
    """A check that needs a query of its own; ``limit`` caps the rows fetched."""

    sql: str
    finish: Callable[[list[tuple[Any, ...]]], Verdict]
    limit: int | None = None


class Evaluator(Protocol):
    """Python-side work on streamed batches of the columns a scan check needs."""

    def update(self, batch: pa.RecordBatch) -> None:
        """Take the next batch."""

    def finish(self) -> Verdict:
        """The verdict after the last batch."""


@dataclass(frozen=True)
class ScanCheck:
    """A Python-side check over the streamed rows of ``columns``."""

    columns: tuple[str, ...]
    where: str | None
    evaluator: Evaluator


Check = StaticCheck | AggregateCheck | FrequencyCheck | QueryCheck | ScanCheck


@dataclass
class Context:
    """What rule compilers need: the table's columns, the connection, and the caller's hooks."""

    con: Any
    schema: pa.Schema
    now: float
    resolve: Callable[[str], Any] | None = None
    pii_counter: TextCounter | None = None
    token_counter: TextCounter | None = None
    term_groups: Mapping[str, Sequence[str]] | None = None
    register: Callable[[str, Any], pa.Schema] | None = None

    def column(self, name: str) -> str:
        """The real name of a column.

        Raises:
            RuleError: there is no such column (the message lists the ones there are).
        """
        found = find_column(self.schema.names, name)
        if found is None:
            names = ", ".join(self.schema.names) or "(none)"
            raise RuleError(f"column '{name}' does not exist; the columns are: {names}.")
        return found

    def family(self, name: str) -> str:
        """The type family of an existing column."""
        return family(self.schema.field(name).type)

    def where(self, rule: Rule) -> str | None:
        """The rule's ``where`` predicate as safe SQL, or None."""
        return None if rule.where is None else where_predicate(self.con, rule.where)


def metric_key(columns: Sequence[str], metric: str) -> str:
    """A metric name as Glue writes it: ``Column.x.Mean``, ``Multicolumn.a,b.Uniqueness``."""
    if len(columns) == 1:
        return f"Column.{columns[0]}.{metric}"
    return f"Multicolumn.{','.join(columns)}.{metric}"


def filtered(where: str | None, condition: str | None = None) -> str:
    """``FILTER (WHERE ...)`` for an aggregate, or nothing."""
    parts = [p for p in (where, condition) if p]
    return f" FILTER (WHERE {' AND '.join(parts)})" if parts else ""


def metric_verdict(what: str, key: str, value: float | None, condition: Condition) -> Verdict:
    """PASS or FAIL for a metric compared with the rule's condition."""
    if value is None:
        return Verdict(ERROR, {}, f"{what} cannot be computed: there are no values to measure.")
    value = float(value)
    metrics = {key: value}
    if check_number(condition, value):
        return Verdict(PASS, metrics, f"{what} is {fmt(value)}, as expected ({condition.text}).")
    return Verdict(FAIL, metrics, f"{what} is {fmt(value)}, expected {condition.text}.")


def compliance_verdict(
    what: str,
    key: str,
    passing: int,
    rows: int,
    threshold: Condition | None,
    *,
    metrics: dict[str, float] | None = None,
) -> Verdict:
    """PASS or FAIL for a per-row rule: every row must pass, or ``threshold`` of them.

    Args:
        what: the check in words (``lang in ["en", "de"]``).
        key: the metric prefix (``Column.lang.ColumnValues``); ``.Compliance`` is appended.
        passing: rows that satisfy the condition.
        rows: rows checked.
        threshold: the rule's ``with threshold`` condition, if any.
        metrics: more metrics to report.
    """
    if rows == 0:
        return Verdict(ERROR, {}, f"{what}: there are no rows to check.")
    compliance = passing / rows
    all_metrics = {f"{key}.Compliance": compliance, **(metrics or {})}
    failing = rows - passing
    if threshold is None:
        if failing == 0:
            return Verdict(PASS, all_metrics, f"All {count(rows, 'row')} satisfy {what}.")
        return Verdict(
            FAIL,
            all_metrics,
            f"{failing} of {count(rows, 'row')} fail {what} ({fmt(compliance)} pass).",
        )
    summary = f"{passing} of {count(rows, 'row')} ({fmt(compliance)}) satisfy {what}"
    if check_number(threshold, compliance):
        return Verdict(PASS, all_metrics, f"{summary}, as expected (threshold {threshold.text}).")
    return Verdict(FAIL, all_metrics, f"{summary}, expected {threshold.text}.")


def quoted(ctx: Context, name: str) -> tuple[str, str]:
    """The real column name and its quoted SQL form."""
    real = ctx.column(name)
    return real, quote_ident(real)
