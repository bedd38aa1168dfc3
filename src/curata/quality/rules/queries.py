"""Rules that need a query of their own (or a shared GROUPING SETS query): Uniqueness,
IsUnique, IsPrimaryKey, CustomSql, ReferentialIntegrity and ClassImbalance."""

from __future__ import annotations

from typing import Any

from curata.errors import CurataError
from curata.quality import bias
from curata.quality.rules.conditions import check_number, count, fmt
from curata.quality.rules.model import Rule
from curata.quality.rules.plan import (
    Check,
    Context,
    FrequencyCheck,
    FrequencyStats,
    QueryCheck,
    RuleError,
    Verdict,
    metric_key,
    metric_verdict,
    quoted,
)
from curata.quality.rules.result import ERROR, FAIL, PASS
from curata.quality.rules.sql import TABLE, custom_statement, find_column, quote_ident


def uniqueness(rule: Rule, ctx: Context) -> Check:
    """``Uniqueness "a" ["b"...] > 0.9``, ``IsUnique`` and ``IsPrimaryKey``.

    Uniqueness is the fraction of rows whose value (tuple) occurs exactly once, as in Glue and
    Deequ: rows with NULL in every key column are never unique, so they lower it.
    """
    names = list(dict.fromkeys(ctx.column(p) for p in rule.params))
    label = ", ".join(names)
    unique_key = metric_key(names, "Uniqueness")
    complete_key = metric_key(names, "Completeness")
    kind, condition = rule.type, rule.condition

    def finish(stats: FrequencyStats) -> Verdict:
        if stats.rows == 0:
            return Verdict(ERROR, {}, f"{kind} of {label}: there are no rows to check.")
        ratio = stats.singles / stats.rows
        if kind == "Uniqueness":
            assert condition is not None
            return metric_verdict(f"Uniqueness of {label}", unique_key, ratio, condition)
        metrics = {unique_key: ratio}
        problems = []
        if stats.singles < stats.rows:
            problems.append(
                f"{stats.rows - stats.singles} of {count(stats.rows, 'row')} repeat a value "
                "or are NULL "
                f"(uniqueness {fmt(ratio)})"
            )
        if kind == "IsPrimaryKey":
            metrics[complete_key] = stats.complete / stats.rows
            if stats.complete < stats.rows:
                problems.append(f"{count(stats.rows - stats.complete, 'row')} with a NULL key")
        if problems:
            return Verdict(
                FAIL, metrics, f"{label} is not {_noun(kind)}: " + "; ".join(problems) + "."
            )
        return Verdict(PASS, metrics, f"{label} is {_noun(kind)} ({count(stats.rows, 'row')}).")

    return FrequencyCheck(tuple(names), ctx.where(rule), finish)


def _noun(kind: str) -> str:
    return "a primary key" if kind == "IsPrimaryKey" else "unique"


def frequency_sql(
    sets: list[tuple[str, ...]], where: str | None
) -> tuple[str, dict[tuple[str, ...], int]]:
    """One query that counts, for several column sets at once, rows, values seen exactly once
    and rows with no NULL key.

    Returns:
        The SQL (rows of ``gid, rows, singles, complete``) and the ``gid`` of each set.
    """
    columns = list(dict.fromkeys(c for s in sets for c in s))
    width = len(columns)
    gids = {s: sum(1 << (width - 1 - i) for i, c in enumerate(columns) if c not in s) for s in sets}
    grouping = f"GROUPING({', '.join(quote_ident(c) for c in columns)})"

    def case(joiner: str) -> str:
        whens = " ".join(
            f"WHEN {gids[s]} THEN ({joiner.join(f'{quote_ident(c)} IS NOT NULL' for c in s)})"
            for s in sets
        )
        return f"CASE {grouping} {whens} END"

    group_sets = ", ".join("(" + ", ".join(quote_ident(c) for c in s) + ")" for s in sets)
    filter_sql = f" WHERE {where}" if where else ""
    inner = (
        f"SELECT {grouping} AS gid, count(*) AS cnt, {case(' OR ')} AS has_value, "
        f"{case(' AND ')} AS complete FROM {TABLE}{filter_sql} "
        f"GROUP BY GROUPING SETS ({group_sets})"
    )
    sql = (
        "SELECT gid, sum(cnt), count(*) FILTER (WHERE cnt = 1 AND has_value), "
        f"sum(cnt) FILTER (WHERE complete) FROM ({inner}) GROUP BY gid"
    )
    return sql, gids


def custom_sql(rule: Rule, ctx: Context) -> Check:
    """``CustomSql "select count(*) from primary where ..." > 0``: one number, compared."""
    assert rule.condition is not None
    statement = custom_statement(ctx.con, rule.params[0])
    condition = rule.condition

    def finish(rows: list[tuple[Any, ...]]) -> Verdict:
        if len(rows) != 1 or len(rows[0]) != 1:
            shape = "more than one row" if len(rows) > 1 else f"{len(rows)} rows"
            if len(rows) == 1:
                shape = f"{len(rows[0])} columns"
            return Verdict(
                ERROR, {}, f"The CustomSql statement must return one value; it returned {shape}."
            )
        value = rows[0][0]
        try:
            number = None if value is None else float(value)
        except (TypeError, ValueError):
            return Verdict(ERROR, {}, f"The CustomSql statement returned {value!r}, not a number.")
        return metric_verdict("The CustomSql result", "Dataset.*.CustomSQL", number, condition)

    return QueryCheck(statement, finish, limit=2)


