"""Evaluating a ruleset against a table with DuckDB."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from curata.duck import connect as duck_connect
from curata.errors import CurataError, InvalidInput
from curata.quality.rules import aggregates, queries, text_rules
from curata.quality.rules.model import Composite, Rule, RuleSet
from curata.quality.rules.parser import parse_rules
from curata.quality.rules.plan import (
    AggregateCheck,
    Check,
    Context,
    FrequencyCheck,
    FrequencyStats,
    QueryCheck,
    RuleError,
    ScanCheck,
    StaticCheck,
    TextCounter,
    Verdict,
)
from curata.quality.rules.result import ERROR, FAIL, PASS, RuleOutcome, RulesResult
from curata.quality.rules.sql import TABLE, quote_ident

Builder = Callable[[Rule, Context], Check]

BUILDERS: dict[str, Builder] = {
    "RowCount": aggregates.row_count,
    "ColumnCount": aggregates.column_count,
    "Completeness": aggregates.completeness,
    "IsComplete": aggregates.completeness,
    "Uniqueness": queries.uniqueness,
    "IsUnique": queries.uniqueness,
    "IsPrimaryKey": queries.uniqueness,
    "ColumnValues": aggregates.column_values,
    "ColumnLength": aggregates.column_length,
    "DistinctValuesCount": aggregates.statistic,
    "Mean": aggregates.statistic,
    "Sum": aggregates.statistic,
    "StandardDeviation": aggregates.statistic,
    "ColumnExists": aggregates.column_exists,
    "ColumnDataType": aggregates.column_data_type,
    "CustomSql": queries.custom_sql,
    "ReferentialIntegrity": queries.referential_integrity,
    "DataFreshness": aggregates.data_freshness,
    "PiiCount": text_rules.pii_count,
    "DuplicateRatio": aggregates.duplicate_ratio,
    "TokenCount": text_rules.token_count,
    "Language": text_rules.language,
    "ValidChatFormat": text_rules.valid_chat_format,
    "TermGroupRatio": text_rules.term_group_ratio,
    "ClassImbalance": queries.class_imbalance,
}

_BATCH_ROWS = 65_536


def evaluate_rules(
    ruleset: RuleSet | str,
    table: Any,
    *,
    resolve: Callable[[str], Any] | None = None,
    pii_counter: TextCounter | None = None,
    token_counter: TextCounter | None = None,
    term_groups: Mapping[str, Sequence[str]] | None = None,
    now: datetime | None = None,
    on_sql: Callable[[str], None] | None = None,
) -> RulesResult:
    """Evaluate every rule against a table.

    Aggregate rules share one scan (one ``SELECT`` with an aggregate per rule); see
    :mod:`curata.quality.rules.plan` for how the other kinds are grouped. A rule that cannot be
    evaluated (a missing column, SQL that fails) ends as ``ERROR`` with a message; the others
    are still evaluated.

    Args:
        ruleset: parsed rules, or DQDL text.
        table: a ``pyarrow.Table``, ``pyarrow.dataset.Dataset``, ``RecordBatchReader`` or DuckDB
            relation (a reader or relation is read once into DuckDB's memory).
        resolve: maps a ReferentialIntegrity reference name (``"users"`` in ``"users.id"``) to
            its data (any of the table types above).
        pii_counter: returns the number of PII spans in each text, for ``PiiCount``.
        token_counter: returns the number of tokens in each text, for ``TokenCount`` (default:
            words and punctuation marks, counted in SQL).
        term_groups: ``{group: [term, ...]}`` for ``TermGroupRatio`` (default: female / male).
        now: the time ``now()`` and ``DataFreshness`` measure from (default: the current time;
            a naive datetime is UTC).
        on_sql: called with every SQL statement before it runs.

    Returns:
        One outcome per top-level rule, and the score.

    Raises:
        InvalidInput: the DQDL text does not parse, or ``table`` is of an unknown type.

    >>> import pyarrow as pa
    >>> evaluate_rules('Rules = [ RowCount = 2 ]', pa.table({"x": [1, 2]})).score
    1.0
    """

    rules = parse_rules(ruleset) if isinstance(ruleset, str) else ruleset
    con = duck_connect()
    try:
        # Rules run user SQL (where, CustomSql): it may read the tables it is given, no files.
        con.execute("SET enable_external_access = false")
        schema = _register(con, "primary", table)
        ctx = Context(
            con=con,
            schema=schema,
            now=_epoch(now),
            resolve=resolve,
            pii_counter=pii_counter,
            token_counter=token_counter,
            term_groups=term_groups,
            register=lambda name, data: _register(con, name, data),
        )
        checks = [_compile(rule, ctx) for rule in rules.leaves()]
        verdicts = _Runner(con, on_sql).run(checks)
    finally:
        con.close()
    leaves = iter(verdicts)
    return RulesResult(tuple(_outcome(rule, leaves) for rule in rules.rules))


def _epoch(now: datetime | None) -> float:
    if now is None:
        return time.time()
    return (now if now.tzinfo else now.replace(tzinfo=UTC)).timestamp()


def _register(con: Any, name: str, data: Any) -> pa.Schema:
    """Make ``data`` queryable as ``name``; returns its schema as DuckDB sees it."""
    import duckdb

    if isinstance(data, pa.RecordBatchReader | duckdb.DuckDBPyRelation):
        # Read once into DuckDB: a reader cannot be rewound for the next query, and a relation
        # belongs to another connection.
        reader = data
        if isinstance(data, duckdb.DuckDBPyRelation):
            stream = getattr(data, "to_arrow_reader", None) or data.fetch_arrow_reader
            reader = stream(_BATCH_ROWS)
        staging = f"{name}:staging"
        con.register(staging, reader)
        con.execute(
            f"CREATE TEMP TABLE {quote_ident(name)} AS SELECT * FROM {quote_ident(staging)}"
        )
        con.unregister(staging)
    else:
        try:
            con.register(name, data)
        except Exception as err:  # DuckDB raises several types for objects it cannot scan
            raise InvalidInput(
                f"Cannot check a {type(data).__name__}; pass a pyarrow Table, Dataset, "
                "RecordBatchReader or a DuckDB relation."
            ) from err
    schema: pa.Schema = (
        con.sql(f"SELECT * FROM {quote_ident(name)} LIMIT 0").to_arrow_table().schema
    )
    return schema


def _compile(rule: Rule, ctx: Context) -> Check:
    try:
        return BUILDERS[rule.type](rule, ctx)
    except (RuleError, CurataError) as err:
        return StaticCheck(Verdict(ERROR, {}, _sentence(str(err))))


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _duckdb_message(err: Exception) -> str:
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return f"DuckDB could not evaluate this rule: {first}"


class _Runner:
    """Runs the checks, sharing scans; every check ends with a verdict."""

    def __init__(self, con: Any, on_sql: Callable[[str], None] | None) -> None:
        self.con = con
        self.on_sql = on_sql

    def execute(self, sql: str) -> Any:
        if self.on_sql is not None:
            self.on_sql(sql)
        return self.con.execute(sql)

    def run(self, checks: list[Check]) -> list[Verdict]:
        verdicts: dict[int, Verdict] = {}
        for i, check in enumerate(checks):
            if isinstance(check, StaticCheck):
                verdicts[i] = check.verdict
        self.aggregates(
            {i: c for i, c in enumerate(checks) if isinstance(c, AggregateCheck)}, verdicts
        )
        self.frequencies(
            {i: c for i, c in enumerate(checks) if isinstance(c, FrequencyCheck)}, verdicts
        )
        for i, check in enumerate(checks):
            if isinstance(check, QueryCheck):
                verdicts[i] = self.query(check)
        self.scans({i: c for i, c in enumerate(checks) if isinstance(c, ScanCheck)}, verdicts)
        return [verdicts[i] for i in range(len(checks))]

    def aggregates(self, checks: dict[int, AggregateCheck], out: dict[int, Verdict]) -> None:
        if not checks:
            return
        try:
            values = self.select(checks)
        except Exception:  # one bad aggregate spoils the shared query: find out which
            values = {}
            for i, check in checks.items():
                try:
                    values |= self.select({i: check})
                except Exception as err:
                    out[i] = Verdict(ERROR, {}, _duckdb_message(err))
        for i, check in checks.items():
            if i not in out:
                prefix = f"a{i}_"
                mine = {k[len(prefix) :]: v for k, v in values.items() if k.startswith(prefix)}
                out[i] = check.finish(mine)

    def select(self, checks: dict[int, AggregateCheck]) -> dict[str, Any]:
        """Run the aggregates of ``checks`` in one query; values keyed ``a{check}_{alias}``."""
        columns: dict[str, int] = {}  # the same aggregate (count(*)) is computed once
        for check in checks.values():
            for sql in check.exprs.values():
                columns.setdefault(sql, len(columns))
        select = ", ".join(f"{sql} AS c{n}" for sql, n in columns.items())
        (row,) = self.execute(f"SELECT {select} FROM {TABLE}").fetchall()
        return {
            f"a{i}_{alias}": row[columns[sql]]
            for i, check in checks.items()
            for alias, sql in check.exprs.items()
        }

    def frequencies(self, checks: dict[int, FrequencyCheck], out: dict[int, Verdict]) -> None:
        by_where: dict[str | None, dict[int, FrequencyCheck]] = defaultdict(dict)
        for i, check in checks.items():
            by_where[check.where][i] = check
        for where, group in by_where.items():
            sets = list(dict.fromkeys(c.columns for c in group.values()))
            sql, gids = queries.frequency_sql(sets, where)
            try:
                rows = {gid: row for gid, *row in self.execute(sql).fetchall()}
            except Exception as err:
                for i in group:
                    out[i] = Verdict(ERROR, {}, _duckdb_message(err))
                continue
            for i, check in group.items():
                total, singles, complete = rows.get(gids[check.columns], (0, 0, 0))
                stats = FrequencyStats(int(total or 0), int(singles or 0), int(complete or 0))
                out[i] = check.finish(stats)

    def query(self, check: QueryCheck) -> Verdict:
        try:
            if self.on_sql is not None:
                self.on_sql(check.sql)
            relation = self.con.sql(check.sql)
            if check.limit is not None:
                relation = relation.limit(check.limit)
            rows = relation.fetchall()
        except Exception as err:
            return Verdict(ERROR, {}, _duckdb_message(err))
        return check.finish(rows)

    def scans(self, checks: dict[int, ScanCheck], out: dict[int, Verdict]) -> None:
        by_where: dict[str | None, dict[int, ScanCheck]] = defaultdict(dict)
        for i, check in checks.items():
            by_where[check.where][i] = check
        for where, group in by_where.items():
            try:
                self.scan(where, group, out)
            except Exception as err:
                for i in group:
                    out.setdefault(i, Verdict(ERROR, {}, _duckdb_message(err)))
                continue
            for i, check in group.items():
                if i not in out:
                    out[i] = check.evaluator.finish()

    def scan(self, where: str | None, group: dict[int, ScanCheck], out: dict[int, Verdict]) -> None:
        """Stream the columns ``group`` needs once, feeding each check its columns."""
        columns = list(dict.fromkeys(c for check in group.values() for c in check.columns))
        filter_sql = f" WHERE {where}" if where else ""
        sql = f"SELECT {', '.join(quote_ident(c) for c in columns)} FROM {TABLE}{filter_sql}"
        if self.on_sql is not None:
            self.on_sql(sql)
        relation = self.con.sql(sql)
        # to_arrow_reader is the DuckDB 2 name; older releases call it fetch_arrow_reader.
        stream = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader
        reader = stream(_BATCH_ROWS)
        try:
            for batch in reader:
                live = {i: c for i, c in group.items() if i not in out}
                if not live:
                    break
                for i, check in live.items():
                    picked = batch.select([columns.index(c) for c in check.columns])
                    self.feed(i, check, picked, out)
        finally:
            reader.close()

    @staticmethod
    def feed(i: int, check: ScanCheck, batch: pa.RecordBatch, out: dict[int, Verdict]) -> None:
        try:
            check.evaluator.update(batch)
        except (RuleError, CurataError) as err:
            out[i] = Verdict(ERROR, {}, _sentence(str(err)))
        except Exception as err:  # the caller's PII detector or tokenizer failed
            out[i] = Verdict(ERROR, {}, f"The rule failed: {type(err).__name__}: {err}")


def _outcome(rule: Rule | Composite, leaves: Any) -> RuleOutcome:
    if isinstance(rule, Rule):
        verdict: Verdict = next(leaves)
        return RuleOutcome(rule.text, verdict.status, verdict.metrics, verdict.message)
    children = [_outcome(child, leaves) for child in rule.children]
    statuses = {c.status for c in children}
    if rule.op == "and":
        status = FAIL if FAIL in statuses else ERROR if ERROR in statuses else PASS
    else:
        status = PASS if PASS in statuses else ERROR if ERROR in statuses else FAIL
    metrics: dict[str, float] = {}
    for child in children:
        metrics |= child.metrics
    message = f" {rule.op} ".join(f"({c.status}: {c.message})" for c in children)
    return RuleOutcome(rule.text, status, metrics, message)
