"""DQDL rules: parsing, every rule type and operator, and how evaluation reads the table.

Expected metrics are computed by hand from the small tables below (see the comments).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

import curata.quality.rules as rules_api
from curata.errors import InvalidInput
from curata.quality.rules import RULE_SPECS, evaluate_rules, parse_rules
from curata.quality.rules.evaluate import BUILDERS

# id: 1..5 | lang: en en de fr NULL | score: 0.5 1.0 1.5 2.0 NULL
# code: "12345" "1234" "ab" "00000" NULL | text: see below
TABLE = pa.table(
    {
        "id": [1, 2, 3, 4, 5],
        "lang": ["en", "en", "de", "fr", None],
        "score": [0.5, 1.0, 1.5, 2.0, None],
        "code": ["12345", "1234", "ab", "00000", None],
        "text": ["Hello world.", "hello   WORLD.", "She said hi", None, "x"],
    }
)
NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)


def run(text: str, table: object = TABLE, **kwargs: object) -> rules_api.RulesResult:
    return evaluate_rules(parse_rules(f"Rules = [ {text} ]"), table, now=NOW, **kwargs)  # type: ignore[arg-type]


def one(text: str, table: object = TABLE, **kwargs: object) -> rules_api.RuleOutcome:
    (outcome,) = run(text, table, **kwargs).outcomes
    return outcome


# -- the API ------------------------------------------------------------------------------------


def test_public_api_and_every_rule_type_has_an_evaluator() -> None:
    assert set(rules_api.__all__) == {
        "ERROR", "FAIL", "PASS", "RESULT_SCHEMA", "RULE_SPECS", "Composite", "Condition", "Rule",
        "RuleOutcome", "RuleSet", "RulesResult", "Value", "ValueKind", "evaluate_rules",
        "parse_rules",
    }  # fmt: skip
    assert set(BUILDERS) == set(RULE_SPECS)


def test_result_score_dict_and_table() -> None:
    result = run('RowCount = 5, IsComplete "lang", ColumnExists "nope", PiiCount "text" = 0')
    assert [o.status for o in result.outcomes] == ["PASS", "FAIL", "FAIL", "ERROR"]
    assert result.score == 0.25
    assert not result.passed
    data = result.to_dict()
    assert (data["passed"], data["failed"], data["errors"], data["total"]) == (1, 2, 1, 4)
    assert data["outcomes"][0] == {
        "rule": "RowCount = 5",
        "status": "PASS",
        "metrics": {"Dataset.*.RowCount": 5.0},
        "message": "RowCount is 5, as expected (= 5).",
    }
    json.dumps(data)  # plain values only
    table = result.to_table()
    assert table.schema == rules_api.RESULT_SCHEMA
    assert table.column("status").to_pylist() == ["PASS", "FAIL", "FAIL", "ERROR"]
    assert table.column("metrics")[1].as_py() == [
        {"name": "Column.lang.Completeness", "value": 0.8}
    ]


def test_empty_ruleset_scores_one() -> None:
    result = evaluate_rules("Rules = [ ]", TABLE)
    assert result.outcomes == () and result.score == 1.0


# -- table-level and column-level rule types ----------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "status", "metrics"),
    [
        ("RowCount = 5", "PASS", {"Dataset.*.RowCount": 5}),
        ("RowCount > 5", "FAIL", {"Dataset.*.RowCount": 5}),
        ("ColumnCount = 5", "PASS", {"Dataset.*.ColumnCount": 5}),
        ("ColumnCount < 5", "FAIL", {"Dataset.*.ColumnCount": 5}),
        # lang: 4 of 5 values present
        ('Completeness "lang" >= 0.8', "PASS", {"Column.lang.Completeness": 0.8}),
        ('Completeness "lang" > 0.8', "FAIL", {"Column.lang.Completeness": 0.8}),
        ('IsComplete "id"', "PASS", {"Column.id.Completeness": 1.0}),
        ('IsComplete "lang"', "FAIL", {"Column.lang.Completeness": 0.8}),
        # lang: de and fr occur once; en twice, NULL is never unique -> 2/5
        ('Uniqueness "lang" = 0.4', "PASS", {"Column.lang.Uniqueness": 0.4}),
        ('Uniqueness "lang" > 0.5', "FAIL", {"Column.lang.Uniqueness": 0.4}),
        ('IsUnique "id"', "PASS", {"Column.id.Uniqueness": 1.0}),
        ('IsUnique "lang"', "FAIL", {"Column.lang.Uniqueness": 0.4}),
        (
            'IsPrimaryKey "id"',
            "PASS",
            {"Column.id.Uniqueness": 1.0, "Column.id.Completeness": 1.0},
        ),
        # (id, lang) tuples are all distinct, but row 5 has a NULL key column
        (
            'IsPrimaryKey "id" "lang"',
            "FAIL",
            {"Multicolumn.id,lang.Uniqueness": 1.0, "Multicolumn.id,lang.Completeness": 0.8},
        ),
        ('Uniqueness "id" "lang" = 1.0', "PASS", {"Multicolumn.id,lang.Uniqueness": 1.0}),
        # en, en, de pass; fr and NULL fail -> 3/5
        (
            'ColumnValues "lang" in ["en", "de"] with threshold >= 0.6',
            "PASS",
            {"Column.lang.ColumnValues.Compliance": 0.6},
        ),
        (
            'ColumnValues "lang" in ["en", "de"]',
            "FAIL",
            {"Column.lang.ColumnValues.Compliance": 0.6},
        ),
        # lengths 5, 4, 2, 5, and 0 for NULL -> 2/5
        (
            'ColumnLength "code" = 5',
            "FAIL",
            {
                "Column.code.ColumnLength.Compliance": 0.4,
                "Column.code.MinimumLength": 0,
                "Column.code.MaximumLength": 5,
            },
        ),
        (
            'ColumnLength "code" <= 5',
            "PASS",
            {
                "Column.code.ColumnLength.Compliance": 1.0,
                "Column.code.MinimumLength": 0,
                "Column.code.MaximumLength": 5,
            },
        ),
        ('DistinctValuesCount "lang" = 3', "PASS", {"Column.lang.DistinctValuesCount": 3}),
        ('DistinctValuesCount "lang" > 3', "FAIL", {"Column.lang.DistinctValuesCount": 3}),
        # score: 0.5 1.0 1.5 2.0 -> mean 1.25, sum 5, population sd sqrt(1.25 / 4)
        ('Mean "score" = 1.25', "PASS", {"Column.score.Mean": 1.25}),
        ('Mean "score" < 1', "FAIL", {"Column.score.Mean": 1.25}),
        ('Sum "score" = 5', "PASS", {"Column.score.Sum": 5.0}),
        ('Sum "score" != 5', "FAIL", {"Column.score.Sum": 5.0}),
        (
            'StandardDeviation "score" between 0.55 and 0.56',
            "PASS",
            {"Column.score.StandardDeviation": math.sqrt(0.3125)},
        ),
        (
            'StandardDeviation "score" > 1',
            "FAIL",
            {"Column.score.StandardDeviation": math.sqrt(0.3125)},
        ),
        ('ColumnExists "code"', "PASS", {}),
        ('ColumnExists "nope"', "FAIL", {}),
        # "12345", "1234", "00000" cast to INTEGER, "ab" does not; NULL is not counted -> 3/4
        (
            'ColumnDataType "code" = "INTEGER" with threshold >= 0.75',
            "PASS",
            {"Column.code.ColumnDataType.Compliance": 0.75},
        ),
        (
            'ColumnDataType "code" = "INTEGER"',
            "FAIL",
            {"Column.code.ColumnDataType.Compliance": 0.75},
        ),
        ('ColumnDataType "id" = "LONG"', "PASS", {"Column.id.ColumnDataType.Compliance": 1.0}),
        ('ColumnDataType "id" = "STRING"', "FAIL", {"Column.id.ColumnDataType.Compliance": 0.0}),
        (
            'ColumnDataType "score" in ["DOUBLE", "FLOAT"]',
            "PASS",
            {"Column.score.ColumnDataType.Compliance": 1.0},
        ),
    ],
)
def test_rule_types(rule: str, status: str, metrics: dict[str, float]) -> None:
    outcome = one(rule)
    assert outcome.status == status, outcome.message
    assert outcome.metrics == pytest.approx(metrics)
    assert outcome.rule == rule


def test_messages_say_what_was_found_and_expected() -> None:
    assert one('Completeness "lang" > 0.9').message == (
        "Completeness of lang is 0.8, expected > 0.9."
    )
    assert one('ColumnValues "lang" in ["en", "de"]').message == (
        '2 of 5 rows fail lang in ["en", "de"] (0.6 pass).'
    )
    assert one('IsComplete "lang"').message == (
        "lang has 1 NULL value in 5 rows (completeness 0.8), expected none."
    )


# -- operators -----------------------------------------------------------------------------------


# score: 0.5 1.0 1.5 2.0 NULL. NULL fails every condition but the negated ones.
@pytest.mark.parametrize(
    ("condition", "compliance"),
    [
        ("= 1.0", 0.2),
        ("!= 1.0", 0.8),
        ("> 1.0", 0.4),
        (">= 1.0", 0.6),
        ("< 1.0", 0.2),
        ("<= 1.0", 0.4),
        ("between 1 and 1.5", 0.4),
        ("not between 1 and 1.5", 0.6),
        ("in [0.5, 2]", 0.4),
        ("not in [0.5, 2]", 0.6),
        ("in [0.5, NULL]", 0.4),
        ("not in [0.5, NULL]", 0.6),
        ("= NULL", 0.2),
        ("!= NULL", 0.8),
    ],
)
def test_column_values_operators(condition: str, compliance: float) -> None:
    outcome = one(f'ColumnValues "score" {condition} with threshold >= 0')
    assert outcome.metrics["Column.score.ColumnValues.Compliance"] == pytest.approx(compliance)


# lang: en en de fr NULL
@pytest.mark.parametrize(
    ("condition", "compliance"),
    [
        ('matches "[a-z]{2}"', 0.8),
        ('matches "e"', 0.0),  # a full match, not a search
        ('not matches "e.*"', 0.6),  # de, fr and NULL
        ('= "en"', 0.4),
        ('!= "en"', 0.6),
        ('> "df"', 0.6),  # en, en, fr (text order)
        ('in ["en", NULL]', 0.6),
        ('not in ["en", NULL]', 0.4),
    ],
)
def test_column_values_text_operators(condition: str, compliance: float) -> None:
    outcome = one(f'ColumnValues "lang" {condition} with threshold >= 0')
    assert outcome.metrics["Column.lang.ColumnValues.Compliance"] == pytest.approx(compliance)


def test_empty_and_whitespace_keywords() -> None:
    table = pa.table({"s": ["a", "", "  \t", None]})
    compliance = "Column.s.ColumnValues.Compliance"
    assert one('ColumnValues "s" = EMPTY with threshold >= 0', table).metrics[compliance] == 0.25
    rule = 'ColumnValues "s" in [EMPTY, WHITESPACES_ONLY, NULL] with threshold >= 0'
    assert one(rule, table).metrics[compliance] == 0.75
    assert one('ColumnValues "s" not in [EMPTY, WHITESPACES_ONLY, NULL]', table).status == "FAIL"


@pytest.mark.parametrize(
    ("condition", "status"),
    [
        ("= 5", "PASS"),
        ("!= 4", "PASS"),
        ("> 4", "PASS"),
        (">= 5", "PASS"),
        ("< 6", "PASS"),
        ("<= 5", "PASS"),
        ("between 5 and 9", "PASS"),
        ("not between 6 and 9", "PASS"),
        ("in [4, 5]", "PASS"),
        ("not in [1, 2]", "PASS"),
        ("= 4", "FAIL"),
        ("!= 5", "FAIL"),
        ("> 5", "FAIL"),
        (">= 6", "FAIL"),
        ("< 5", "FAIL"),
        ("<= 4", "FAIL"),
        ("between 6 and 9", "FAIL"),
        ("not between 1 and 5", "FAIL"),
        ("in [1, 2]", "FAIL"),
        ("not in [5]", "FAIL"),
    ],
)
def test_metric_operators(condition: str, status: str) -> None:
    assert one(f"RowCount {condition}").status == status


def test_dates_and_now() -> None:
    table = pa.table(
        {
            "day": [date(2024, 3, 1), date(2024, 3, 8), date(2024, 3, 10), None],
            "ts": pa.array(
                [datetime(2024, 3, 10, 11), datetime(2024, 3, 9, 11), None, datetime(2024, 1, 1)],
                pa.timestamp("us"),
            ),
            "iso": ["2024-03-10T06:00:00", "2024-03-01", "not a date", None],
        }
    )
    key = "Column.{}.ColumnValues.Compliance"

    def compliance(rule: str, column: str) -> float:
        return one(f"{rule} with threshold >= 0", table).metrics[key.format(column)]

    # now is 2024-03-10 12:00 UTC; now() - 3 days is 2024-03-07 12:00
    assert compliance('ColumnValues "day" > (now() - 3 days)', "day") == 0.5  # 03-08, 03-10
    assert compliance('ColumnValues "day" >= "2024-03-08"', "day") == 0.5
    assert compliance('ColumnValues "day" between "2024-03-01" and "2024-03-08"', "day") == 0.5
    assert compliance('ColumnValues "ts" > (now() - 36 hours)', "ts") == 0.5  # 03-10, 03-09 11h
    assert compliance('ColumnValues "ts" < now()', "ts") == 0.75
    assert compliance('ColumnValues "iso" > (now() - 1 days)', "iso") == 0.25  # text read as time


def test_data_freshness_with_a_fixed_now() -> None:
    table = pa.table(
        {
            "ts": pa.array(
                [
                    datetime(2024, 3, 10, 6, tzinfo=UTC),  # 6 hours old
                    datetime(2024, 3, 9, 6, tzinfo=UTC),  # 30 hours
                    datetime(2024, 3, 6, 12, tzinfo=UTC),  # 4 days
                    None,
                ],
                pa.timestamp("us", tz="UTC"),
            )
        }
    )
    fresh = one('DataFreshness "ts" <= 24 hours', table)
    assert fresh.status == "FAIL"
    assert fresh.metrics == pytest.approx(
        {"Column.ts.DataFreshness.Compliance": 0.25, "Column.ts.MaximumAgeHours": 96}
    )
    assert one('DataFreshness "ts" <= 2 days with threshold >= 0.5', table).status == "PASS"
    between = one('DataFreshness "ts" between 1 days and 5 days with threshold = 0.5', table)
    assert between.status == "PASS", between.message
    naive = pa.table({"ts": pa.array([datetime(2024, 3, 10, 11, 30)], pa.timestamp("s"))})
    assert one('DataFreshness "ts" < 1 hours', naive).status == "PASS"  # naive is read as UTC


# -- where, thresholds, composites -------------------------------------------------------------


def test_where_filters_the_rows_a_rule_sees() -> None:
    assert one('Completeness "lang" = 1.0 where "id <= 3"').status == "PASS"
    assert one('RowCount = 2 where "score > 1"').status == "PASS"
    outcome = one('ColumnValues "lang" = "en" where "score <= 1.0"')
    assert outcome.status == "PASS", outcome.message  # rows 1 and 2
    assert one('IsUnique "lang" where "id >= 3"').status == "FAIL"  # de, fr, NULL
    assert one('IsUnique "lang" where "id between 2 and 4"').status == "PASS"
    assert one("Sum \"id\" = 9 where \"lang IN ('de', 'fr', 'xx')\" ").status == "FAIL"
    assert one("Sum \"id\" = 7 where \"lang IN ('de', 'fr', 'xx')\"").status == "PASS"


def test_threshold_is_the_fraction_of_rows_that_must_pass() -> None:
    assert one('ColumnValues "lang" in ["en", "de"] with threshold > 0.5').status == "PASS"
    assert one('ColumnValues "lang" in ["en", "de"] with threshold > 0.6').status == "FAIL"
    assert one('ColumnLength "code" = 5 with threshold between 0.3 and 0.5').status == "PASS"
    both = one('ColumnValues "lang" = "en" where "id < 4" with threshold >= 0.66')
    assert both.status == "PASS", both.message


@pytest.mark.parametrize(
    ("rule", "status"),
    [
        ('(RowCount = 5) and (IsComplete "lang")', "FAIL"),
        ('(RowCount = 5) or (IsComplete "lang")', "PASS"),
        ('(RowCount = 5) and (IsComplete "id") and (IsUnique "id")', "PASS"),
        ('(RowCount = 1) or ((IsComplete "id") and (IsUnique "id"))', "PASS"),
        ('(RowCount = 1) or ((IsComplete "id") and (IsUnique "lang"))', "FAIL"),
        # 'and' binds tighter than 'or': (false and true) or true
        ("(RowCount = 1) and (RowCount = 5) or (RowCount = 5)", "PASS"),
        ('((RowCount = 5)) and ((Mean "score" > 1))', "PASS"),
        # an error decides an 'and' only when nothing failed, an 'or' only when nothing passed
        ('(RowCount = 5) or (IsComplete "nope")', "PASS"),
        ('(RowCount = 1) and (IsComplete "nope")', "FAIL"),
        ('(RowCount = 5) and (IsComplete "nope")', "ERROR"),
    ],
)
def test_composite_rules(rule: str, status: str) -> None:
    outcome = one(rule)
    assert outcome.status == status, outcome.message
    assert outcome.rule == rule


def test_composite_reports_metrics_of_its_parts() -> None:
    outcome = one('(RowCount = 5) and (Completeness "lang" > 0.5)')
    assert outcome.metrics == {"Dataset.*.RowCount": 5, "Column.lang.Completeness": 0.8}


def test_comments_and_layout() -> None:
    text = """
    # checks for the ticket set
    Rules = [
        RowCount > 0,   # not empty
        IsComplete "id" # every row has an id
        , Mean "score" < 10
    ]  # done
    """
    assert [r.text for r in parse_rules(text).rules] == [
        "RowCount > 0",
        'IsComplete "id"',
        'Mean "score" < 10',
    ]
    assert evaluate_rules(text, TABLE).score == 1.0


# -- syntax errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'Rules = [\n  RowCount > 0,\n  Completeness "x" >\n]',
            "rules.dqdl:4:1: expected a number",
        ),
        ("Rules = [ RowCount >> 1 ]", "rules.dqdl:1:21: expected a number for RowCount"),
        ('Rules = [ IsComplete "a" and IsUnique "b" ]', "rules.dqdl:1:11: each rule joined"),
        ("Rules = [\n  RowCount > 0\n  RowCount > 1 ]", "rules.dqdl:3:3: expected ',' or ']'"),
        ("Rules = [ IsComplete ]", "rules.dqdl:1:11: IsComplete takes 1 quoted parameter"),
        ('Rules = [ IsComplete "a" > 1 ]', "rules.dqdl:1:26: IsComplete takes no condition"),
        ('Rules = [ Mean "x" ]', "rules.dqdl:1:20: expected a condition for Mean"),
        ('Rules = [ ColumnValues "x" = "a ]', "rules.dqdl:1:30: this string has no closing"),
        ("Rules = [ RowCount > 0 ", "rules.dqdl:1:24: expected ',' or ']'"),
        ("rules = [ RowCount > 0 ]", "rules.dqdl:1:1: expected 'Rules = ['"),
        ("Rules = [ RowCount > 0 ] extra", "rules.dqdl:1:26: unexpected 'extra'"),
        (
            "Rules = [ RowCount > 0 with threshold > 0.5 ]",
            "RowCount does not take 'with threshold'",
        ),
        ('Rules = [ ColumnExists "x" where "a > 1" ]', "ColumnExists does not take a where"),
        ('Rules = [ ColumnValues "x" > $limit ]', "rules.dqdl:1:30: variables ($name)"),
        ('Rules = [ DataFreshness "ts" < 5 ]', "expected a duration such as 24 hours"),
        ('Rules = [ Language "t" > "en" ]', "Language compares with = or in"),
        ("Rules = [ RowCount between 1 5 ]", "rules.dqdl:1:30: expected 'and'"),
        ('Rules = [ Mean "x" matches "a" ]', "'matches' takes a quoted regular expression"),
        ('Metadata = { "Version": "1.0" } Rules = []', "the Metadata section is not supported"),
        ('Rules = [ Entropy "x" > 1 ]', "rule type Entropy is not supported"),
        ('Rules = [ ColumnValues "x" = EMPTY where "a" where "b" ]', "one where clause"),
    ],
)
def test_syntax_errors_point_at_line_and_column(text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_rules(text, source="rules.dqdl")
    assert message in str(caught.value)


def test_unknown_rule_type_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_rules('Rules = [\n  RowCount > 0,\n  Completenes "text" > 0.9\n]', source="r.dqdl")
    text = str(caught.value)
    assert text.startswith(
        "r.dqdl:3:3: unknown rule type 'Completenes'. Did you mean Completeness?"
    )
    for name in ("ColumnValues", "IsPrimaryKey", "CustomSql", "ValidChatFormat", "TokenCount"):
        assert name in caught.value.hint  # type: ignore[operator]


# -- errors in one rule do not stop the others ----------------------------------------------


def test_missing_column_is_an_error_and_the_other_rules_still_run() -> None:
    result = run('RowCount = 5, Completeness "nope" > 0.5, Mean "score" = 1.25, IsUnique "gone"')
    statuses = [o.status for o in result.outcomes]
    assert statuses == ["PASS", "ERROR", "PASS", "ERROR"]
    assert result.outcomes[1].message == (
        "Column 'nope' does not exist; the columns are: id, lang, score, code, text."
    )


def test_a_failing_aggregate_does_not_spoil_the_shared_scan() -> None:
    result = run('RowCount = 5, ColumnValues "lang" matches "([a-z", Mean "score" = 1.25')
    assert [o.status for o in result.outcomes] == ["PASS", "ERROR", "PASS"]
    assert result.outcomes[1].message.startswith("DuckDB could not evaluate this rule:")


def test_wrong_column_types_are_errors() -> None:
    assert "needs a numeric column; lang is string" in one('Mean "lang" > 1').message
    assert one('ColumnLength "id" > 1').status == "ERROR"
    assert "is not a number" in one('ColumnValues "score" = "high"').message
    assert one('DataFreshness "id" < 1 days').status == "ERROR"
    assert "Unknown data type TEXTY" in one('ColumnDataType "code" = "TEXTY"').message


def test_column_names_match_ignoring_case() -> None:
    assert one('IsComplete "ID"').status == "PASS"


# -- one scan -------------------------------------------------------------------------------


def test_twenty_aggregate_rules_run_as_one_query() -> None:
    ruleset = """Rules = [
        RowCount > 0, ColumnCount = 5, Completeness "lang" > 0.5, IsComplete "id",
        ColumnValues "lang" in ["en", "de"] with threshold > 0.5,
        ColumnValues "score" > 0 with threshold >= 0.8,
        ColumnValues "code" matches "[0-9]+" with threshold > 0.1, ColumnLength "code" <= 5,
        DistinctValuesCount "lang" = 3, Mean "score" > 1, Sum "id" = 15,
        StandardDeviation "score" < 1, ColumnDataType "code" = "INTEGER" with threshold > 0.5,
        DuplicateRatio "text" < 0.5, TokenCount "text" between 0 and 10,
        Completeness "score" > 0.5 where "id > 1", RowCount = 2 where "score > 1",
        ColumnValues "id" between 1 and 5, Mean "id" = 3, Sum "score" = 1.5 where "lang = 'en'"
    ]"""
    statements: list[str] = []
    result = evaluate_rules(ruleset, TABLE, on_sql=statements.append)
    assert len(result.outcomes) == 20
    assert result.passed, [o.message for o in result.outcomes if o.status != "PASS"]
    assert len(statements) == 1
    assert statements[0].startswith("SELECT ") and "GROUP BY" not in statements[0]


def test_uniqueness_rules_share_one_grouping_query() -> None:
    statements: list[str] = []
    run(
        'IsUnique "id", Uniqueness "lang" > 0.1, IsPrimaryKey "id" "lang"', on_sql=statements.append
    )
    assert len(statements) == 1 and "GROUPING SETS" in statements[0]


# -- CustomSql --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "status", "value"),
    [
        ('CustomSql "select count(*) from primary where score > 1" = 2', "PASS", 2),
        ('CustomSql "SELECT avg(score) FROM primary" between 1 and 2', "PASS", 1.25),
        ("CustomSql \"select count(*) from primary where lang <> 'primary'\" = 4", "PASS", 4),
        ('CustomSql "select count(*) from primary p join primary q on p.id = q.id" > 5', "FAIL", 5),
        ('CustomSql "select max(id) > 4 from primary" = 1', "PASS", 1),
    ],
)
def test_custom_sql(rule: str, status: str, value: float) -> None:
    outcome = one(rule)
    assert outcome.status == status, outcome.message
    assert outcome.metrics == {"Dataset.*.CustomSQL": value}


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("delete from primary", "only a SELECT statement can be checked"),
        ("select 1; select 2", "exactly one SELECT"),
        ("select id, lang from primary", "must return one value; it returned more than one row"),
        ("select count(*), 1 from primary", "it returned 2 columns"),
        # the rules' connection reads the tables it is given, never files
        ("select count(*) from read_csv('/etc/passwd')", "file system operations are disabled"),
        ("select count(*) from nowhere", "DuckDB could not evaluate this rule"),
        ("select 'many' from primary limit 1", "returned 'many', not a number"),
    ],
)
def test_custom_sql_errors(sql: str, message: str) -> None:
    outcome = one(f'CustomSql "{sql}" > 0')
    assert outcome.status == "ERROR"
    assert message in outcome.message


# -- ReferentialIntegrity ----------------------------------------------------------------------


def test_referential_integrity_with_a_resolver() -> None:
    languages = pa.table({"code": ["en", "de"], "name": ["English", "German"]})
    asked: list[str] = []

    def resolve(name: str) -> object:
        asked.append(name)
        return languages

    # en, en, de are known; fr and NULL are not -> 3/5
    outcome = one('ReferentialIntegrity "lang" "langs.code" = 0.6', resolve=resolve)
    assert outcome.status == "PASS", outcome.message
    assert outcome.metrics == {"Column.langs.ReferentialIntegrity": 0.6}
    assert asked == ["langs"]
    assert one('ReferentialIntegrity "lang" "langs.code" = 1.0', resolve=resolve).status == "FAIL"
    where = 'ReferentialIntegrity "lang" "langs.code" = 1.0 where "id <= 3"'
    assert one(where, resolve=resolve).status == "PASS"


def test_referential_integrity_on_several_columns_and_other_inputs() -> None:
    pairs = pa.table({"rid": [1, 2, 3], "rlang": ["en", "en", "fr"]})
    for data in (pairs, pairs.to_reader(), duckdb.connect().from_arrow(pairs)):
        rule = 'ReferentialIntegrity "id,lang" "ref.{rid,rlang}" = 0.4'
        outcome = one(rule, resolve=lambda _, data=data: data)
        assert outcome.status == "PASS", outcome.message  # (1, en) and (2, en)


def test_referential_integrity_errors() -> None:
    rule = 'ReferentialIntegrity "lang" "langs.code" = 1.0'
    assert "pass evaluate_rules(..., resolve=...)" in one(rule).message
    outcome = one(rule, resolve=lambda _: pa.table({"other": ["en"]}))
    assert outcome.status == "ERROR"
    assert "has no column 'code'; its columns are: other" in outcome.message
    assert one('ReferentialIntegrity "lang" "langs" = 1.0', resolve=dict).status == "ERROR"


# -- text rules ------------------------------------------------------------------------------


def test_pii_count_uses_the_callers_detector() -> None:
    emails = pa.table({"text": ["mail a@b.io or c@d.io", "none here", None, "e@f.io"]})

    def count_at_signs(texts: list[str | None]) -> list[int]:
        return [(t or "").count("@") for t in texts]

    outcome = one('PiiCount "text" = 0', emails, pii_counter=count_at_signs)
    assert outcome.status == "FAIL"
    assert outcome.metrics == {"Column.text.PiiCount": 3, "Column.text.PiiRows": 2}
    assert one('PiiCount "text" < 5', emails, pii_counter=count_at_signs).status == "PASS"
    where = one(
        'PiiCount "text" = 0 where "text LIKE \'none%\'"', emails, pii_counter=count_at_signs
    )
    assert where.status == "PASS"


def test_pii_count_without_a_detector_or_with_a_broken_one() -> None:
    outcome = one('PiiCount "text" = 0')
    assert outcome.status == "ERROR"
    assert outcome.message.startswith("PII detection not available")

    def broken(texts: list[str | None]) -> list[int]:
        raise RuntimeError("model not loaded")

    result = run('PiiCount "text" = 0, RowCount = 5', pii_counter=broken)
    assert [o.status for o in result.outcomes] == ["ERROR", "PASS"]
    assert "model not loaded" in result.outcomes[0].message
    short = one('PiiCount "text" = 0', pii_counter=lambda texts: [0])
    assert "returned 1 counts for 5 texts" in short.message


def test_duplicate_ratio_normalises_case_and_whitespace() -> None:
    # non-NULL: "Hello world.", "hello   WORLD." (the same), "She said hi", "x" -> 1 - 3/4
    outcome = one('DuplicateRatio "text" < 0.3')
    assert outcome.status == "PASS"
    assert outcome.metrics == {"Column.text.DuplicateRatio": 0.25}
    assert one('DuplicateRatio "text" < 0.2').status == "FAIL"
    # the first four are "hello world" once case and whitespace are normalised; NULL is no
    # value -> 6 values ("" included), 3 distinct
    variants = [
        "Hello  world",
        " hello world ",
        "HELLO\n\tWORLD",
        "hello world\n",
        "other",
        None,
        "",
    ]
    outcome = one('DuplicateRatio "t" = 0.5', pa.table({"t": variants}))
    assert outcome.status == "PASS", outcome.message


def test_token_count_estimate_and_tokenizer() -> None:
    # words and punctuation: "Hello world." 3, "hello   WORLD." 3, "She said hi" 3, NULL 0, "x" 1
    outcome = one('TokenCount "text" between 1 and 3')
    assert outcome.status == "FAIL"
    assert outcome.metrics == {
        "Column.text.TokenCount.Compliance": 0.8,
        "Column.text.MinimumTokens": 0,
        "Column.text.MaximumTokens": 3,
    }
    assert one('TokenCount "text" between 1 and 3 with threshold >= 0.8').status == "PASS"

    def characters(texts: list[str | None]) -> list[int]:
        return [len(t or "") for t in texts]

    # lengths 12, 14, 11, 0, 1 -> 12 and 14 pass
    tokenized = one('TokenCount "text" > 11', token_counter=characters)
    assert tokenized.metrics == {
        "Column.text.TokenCount.Compliance": 0.4,
        "Column.text.MinimumTokens": 0,
        "Column.text.MaximumTokens": 14,
    }


def test_language() -> None:
    table = pa.table(
        {
            "text": [
                "The weather is lovely today and we are going for a walk in the park.",
                "Das Wetter ist heute schön und wir gehen im Park spazieren.",
                "Le temps est magnifique aujourd'hui et nous allons nous promener.",
                "What time does the train to London leave tomorrow morning?",
                None,
            ]
        }
    )
    outcome = one('Language "text" in ["en", "de"]', table)
    assert outcome.status == "FAIL"
    assert outcome.metrics["Column.text.Language.Compliance"] == 0.6
    assert outcome.metrics["Column.text.Language.en"] == 0.4
    assert "Detected: en 2" in outcome.message
    assert one('Language "text" in ["en", "de"] with threshold >= 0.6', table).status == "PASS"
    assert one('Language "text" not in ["fr"] with threshold = 0.8', table).status == "PASS"


OPENAI_OK = {
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris.", "weight": 1},
    ]
}
OPENAI_TOOLS = {
    "messages": [
        {"role": "user", "content": "Weather in Oslo?"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "w"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "3 C"},
        {"role": "assistant", "content": "It is 3 C."},
    ]
}
BEDROCK_CONVERSE = {
    "schemaVersion": "bedrock-conversation-2024",
    "system": [{"text": "You are terse."}],
    "messages": [
        {"role": "user", "content": [{"text": "Capital of France?"}]},
        {"role": "assistant", "content": [{"text": "Paris."}]},
    ],
}
BEDROCK_PROMPT = {"prompt": "Capital of France?", "completion": "Paris."}
BEDROCK_HAIKU = {
    "system": "You are terse.",
    "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}],
}


@pytest.mark.parametrize(
    ("chat_format", "record", "problem"),
    [
        ("openai", OPENAI_OK, None),
        ("openai", OPENAI_TOOLS, None),
        ("openai", {"messages": [{"role": "user", "content": "hi"}]}, "no assistant message"),
        ("openai", {"messages": []}, "'messages' must be a non-empty list"),
        ("openai", {"messages": [{"role": "bot", "content": "x"}]}, "role 'bot' is not one of"),
        (
            "openai",
            {"messages": [{"role": "assistant", "content": "x", "weight": 2}]},
            "weight must be 0 or 1",
        ),
        (
            "openai",
            {"messages": [{"role": "assistant", "content": "x", "mood": "ok"}]},
            "unknown key 'mood'",
        ),
        ("openai", {"messages": [{"role": "assistant", "content": "  "}]}, "has no text content"),
        ("openai", BEDROCK_CONVERSE, "content parts must be objects"),
        ("openai", "{not json", "not valid JSON"),
        ("bedrock", BEDROCK_CONVERSE, None),
        ("bedrock", BEDROCK_PROMPT, None),
        ("bedrock", BEDROCK_HAIKU, None),
        ("bedrock", {"prompt": "x"}, "needs both prompt and completion"),
        ("bedrock", {"prompt": "x", "completion": ""}, "must be non-empty text"),
        ("bedrock", {**BEDROCK_CONVERSE, "schemaVersion": "v1"}, "schemaVersion must be"),
        (
            "bedrock",
            {"messages": [{"role": "assistant", "content": [{"text": "x"}]}]},
            "messages[0].role must be 'user'",
        ),
        (
            "bedrock",
            {"messages": [{"role": "user", "content": [{"text": "x"}]}]},
            "the last message must be from the assistant",
        ),
        ("bedrock", OPENAI_OK, "messages[0].role must be 'user'"),
    ],
)
def test_chat_record_shapes(chat_format: str, record: object, problem: str | None) -> None:
    from curata.quality.rules.chat_format import chat_problem

    for value in (record, json.dumps(record) if not isinstance(record, str) else record):
        found = chat_problem(value, chat_format)
        if problem is None:
            assert found is None
        else:
            assert found is not None and problem in found


def test_valid_chat_format_rule() -> None:
    records = [json.dumps(OPENAI_OK), json.dumps(OPENAI_TOOLS), '{"messages": []}', None]
    table = pa.table({"record": records})
    outcome = one('ValidChatFormat "record" = "openai"', table)
    assert outcome.status == "FAIL"
    assert outcome.metrics == {"Column.record.ValidChatFormat.Compliance": 0.5}
    assert "First failing row (#2 of those checked): 'messages' must be" in outcome.message
    assert one('ValidChatFormat "record" = "openai" with threshold >= 0.5', table).status == "PASS"
    mixed = pa.table({"record": [json.dumps(BEDROCK_PROMPT), json.dumps(OPENAI_OK)]})
    assert one('ValidChatFormat "record" in ["openai", "bedrock"]', mixed).status == "PASS"
    assert one('ValidChatFormat "record" = "bedrock"', mixed).status == "FAIL"
    structs = pa.table({"record": pa.array([BEDROCK_CONVERSE, BEDROCK_CONVERSE])})
    assert one('ValidChatFormat "record" = "bedrock"', structs).status == "PASS"
    assert (
        "Unknown chat format 'anthropic'"
        in one('ValidChatFormat "record" = "anthropic"', table).message
    )


def test_term_group_ratio(tmp_path: Path) -> None:
    table = pa.table({"text": ["She and her sister", "He said hi", "nothing", None]})
    # female: she, her, sister = 3; male: he = 1 -> shares 0.75 / 0.25 -> ratio 1/3
    outcome = one('TermGroupRatio "text" > 0.3', table)
    assert outcome.status == "PASS"
    assert outcome.metrics == pytest.approx(
        {
            "Column.text.TermGroupRatio": 1 / 3,
            "Column.text.TermGroup.female.MentionShare": 0.75,
            "Column.text.TermGroup.male.MentionShare": 0.25,
        }
    )
    assert one('TermGroupRatio "text" > 0.5', table).status == "FAIL"
    groups = {"family": ["sister", "brother"], "speech": ["said", "hi"]}
    custom = one('TermGroupRatio "text" = 0.5', table, term_groups=groups)
    assert custom.status == "PASS", custom.message  # 1 vs 2
    path = tmp_path / "groups.yaml"
    path.write_text("groups:\n  a: [nothing]\n  b: [she, he]\n")
    from_file = one(f'TermGroupRatio "text" "{path}" = 0.5', table)
    assert from_file.status == "PASS", from_file.message
    empty = one('TermGroupRatio "text" > 0.5', pa.table({"text": ["plain words"]}))
    assert empty.status == "ERROR"


def test_class_imbalance_rule() -> None:
    table = pa.table({"g": ["f", "f", "f", "m", None]})
    # f: n_d 3, n_a 1 -> (1 - 3) / 4 = -0.5; m: (3 - 1) / 4 = 0.5 (NULL facets left out)
    outcome = one('ClassImbalance "g" between -0.5 and 0.5', table)
    assert outcome.status == "PASS"
    assert outcome.metrics == {"Column.g.ClassImbalance.f": -0.5, "Column.g.ClassImbalance.m": 0.5}
    assert one('ClassImbalance "g" between -0.2 and 0.2', table).status == "FAIL"
    single = one('ClassImbalance "g" "m" = 0.5', table)
    assert single.status == "PASS" and single.metrics == {"Column.g.ClassImbalance": 0.5}
    assert one('ClassImbalance "g" "x" = 0', table).status == "ERROR"
    assert one('ClassImbalance "g" = 0', pa.table({"g": ["f"]})).status == "ERROR"


# -- safety ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "predicate",
    [
        "1=1) --",
        "id > 0) OR (1=1",
        "id > 0; DROP TABLE x",
        "id IN (SELECT id FROM primary)",
        "1=1 GROUP BY id",
        "id > 0 UNION SELECT 1",
    ],
)
def test_where_clauses_cannot_escape_their_predicate(predicate: str) -> None:
    result = run(f'RowCount = 5 where "{predicate}", Mean "score" = 1.25')
    assert [o.status for o in result.outcomes] == ["ERROR", "PASS"]
    assert "where clause" in result.outcomes[0].message


def test_quotes_in_values_and_column_names() -> None:
    table = pa.table({'we"ird': ["O'Brien", "x"], "it's": [1, 2]})
    assert one(r'IsComplete "we\"ird"', table).status == "PASS"
    values = one(r'ColumnValues "we\"ird" in ["O' + "'" + 'Brien"] with threshold = 0.5', table)
    assert values.status == "PASS", values.message
    assert one('Sum "it\'s" = 3 where "\\"it\'s\\" > 0"', table).status == "PASS"


# -- inputs ---------------------------------------------------------------------------------


def test_readers_relations_and_datasets_are_checked_like_tables() -> None:
    import pyarrow.dataset as ds

    text = (
        'RowCount = 5, IsUnique "id", Mean "score" = 1.25, '
        'Language "text" in ["en"] with threshold >= 0'
    )
    expected = [o.status for o in run(text).outcomes]
    inputs = [
        TABLE.to_reader(max_chunksize=2),
        duckdb.connect().from_arrow(TABLE),
        ds.dataset(TABLE),
    ]
    for data in inputs:
        assert [o.status for o in run(text, data).outcomes] == expected


def test_unknown_input_type_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        evaluate_rules("Rules = [ RowCount > 0 ]", object())


def test_zero_rows() -> None:
    empty = TABLE.slice(0, 0)
    result = run('RowCount = 0, Completeness "lang" > 0.5, IsUnique "id", Mean "score" > 0', empty)
    assert [o.status for o in result.outcomes] == ["PASS", "ERROR", "ERROR", "ERROR"]
    assert "no rows to check" in result.outcomes[1].message
