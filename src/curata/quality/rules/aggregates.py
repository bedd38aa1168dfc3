"""Rules that are aggregates over the table, compiled into the shared aggregate query."""

from __future__ import annotations

from typing import Any

from curata.quality.rules.conditions import check_number, count, fmt, numeric_sql, value_sql
from curata.quality.rules.model import Condition, Rule
from curata.quality.rules.plan import (
    AggregateCheck,
    Check,
    Context,
    RuleError,
    StaticCheck,
    Verdict,
    compliance_verdict,
    filtered,
    metric_key,
    metric_verdict,
    quoted,
)
from curata.quality.rules.result import ERROR, FAIL, PASS
from curata.quality.rules.sql import NUMERIC, epoch_expr, number_literal

# DQDL type names -> (the type family of a typed column, the DuckDB type a text value is cast to)
DATA_TYPES = {
    "STRING": ("string", "VARCHAR"),
    "VARCHAR": ("string", "VARCHAR"),
    "BOOLEAN": ("boolean", "BOOLEAN"),
    "BYTE": ("integer", "TINYINT"),
    "SHORT": ("integer", "SMALLINT"),
    "INTEGER": ("integer", "INTEGER"),
    "INT": ("integer", "INTEGER"),
    "LONG": ("integer", "BIGINT"),
    "BIGINT": ("integer", "BIGINT"),
    "FLOAT": ("float", "FLOAT"),
    "DOUBLE": ("float", "DOUBLE"),
    "DECIMAL": ("decimal", "DECIMAL(38, 10)"),
    "DATE": ("date", "DATE"),
    "TIMESTAMP": ("timestamp", "TIMESTAMP"),
    "BINARY": ("binary", "BLOB"),
}

# Whitespace other than the space that RE2's \s matches: tab, newline, form feed, return.
_CONTROL_SPACES = ("chr(9)", "chr(10)", "chr(12)", "chr(13)")

# Words and punctuation marks: close to what a subword tokenizer counts for plain prose.
TOKEN_PATTERN = r"\w+|[^\w\s]"


def row_count(rule: Rule, ctx: Context) -> Check:
    """``RowCount > 10``."""
    assert rule.condition is not None
    condition = rule.condition
    return AggregateCheck(
        {"n": f"count(*){filtered(ctx.where(rule))}"},
        lambda r: metric_verdict("RowCount", "Dataset.*.RowCount", r["n"], condition),
    )


def column_count(rule: Rule, ctx: Context) -> Check:
    """``ColumnCount = 5``, from the schema."""
    assert rule.condition is not None
    count = len(ctx.schema.names)
    return StaticCheck(
        metric_verdict("ColumnCount", "Dataset.*.ColumnCount", count, rule.condition)
    )


def column_exists(rule: Rule, ctx: Context) -> Check:
    """``ColumnExists "x"``, from the schema."""
    name = rule.params[0]
    try:
        real = ctx.column(name)
    except RuleError as err:
        return StaticCheck(Verdict(FAIL, {}, str(err)[0].upper() + str(err)[1:]))
    return StaticCheck(Verdict(PASS, {}, f"Column {real} exists."))


def completeness(rule: Rule, ctx: Context) -> Check:
    """``Completeness "x" > 0.99`` and ``IsComplete "x"``: non-NULL values / rows."""
    name, col = quoted(ctx, rule.params[0])
    where = filtered(ctx.where(rule))
    key = metric_key([name], "Completeness")
    condition = rule.condition

    def finish(r: dict[str, Any]) -> Verdict:
        rows, values = int(r["n"]), int(r["values"])
        if rows == 0:
            return Verdict(ERROR, {}, f"Completeness of {name}: there are no rows to check.")
        ratio = values / rows
        if condition is not None:
            return metric_verdict(f"Completeness of {name}", key, ratio, condition)
        if values == rows:
            return Verdict(PASS, {key: ratio}, f"{name} has no NULL values ({count(rows, 'row')}).")
        return Verdict(
            FAIL,
            {key: ratio},
            f"{name} has {count(rows - values, 'NULL value')} in {count(rows, 'row')} "
            f"(completeness {fmt(ratio)}), expected none.",
        )

    return AggregateCheck({"n": f"count(*){where}", "values": f"count({col}){where}"}, finish)


