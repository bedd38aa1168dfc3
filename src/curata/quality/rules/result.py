"""The outcome of evaluating a ruleset: one row per top-level rule, and a score."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

PASS = "PASS"
FAIL = "FAIL"
ERROR = "ERROR"

RESULT_SCHEMA = pa.schema(
    [
        pa.field("position", pa.int32(), nullable=False),
        pa.field("rule", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("message", pa.string(), nullable=False),
        pa.field(
            "metrics",
            pa.list_(
                pa.struct(
                    [pa.field("name", pa.string(), nullable=False), pa.field("value", pa.float64())]
                )
            ),
            nullable=False,
        ),
    ]
)
"""The schema of :meth:`RulesResult.to_table`: one row per top-level rule."""


@dataclass(frozen=True)
class RuleOutcome:
    """The outcome of one top-level rule.

    Attributes:
        rule: the rule as written (whitespace collapsed).
        status: ``PASS``, ``FAIL`` or ``ERROR`` (the rule could not be evaluated).
        metrics: what was measured, named as AWS Glue names them
            (``Column.text.Completeness``, ``Dataset.*.RowCount``).
        message: what was found and what was expected, for a person.
    """

    rule: str
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The outcome as plain JSON-ready values (a non-finite metric becomes None)."""
        return {
            "rule": self.rule,
            "status": self.status,
            "metrics": {k: _json_number(v) for k, v in self.metrics.items()},
            "message": self.message,
        }


@dataclass(frozen=True)
class RulesResult:
    """Every rule's outcome, in the order the rules were written.

    Attributes:
        outcomes: one per top-level rule (a composite rule is one outcome).
        score: the fraction of rules that passed (1.0 for an empty ruleset).
    """

    outcomes: tuple[RuleOutcome, ...]

    @property
    def score(self) -> float:
        """Passed rules / all rules."""
        if not self.outcomes:
            return 1.0
        return sum(o.status == PASS for o in self.outcomes) / len(self.outcomes)

    @property
    def passed(self) -> bool:
        """True when every rule passed."""
        return all(o.status == PASS for o in self.outcomes)

    def count(self, status: str) -> int:
        """How many rules ended with ``status``."""
        return sum(o.status == status for o in self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON-ready values."""
        return {
            "score": self.score,
            "passed": self.count(PASS),
            "failed": self.count(FAIL),
            "errors": self.count(ERROR),
            "total": len(self.outcomes),
            "outcomes": [o.to_dict() for o in self.outcomes],
        }

    def to_table(self) -> pa.Table:
        """One row per rule (schema :data:`RESULT_SCHEMA`), ready to store as a report dataset."""
        rows = {
            "position": list(range(len(self.outcomes))),
            "rule": [o.rule for o in self.outcomes],
            "status": [o.status for o in self.outcomes],
            "message": [o.message for o in self.outcomes],
            "metrics": [
                [{"name": k, "value": v} for k, v in o.metrics.items()] for o in self.outcomes
            ],
        }
        return pa.table(rows, schema=RESULT_SCHEMA)


def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None
