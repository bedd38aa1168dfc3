"""The rule types curata understands: their parameters, conditions and options.

The parser checks a rule against its entry here, so a misspelt rule type, a missing column or a
condition of the wrong kind is reported at parse time with the rule's line and column.
"""

from __future__ import annotations

from dataclasses import dataclass

# What a rule's condition compares.
NONE = "none"  # no condition: IsComplete "id"
NUMBER = "number"  # a metric: RowCount > 10
VALUE = "value"  # each row's value: numbers, strings, dates, NULL/EMPTY/WHITESPACES_ONLY
DURATION = "duration"  # each row's age: DataFreshness "ts" <= 24 hours
STRING = "string"  # a name: ColumnDataType "x" = "INTEGER", Language "t" in ["en"]


@dataclass(frozen=True)
class RuleSpec:
    """What a rule type takes.

    Attributes:
        name: the rule type, case-sensitive as in DQDL.
        min_params / max_params: how many quoted parameters (None: any number above min).
        condition: what the condition compares (NONE, NUMBER, VALUE, DURATION, STRING).
        threshold: whether ``with threshold`` is allowed (the fraction of rows that must pass).
        where: whether ``where "..."`` is allowed.
        example: one valid rule, shown in error messages.
    """

    name: str
    min_params: int
    max_params: int | None
    condition: str
    threshold: bool
    where: bool
    example: str


_SPECS = (
    RuleSpec("RowCount", 0, 0, NUMBER, False, True, "RowCount > 100"),
    RuleSpec("ColumnCount", 0, 0, NUMBER, False, False, "ColumnCount = 5"),
    RuleSpec("Completeness", 1, 1, NUMBER, False, True, 'Completeness "text" > 0.99'),
    RuleSpec("IsComplete", 1, 1, NONE, False, True, 'IsComplete "id"'),
    RuleSpec("Uniqueness", 1, None, NUMBER, False, True, 'Uniqueness "email" > 0.95'),
    RuleSpec("IsUnique", 1, None, NONE, False, True, 'IsUnique "id"'),
    RuleSpec("IsPrimaryKey", 1, None, NONE, False, True, 'IsPrimaryKey "id"'),
    RuleSpec("ColumnValues", 1, 1, VALUE, True, True, 'ColumnValues "lang" in ["en", "de"]'),
    RuleSpec("ColumnLength", 1, 1, NUMBER, True, True, 'ColumnLength "code" = 5'),
    RuleSpec("DistinctValuesCount", 1, 1, NUMBER, False, True, 'DistinctValuesCount "x" > 3'),
    RuleSpec("Mean", 1, 1, NUMBER, False, True, 'Mean "score" between 0 and 1'),
    RuleSpec("Sum", 1, 1, NUMBER, False, True, 'Sum "tokens" < 1000000'),
    RuleSpec("StandardDeviation", 1, 1, NUMBER, False, True, 'StandardDeviation "x" < 2'),
    RuleSpec("ColumnExists", 1, 1, NONE, False, False, 'ColumnExists "text"'),
    RuleSpec("ColumnDataType", 1, 1, STRING, True, True, 'ColumnDataType "id" = "INTEGER"'),
    RuleSpec(
        "CustomSql",
        1,
        1,
        NUMBER,
        False,
        False,
        'CustomSql "select count(*) from primary where score < 0" = 0',
    ),
    RuleSpec(
        "ReferentialIntegrity",
        2,
        2,
        NUMBER,
        False,
        True,
        'ReferentialIntegrity "user_id" "users.id" = 1.0',
    ),
    RuleSpec("DataFreshness", 1, 1, DURATION, True, True, 'DataFreshness "ts" <= 24 hours'),
    # Text rules of curata (not in Glue's DQDL).
    RuleSpec("PiiCount", 1, 1, NUMBER, False, True, 'PiiCount "text" = 0'),
    RuleSpec("DuplicateRatio", 1, 1, NUMBER, False, True, 'DuplicateRatio "text" < 0.05'),
    RuleSpec("TokenCount", 1, 1, NUMBER, True, True, 'TokenCount "text" between 1 and 4096'),
    RuleSpec("Language", 1, 1, STRING, True, True, 'Language "text" in ["en", "de"]'),
    RuleSpec("ValidChatFormat", 1, 1, STRING, True, True, 'ValidChatFormat "record" = "openai"'),
    # Bias rules of curata.
    RuleSpec("TermGroupRatio", 1, 2, NUMBER, False, True, 'TermGroupRatio "text" > 0.5'),
    RuleSpec(
        "ClassImbalance", 1, 2, NUMBER, False, True, 'ClassImbalance "gender" between -0.2 and 0.2'
    ),
)

RULE_SPECS: dict[str, RuleSpec] = {spec.name: spec for spec in _SPECS}
"""Every supported rule type by name."""

# Rule types of Glue's DQDL that curata does not evaluate, with the reason shown to the user.
UNSUPPORTED = {
    "AggregateMatch": "it compares two datasets' aggregates; use CustomSql on each",
    "ColumnCorrelation": "not implemented yet; use CustomSql with corr(a, b)",
    "ColumnNamesMatchPattern": "not implemented yet",
    "DatasetMatch": "it needs a key mapping between two datasets; use ReferentialIntegrity",
    "DetectAnomalies": "it needs the history of earlier runs",
    "Entropy": "not implemented yet",
    "FileFreshness": "curata checks tables, not files",
    "FileMatch": "curata checks tables, not files",
    "FileSize": "curata checks tables, not files",
    "FileUniqueness": "curata checks tables, not files",
    "RowCountMatch": "it compares two datasets; use CustomSql or RowCount on each",
    "SchemaMatch": "it compares two datasets' schemas",
    "UniqueValueRatio": "not implemented yet; use DistinctValuesCount or Uniqueness",
}

# Values ValidChatFormat accepts.
CHAT_FORMATS = ("openai", "bedrock")
