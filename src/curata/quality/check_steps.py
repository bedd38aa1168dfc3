"""Pipeline steps that check the rows passing through: ``rules.check``, ``rules.flag`` and
``bias.check``.

``rules.check`` and ``bias.check`` see the whole input at once (they are not row-wise: a rule
such as ``IsUnique`` or a class imbalance is a property of all rows), pass it through
unchanged, and act on a failed check as their ``on_fail`` says: ``fail`` (default) stops the
run with :class:`~curata.errors.QualityGateFailed`, so nothing is published; ``warn`` logs the
failures on the ``curata.quality`` logger and lets the run publish::

    steps:
      - step: rules.check
        params:
          rules_file: rules/tickets.dqdl      # or rules: 'Rules = [ RowCount > 0 ]'
          on_fail: fail
      - step: bias.check
        params: {facet: language, label: status, positive: [solved], max_ci: 0.9}

``rules.flag`` is row-wise (cached per row): it adds a column listing the row-level rules
(``IsComplete``, ``ColumnValues``, ``ColumnLength``) each row fails, for a pipeline gate to
quarantine those rows::

      - step: rules.flag
        id: flag
        params: {rules: 'Rules = [ ColumnValues "language" in ["en", "de"] ]'}
    gates:
      - {name: rules, after: flag, where: "len(failed_rules) > 0", action: quarantine}
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from curata.duck import connect as duck_connect
from curata.errors import InvalidInput, NotFound, QualityGateFailed
from curata.pipeline.step import Step, register_step

if TYPE_CHECKING:
    import pyarrow as pa

    from curata.quality.rules import Rule, RuleSet

logger = logging.getLogger("curata.quality")

OnFail = Literal["fail", "warn"]
_MAX_SHOWN = 5


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _RulesSource(_Strict):
    rules: str | None = Field(None, description="DQDL text: Rules = [ ... ]")
    rules_file: str | None = Field(
        None, description="a .dqdl file (a relative path is read from the working directory)"
    )

    @model_validator(mode="after")
    def _one_source(self) -> _RulesSource:
        if (self.rules is None) == (self.rules_file is None):
            raise ValueError("give either `rules` (DQDL text) or `rules_file`, not both")
        return self


class RulesCheckParams(_RulesSource):
    """Parameters of the ``rules.check`` step."""

    on_fail: OnFail = Field("fail", description="fail the run, or warn and go on")


@register_step
class RulesCheckStep(Step[RulesCheckParams]):
    """Evaluate DQDL rules on all rows; on a failed (or erring) rule, fail the run or warn.

    Rows pass through unchanged. ``ReferentialIntegrity`` is not available here: a step
    does not read other datasets (check the published output with ``curata check``).
    """

    name = "rules.check"
    Params = RulesCheckParams
    row_wise = False

    def __init__(self, params: Any = None, *, id: str | None = None) -> None:
        super().__init__(params, id=id)
        # Parsed now, so a bad rules file stops the pipeline before its run starts.
        self._ruleset = _load(self.params, self.id)

    def process(self, batch: pa.RecordBatch | pa.Table) -> pa.Table:
        import pyarrow as pa

        from curata.quality.checks import count_pii
        from curata.quality.rules import PASS, evaluate_rules

        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        result = evaluate_rules(self._ruleset, table, pii_counter=count_pii)
        bad = [o for o in result.outcomes if o.status != PASS]
        if bad:
            problems = [f"{o.rule}: {o.status}: {o.message}" for o in bad]
            _react(
                self.id,
                self.params.on_fail,
                f"{len(bad)} of {len(result.outcomes)} rules did not pass on {table.num_rows:,} "
                f"rows (score {result.score:.2f})",
                problems,
            )
        return table

    def column_lineage(self, input_columns: list[str]) -> dict[str, list[str]]:
        return {c: [c] for c in input_columns}


def _load(params: _RulesSource, step: str) -> RuleSet:
    from curata.quality.checks import load_ruleset
    from curata.quality.rules import parse_rules

    if params.rules is not None:
        ruleset = load_ruleset(parse_rules(params.rules, source=f"step {step} rules"))
    else:
        path = Path(str(params.rules_file))
        if not path.is_file():
            raise NotFound(
                f"Step {step!r}: the rules file {path} does not exist.",
                hint=f"A relative path is read from the working directory, {Path.cwd()}.",
            )
        ruleset = load_ruleset(path)
    joins = [r for r in ruleset.leaves() if r.type == "ReferentialIntegrity"]
    if joins:
        raise InvalidInput(
            f"Step {step!r}: {joins[0].text} cannot run in a pipeline step, which reads no "
            "other dataset.",
            hint="Check the published output instead: curata check OUTPUT --rules FILE.",
        )
    return ruleset


def _react(step_id: str, on_fail: str, summary: str, problems: list[str]) -> None:
    shown = "; ".join(problems[:_MAX_SHOWN])
    more = f"; and {len(problems) - _MAX_SHOWN} more" if len(problems) > _MAX_SHOWN else ""
    message = f"Step {step_id!r}: {summary}: {shown}{more}"
    if on_fail == "fail":
        raise QualityGateFailed(
            message, hint="Fix the data, or set `on_fail: warn` on the step to publish anyway."
        )
    logger.warning("%s", message)


ROW_RULES = ("IsComplete", "ColumnValues", "ColumnLength")
"""Rule types ``rules.flag`` judges row by row."""


class RulesFlagParams(_RulesSource):
    """Parameters of the ``rules.flag`` step."""

    into: str = Field("failed_rules", description="the column that lists each row's failures")


@register_step
class RulesFlagStep(Step[RulesFlagParams]):
    """Add a column listing the rules each row fails (``[]`` when it passes them all), for a
    gate to quarantine: ``where: "len(failed_rules) > 0"``, ``action: quarantine``.

    Only rules about one row's own values: ``IsComplete``, ``ColumnValues`` and
    ``ColumnLength``, with ``where`` but without ``with threshold`` (a share of rows is not a
    property of one row) and without ``now()`` (cached results must not depend on the time).
    Row-wise, so results are cached per row.
    """

    name = "rules.flag"
    Params = RulesFlagParams

    def __init__(self, params: Any = None, *, id: str | None = None) -> None:
        super().__init__(params, id=id)
        self._ruleset = _load(self.params, self.id)
        for rule in self._ruleset.leaves():
            _check_row_rule(rule, self.id)
        if len(list(self._ruleset.leaves())) != len(self._ruleset):
            raise InvalidInput(f"Step {self.id!r}: composite rules cannot flag rows; list them.")
        self._sql: dict[pa.Schema, str] = {}

    def process(self, batch: pa.RecordBatch | pa.Table) -> pa.Table:
        import pyarrow as pa

        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        sql = self._sql.get(table.schema)
        if sql is None:
            sql = self._sql[table.schema] = self._flag_sql(table.schema)
        con = duck_connect()
        try:
            con.register("batch", table)
            flags = con.sql(sql).to_arrow_table().column(0)
        finally:
            con.close()
        return table.append_column(pa.field(self.params.into, pa.list_(pa.string())), flags)

    def _flag_sql(self, schema: pa.Schema) -> str:
        """``SELECT [failed rule texts] FROM batch``, one row per input row, in order."""
        from curata.quality.rules.conditions import numeric_sql, value_sql
        from curata.quality.rules.sql import (
            family,
            find_column,
            quote_ident,
            quote_string,
            where_predicate,
        )

        con = duck_connect()
        cases = []
        for rule in self._ruleset.leaves():
            name = find_column(schema.names, rule.params[0])
            if name is None:
                raise InvalidInput(
                    f"Step {self.id!r}: {rule.text}: no column '{rule.params[0]}'; the columns "
                    f"are: {', '.join(schema.names)}."
                )
            col = quote_ident(name)
            if rule.type == "IsComplete":
                passing = f"{col} IS NOT NULL"
            elif rule.type == "ColumnValues":
                assert rule.condition is not None
                passing = value_sql(rule.condition, col, family(schema.field(name).type), 0.0)
            else:
                assert rule.condition is not None
                passing = numeric_sql(rule.condition, f"length(coalesce({col}, ''))")
            failing = f"NOT coalesce({passing}, false)"
            if rule.where is not None:
                failing = f"coalesce({where_predicate(con, rule.where)}, false) AND {failing}"
            cases.append(f"CASE WHEN {failing} THEN {quote_string(rule.text)} END")
        con.close()
        return f"SELECT list_filter([{', '.join(cases)}], lambda x: x IS NOT NULL) FROM batch"

    def column_lineage(self, input_columns: list[str]) -> dict[str, list[str]]:
        judged = sorted({r.params[0] for r in self._ruleset.leaves()} & set(input_columns))
        return {c: [c] for c in input_columns} | {self.params.into: judged}


def _check_row_rule(rule: Rule, step: str) -> None:
    from curata.quality.rules import ValueKind

    problem = None
    if rule.type not in ROW_RULES:
        problem = f"{rule.type} is about all rows, not one; check it with rules.check"
    elif rule.threshold is not None:
        problem = "`with threshold` judges a share of rows; a row either passes or is flagged"
    elif rule.condition is not None and any(v.kind is ValueKind.NOW for v in rule.condition.values):
        problem = "now() changes with time, and flags are cached per row"
    if problem:
        raise InvalidInput(
            f"Step {step!r}: {rule.text} cannot flag rows: {problem}.",
            hint=f"rules.flag takes {', '.join(ROW_RULES)} rules.",
        )


class BiasCheckParams(_Strict):
    """Parameters of the ``bias.check`` step."""

    column: str | None = Field(None, description="text column whose term groups are counted")
    groups: dict[str, list[str]] | None = Field(
        None, description="term groups {name: [term, ...]} (default: female / male terms)"
    )
    groups_file: str | None = Field(None, description="YAML file of term groups")
    min_ratio: float | None = Field(
        None, ge=0, le=1, description="least / most mentioned group share must be at least this"
    )
    facet: str | None = Field(None, description="column of the sensitive attribute")
    label: str | None = Field(None, description="column of the labels")
    positive: list[Any] | None = Field(
        None, description="positive label values (default: true, for a boolean label)"
    )
    max_ci: float | None = Field(
        None, ge=0, le=1, description="|class imbalance| of every facet value must be at most"
    )
    max_dpl: float | None = Field(
        None, ge=0, le=1, description="|DPL| of every facet value must be at most this"
    )
    on_fail: OnFail = Field("fail", description="fail the run, or warn and go on")

    @model_validator(mode="after")
    def _consistent(self) -> BiasCheckParams:
        if self.groups is not None and self.groups_file is not None:
            raise ValueError("give either `groups` or `groups_file`, not both")
        if (self.label is None) != (self.facet is None):
            raise ValueError("label bias needs both `label` and `facet`")
        if self.min_ratio is not None and self.column is None:
            raise ValueError("`min_ratio` needs the text `column` to count terms in")
        if (self.max_ci is not None or self.max_dpl is not None) and self.facet is None:
            raise ValueError("`max_ci` and `max_dpl` need `facet` and `label`")
        if self.min_ratio is None and self.max_ci is None and self.max_dpl is None:
            raise ValueError("give a threshold: `min_ratio`, `max_ci` or `max_dpl`")
        return self


@register_step
class BiasCheckStep(Step[BiasCheckParams]):
    """Check term-group representation and label balance on all rows against thresholds;
    on a miss, fail the run or warn. Rows pass through unchanged."""

    name = "bias.check"
    Params = BiasCheckParams
    row_wise = False

    def __init__(self, params: Any = None, *, id: str | None = None) -> None:
        super().__init__(params, id=id)
        from curata.quality.bias import check_groups, load_groups

        p = self.params
        self._groups = (
            load_groups(p.groups_file)
            if p.groups_file is not None
            else (check_groups(p.groups, f"step {self.id!r}: groups") if p.groups else None)
        )

    def process(self, batch: pa.RecordBatch | pa.Table) -> pa.Table:
        import pyarrow as pa

        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        problems = self._representation(table) + self._labels(table)
        if problems:
            _react(self.id, self.params.on_fail, f"bias over {table.num_rows:,} rows", problems)
        return table

    def _representation(self, table: pa.Table) -> list[str]:
        from curata.quality.bias import representation

        p = self.params
        if p.column is None or p.min_ratio is None:
            return []
        _require(table, p.column, self.id)
        rep = representation(table.column(p.column), self._groups)
        if rep.ratio is None:
            return [f"no term of any group occurs in {p.column}, expected a ratio >= {p.min_ratio}"]
        if rep.ratio < p.min_ratio:
            shares = ", ".join(f"{g.group} {g.mention_share:.0%}" for g in rep.groups)
            return [
                f"representation ratio in {p.column} is {rep.ratio:.3f} ({shares}), "
                f"expected >= {p.min_ratio}"
            ]
        return []

    def _labels(self, table: pa.Table) -> list[str]:
        import pyarrow as pa

        from curata.quality.bias import label_bias

        p = self.params
        if p.facet is None or p.label is None:
            return []
        _require(table, p.facet, self.id)
        _require(table, p.label, self.id)
        positive: Any = p.positive
        if not positive:
            if not pa.types.is_boolean(table.schema.field(p.label).type):
                raise InvalidInput(
                    f"Step {self.id!r}: which values of '{p.label}' are positive?",
                    hint="Set `positive: [...]` in the step's params.",
                )
            positive = True
        result = label_bias(table, p.facet, p.label, positive)
        problems = []
        for f in result.facets:
            for metric, bound in (("ci", p.max_ci), ("dpl", p.max_dpl)):
                value = getattr(f, metric)
                if bound is not None and value is not None and abs(value) > bound:
                    problems.append(
                        f"{metric.upper()} of {p.facet}={f.value} is {value:.3f}, "
                        f"expected within ±{bound}"
                    )
        return problems

    def column_lineage(self, input_columns: list[str]) -> dict[str, list[str]]:
        return {c: [c] for c in input_columns}


def _require(table: pa.Table, column: str, step: str) -> None:
    if column not in table.column_names:
        raise InvalidInput(
            f"Step {step!r}: no column '{column}' in the input; "
            f"the columns are: {', '.join(table.column_names)}."
        )
