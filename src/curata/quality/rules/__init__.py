"""Data quality rules: a subset of AWS Glue's DQDL, evaluated with DuckDB.

>>> import pyarrow as pa
>>> from curata.quality.rules import evaluate_rules, parse_rules
>>> rules = parse_rules('''Rules = [
...     RowCount > 1,
...     IsComplete "text",
...     ColumnValues "lang" in ["en", "de"],
... ]''')
>>> table = pa.table({"text": ["hi", None, "hallo"], "lang": ["en", "en", "de"]})
>>> result = evaluate_rules(rules, table)
>>> [o.status for o in result.outcomes], round(result.score, 2)
(['PASS', 'FAIL', 'PASS'], 0.67)

Aggregate rules over the same table are computed in one scan. See ``docs/quality.md`` for the
supported rules, operators and result format.
"""

from curata.quality.rules.catalog import RULE_SPECS
from curata.quality.rules.evaluate import evaluate_rules
from curata.quality.rules.model import Composite, Condition, Rule, RuleSet, Value, ValueKind
from curata.quality.rules.parser import parse_rules
from curata.quality.rules.result import (
    ERROR,
    FAIL,
    PASS,
    RESULT_SCHEMA,
    RuleOutcome,
    RulesResult,
)

__all__ = [
    "ERROR",
    "FAIL",
    "PASS",
    "RESULT_SCHEMA",
    "RULE_SPECS",
    "Composite",
    "Condition",
    "Rule",
    "RuleOutcome",
    "RuleSet",
    "RulesResult",
    "Value",
    "ValueKind",
    "evaluate_rules",
    "parse_rules",
]