def referential_integrity(rule: Rule, ctx: Context) -> Check:
    """``ReferentialIntegrity "a,b" "ref.{x,y}" = 1.0``: the fraction of rows whose key occurs in
    the reference dataset (a NULL key never does)."""
    assert rule.condition is not None
    mine = [ctx.column(c.strip()) for c in rule.params[0].split(",")]
    alias, _, rest = rule.params[1].partition(".")
    theirs = [c.strip() for c in rest.strip().strip("{}").split(",") if c.strip()]
    if not alias or not theirs:
        raise RuleError(
            f'expected "alias.column" or "alias.{{col1,col2}}", found "{rule.params[1]}".'
        )
    if len(theirs) != len(mine):
        raise RuleError(f"{len(mine)} columns are compared with {len(theirs)} reference columns.")
    if ctx.resolve is None or ctx.register is None:
        raise RuleError(
            f"ReferentialIntegrity needs the reference dataset '{alias}': pass "
            "evaluate_rules(..., resolve=...) to look it up."
        )
    try:
        dataset = ctx.resolve(alias)
    except CurataError as err:
        raise RuleError(
            f"the reference dataset '{alias}' could not be read: {err.message}"
        ) from err
    name = f"reference:{alias}"
    schema = ctx.register(name, dataset)
    found = [find_column(schema.names, c) for c in theirs]
    if None in found:
        missing = theirs[found.index(None)]
        raise RuleError(
            f"the reference dataset '{alias}' has no column '{missing}'; its columns are: "
            f"{', '.join(schema.names)}."
        )
    match = " AND ".join(
        f"r.{quote_ident(str(t))} = p.{quote_ident(m)}" for t, m in zip(found, mine, strict=True)
    )
    where = ctx.where(rule)
    filter_sql = f" WHERE {where}" if where else ""
    sql = (
        f"SELECT count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM {quote_ident(name)} AS r "
        f"WHERE {match})) FROM {TABLE} AS p{filter_sql}"
    )
    condition = rule.condition
    label = f"ReferentialIntegrity of {', '.join(mine)} in {alias}"

    def finish(rows: list[tuple[Any, ...]]) -> Verdict:
        total, present = int(rows[0][0]), int(rows[0][1])
        ratio = None if total == 0 else present / total
        return metric_verdict(label, metric_key([alias], "ReferentialIntegrity"), ratio, condition)

    return QueryCheck(sql, finish)


def class_imbalance(rule: Rule, ctx: Context) -> Check:
    """``ClassImbalance "facet" ["value"] between -0.2 and 0.2``: SageMaker Clarify's class
    imbalance CI = (n_a - n_d) / (n_a + n_d) of a facet value d against all other rows a.

    With a value, that value's CI is checked; without one, every value's CI must satisfy the
    condition (meaningful for a two-valued facet, where the two CIs are opposite).
    """
    assert rule.condition is not None
    name, col = quoted(ctx, rule.params[0])
    wanted = rule.params[1] if len(rule.params) > 1 else None
    where = ctx.where(rule)
    extra = f" AND {where}" if where else ""
    sql = (
        f"SELECT CAST({col} AS VARCHAR), count(*) FROM {TABLE} "
        f"WHERE {col} IS NOT NULL{extra} GROUP BY ALL ORDER BY 1"
    )
    condition = rule.condition

    def finish(rows: list[tuple[Any, ...]]) -> Verdict:
        counts = {str(value): int(n) for value, n in rows}
        total = sum(counts.values())
        if len(counts) < 2:
            return Verdict(
                ERROR,
                {},
                f"ClassImbalance of {name}: the facet needs at least two values, "
                f"found {len(counts)}.",
            )
        if wanted is not None and wanted not in counts:
            return Verdict(ERROR, {}, f"ClassImbalance of {name}: no row has the value '{wanted}'.")
        values = [wanted] if wanted is not None else list(counts)
        cis = {v: bias.class_imbalance(total - counts[v], counts[v]) for v in values}
        base = metric_key([name], "ClassImbalance")
        metrics = {base if wanted is not None else f"{base}.{v}": ci for v, ci in cis.items()}
        failing = [v for v, ci in cis.items() if not check_number(condition, ci)]
        shown = ", ".join(f"{name}={v}: {fmt(ci)}" for v, ci in cis.items())
        if failing:
            return Verdict(FAIL, metrics, f"ClassImbalance {shown}; expected {condition.text}.")
        return Verdict(PASS, metrics, f"ClassImbalance {shown}, as expected ({condition.text}).")

    return QueryCheck(sql, finish)