def column_values(rule: Rule, ctx: Context) -> Check:
    """``ColumnValues "x" in [...]`` and friends: each row's value against the condition."""
    assert rule.condition is not None
    name, col = quoted(ctx, rule.params[0])
    fam = ctx.family(name)
    if fam == "nested":
        raise RuleError(f"ColumnValues cannot check {name}: nested columns are not supported.")
    passing = value_sql(rule.condition, col, fam, ctx.now)
    where = ctx.where(rule)
    exprs = {"n": f"count(*){filtered(where)}", "ok": f"count(*){filtered(where, passing)}"}
    if fam in NUMERIC:
        exprs |= {"min": f"min({col}){filtered(where)}", "max": f"max({col}){filtered(where)}"}
    what = f"{name} {rule.condition.text}"
    threshold = rule.threshold
    key = metric_key([name], "ColumnValues")

    def finish(r: dict[str, Any]) -> Verdict:
        extra = {}
        if r.get("min") is not None:
            extra = {
                metric_key([name], "Minimum"): float(r["min"]),
                metric_key([name], "Maximum"): float(r["max"]),
            }
        return compliance_verdict(what, key, int(r["ok"]), int(r["n"]), threshold, metrics=extra)

    return AggregateCheck(exprs, finish)


def _per_row_numeric(
    rule: Rule, ctx: Context, expr: str, *, name: str, metric: str, label: str, extremes: str
) -> Check:
    """A numeric per-row rule (ColumnLength, TokenCount): compliance plus min and max."""
    assert rule.condition is not None
    where = ctx.where(rule)
    condition = rule.condition
    exprs = {
        "n": f"count(*){filtered(where)}",
        "ok": f"count(*){filtered(where, numeric_sql(condition, expr))}",
        "min": f"min({expr}){filtered(where)}",
        "max": f"max({expr}){filtered(where)}",
    }
    what = f"{label} of {name} {condition.text}"
    threshold = rule.threshold

    def finish(r: dict[str, Any]) -> Verdict:
        extra = {}
        if r["min"] is not None:
            extra = {
                metric_key([name], f"Minimum{extremes}"): float(r["min"]),
                metric_key([name], f"Maximum{extremes}"): float(r["max"]),
            }
        return compliance_verdict(
            what, metric_key([name], metric), int(r["ok"]), int(r["n"]), threshold, metrics=extra
        )

    return AggregateCheck(exprs, finish)


def column_length(rule: Rule, ctx: Context) -> Check:
    """``ColumnLength "x" = 5``: each value's length in characters (NULL counts as 0)."""
    name, col = quoted(ctx, rule.params[0])
    if ctx.family(name) != "string":
        raise RuleError(f"ColumnLength needs a text column; {name} is {ctx.family(name)}.")
    expr = f"length(coalesce({col}, ''))"
    return _per_row_numeric(
        rule, ctx, expr, name=name, metric="ColumnLength", label="length", extremes="Length"
    )


def token_count_sql(rule: Rule, ctx: Context) -> Check:
    """``TokenCount "x" between 1 and 4096`` without a tokenizer: words and punctuation marks."""
    name, col = quoted(ctx, rule.params[0])
    if ctx.family(name) != "string":
        raise RuleError(f"TokenCount needs a text column; {name} is {ctx.family(name)}.")
    expr = f"len(regexp_extract_all(coalesce({col}, ''), '{TOKEN_PATTERN}'))"
    return _per_row_numeric(
        rule, ctx, expr, name=name, metric="TokenCount", label="token count", extremes="Tokens"
    )


def statistic(rule: Rule, ctx: Context) -> Check:
    """``Mean``, ``Sum``, ``StandardDeviation`` (population) and ``DistinctValuesCount``."""
    assert rule.condition is not None
    name, col = quoted(ctx, rule.params[0])
    where = filtered(ctx.where(rule))
    functions = {
        "Mean": "avg",
        "Sum": "sum",
        "StandardDeviation": "stddev_pop",
        "DistinctValuesCount": "count(DISTINCT",
    }
    if rule.type != "DistinctValuesCount" and ctx.family(name) not in (*NUMERIC, "boolean"):
        raise RuleError(f"{rule.type} needs a numeric column; {name} is {ctx.family(name)}.")
    function = functions[rule.type]
    sql = f"{function} {col}){where}" if "(" in function else f"{function}({col}){where}"
    condition = rule.condition
    key = metric_key([name], rule.type)
    label = f"{rule.type} of {name}"
    return AggregateCheck(
        {"value": sql}, lambda r: metric_verdict(label, key, r["value"], condition)
    )


def column_data_type(rule: Rule, ctx: Context) -> Check:
    """``ColumnDataType "x" = "INTEGER"``: a typed column by its type, a text column by how many
    of its values can be cast to the type."""
    assert rule.condition is not None
    name, col = quoted(ctx, rule.params[0])
    wanted = [v.text.upper() for v in rule.condition.values]
    unknown = [w for w in wanted if w not in DATA_TYPES]
    if unknown:
        raise RuleError(f"unknown data type {unknown[0]}; known: {', '.join(sorted(DATA_TYPES))}.")
    fam, negated = ctx.family(name), rule.condition.negated
    key = metric_key([name], "ColumnDataType")
    what = f"{name} {rule.condition.text}"
    threshold = rule.threshold
    if fam != "string" or "STRING" in wanted or "VARCHAR" in wanted:
        return StaticCheck(_declared_type(name, fam, rule.condition, key, threshold))
    where = ctx.where(rule)
    castable = " OR ".join(f"TRY_CAST({col} AS {DATA_TYPES[w][1]}) IS NOT NULL" for w in wanted)
    if negated:
        castable = f"NOT ({castable})"
    exprs = {
        "n": f"count({col}){filtered(where)}",
        "ok": f"count({col}){filtered(where, f'({castable})')}",
    }
    return AggregateCheck(
        exprs, lambda r: compliance_verdict(what, key, int(r["ok"]), int(r["n"]), threshold)
    )


def _declared_type(
    name: str, fam: str, condition: Condition, key: str, threshold: Condition | None
) -> Verdict:
    """ColumnDataType on a column whose declared type decides it: every value or none fits."""
    fits = any(DATA_TYPES[v.text.upper()][0] == fam for v in condition.values) != condition.negated
    compliance = 1.0 if fits else 0.0
    passed = fits if threshold is None else check_number(threshold, compliance)
    said = f"{name} is a {fam} column; expected {condition.text}"
    if threshold is not None:
        said += f" with threshold {threshold.text}"
    return Verdict(PASS if passed else FAIL, {f"{key}.Compliance": compliance}, said + ".")


def data_freshness(rule: Rule, ctx: Context) -> Check:
    """``DataFreshness "ts" <= 24 hours``: each row's age (now minus the value); NULL fails."""
    assert rule.condition is not None
    name, col = quoted(ctx, rule.params[0])
    fam = ctx.family(name)
    if fam not in ("date", "timestamp", "string"):
        raise RuleError(f"DataFreshness needs a date or timestamp column; {name} is {fam}.")
    age = f"({number_literal(ctx.now)} - {epoch_expr(col, fam)})"
    where = ctx.where(rule)
    exprs = {
        "n": f"count(*){filtered(where)}",
        "ok": f"count(*){filtered(where, numeric_sql(rule.condition, age))}",
        "oldest": f"max({age}){filtered(where)}",
    }
    what = f"age of {name} {rule.condition.text}"
    threshold = rule.threshold

    def finish(r: dict[str, Any]) -> Verdict:
        extra = (
            {}
            if r["oldest"] is None
            else {metric_key([name], "MaximumAgeHours"): float(r["oldest"]) / 3600}
        )
        return compliance_verdict(
            what,
            metric_key([name], "DataFreshness"),
            int(r["ok"]),
            int(r["n"]),
            threshold,
            metrics=extra,
        )

    return AggregateCheck(exprs, finish)


def duplicate_ratio(rule: Rule, ctx: Context) -> Check:
    """``DuplicateRatio "text" < 0.05``: 1 - distinct / non-NULL values, after trimming,
    collapsing whitespace and lower-casing."""
    assert rule.condition is not None
    name, col = quoted(ctx, rule.params[0])
    if ctx.family(name) != "string":
        raise RuleError(f"DuplicateRatio needs a text column; {name} is {ctx.family(name)}.")
    # The regex is the slow part; most texts have no whitespace run to collapse, so it runs
    # only where one can be. Distinct hashes instead of texts keep long texts out of memory.
    runs = " OR ".join(f"contains({col}, {w})" for w in ("'  '", *_CONTROL_SPACES))
    collapsed = rf"CASE WHEN {runs} THEN regexp_replace({col}, '\s+', ' ', 'g') ELSE {col} END"
    normal = f"hash(lower(trim({collapsed})))"
    where = ctx.where(rule)
    condition = rule.condition
    key = metric_key([name], "DuplicateRatio")
    present = filtered(where, f"{col} IS NOT NULL")  # hash(NULL) is a value, not NULL

    def finish(r: dict[str, Any]) -> Verdict:
        values = int(r["values"])
        ratio = None if values == 0 else 1 - int(r["distinct"]) / values
        return metric_verdict(f"DuplicateRatio of {name}", key, ratio, condition)

    return AggregateCheck(
        {"values": f"count({col}){present}", "distinct": f"count(DISTINCT {normal}){present}"},
        finish,
    )
