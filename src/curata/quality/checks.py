"""Quality checks of dataset versions in a lake, with their results stored as reports.

``check_dataset`` evaluates DQDL rules over a version's Lance files in place (no copy into
memory), resolving ``ReferentialIntegrity`` references as dataset refs of the same lake and
counting PII with :func:`curata.quality.pii.detect_pii_batch`; ``bias_dataset`` measures
term-group representation and label bias. Each stores its result as the next version of the
report dataset ``NAME.check`` / ``NAME.bias``, published by a run that read the checked
version, so lineage shows which checks a version went through::

    result = check_dataset(lake, "tickets@prod", "rules/tickets.dqdl")
    result.score, result.passed, result.report.ref      # 0.89, False, 'tickets.check@4'
    result.write_html("check.html")
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from curata.errors import InvalidInput, NotFound
from curata.quality.bias import (
    FacetBias,
    LabelBiasResult,
    RepresentationResult,
    TermCounter,
    label_bias,
    load_groups,
)
from curata.quality.html import Bars, Block, Summary, Table, write_html
from curata.quality.reports import StoredReport, store_report
from curata.quality.rules import ERROR, FAIL, PASS, RuleSet, RulesResult, evaluate_rules
from curata.quality.rules import parse_rules as _parse_rules
from curata.textfiles import read_text_file

if TYPE_CHECKING:
    from datetime import datetime

    from curata.lake import Lake
    from curata.lake.snapshot import Snapshot

__all__ = [
    "BIAS_SCHEMA",
    "BiasResult",
    "CheckResult",
    "RulesSource",
    "bias_dataset",
    "check_dataset",
    "count_pii",
    "load_ruleset",
    "max_abs_metric",
]

RulesSource = RuleSet | str | Path
"""Parsed rules, DQDL text (anything holding ``[``), or the path of a ``.dqdl`` file."""

# Metrics that are shares of rows in [0, 1]: the ones worth a bar in the HTML report.
_SHARE_METRICS = (
    "Compliance",
    "Completeness",
    "Uniqueness",
    "ReferentialIntegrity",
    "TermGroupRatio",
)
_MAX_LISTED = 20


def load_ruleset(rules: RulesSource) -> RuleSet:
    """Parse rules given as a :class:`RuleSet`, DQDL text or a file path.

    A string holding ``[`` is DQDL text (every document does, and paths hardly ever); any
    other string is a path.

    Raises:
        NotFound: the file does not exist.
        InvalidInput: the file cannot be read, does not parse (``file:line:column: ...``) or
            holds no rule.
    """
    if isinstance(rules, RuleSet):
        ruleset = rules
    elif isinstance(rules, str) and "[" in rules:
        ruleset = _parse_rules(rules)
    else:
        example = 'A rules file holds DQDL: Rules = [ RowCount > 0, IsComplete "id" ].'
        text = read_text_file(rules, "rules", example=example)
        ruleset = _parse_rules(text, source=str(rules))
    if not len(ruleset):
        raise InvalidInput(
            f"{ruleset.source} has no rules: there is nothing to check.",
            hint='List them inside the brackets: Rules = [ RowCount > 0, IsComplete "id" ].',
        )
    return ruleset


def count_pii(texts: list[str | None]) -> list[int]:
    """PII spans per text, for the ``PiiCount`` rule (default entities and threshold)."""
    from curata.quality.pii import detect_pii_batch

    return [len(spans) for spans in detect_pii_batch(texts)]


# -- rules --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    """The outcome of :func:`check_dataset`.

    Attributes:
        checked: the exact version checked (``tickets@3``).
        rows: its row count.
        rules: one outcome per top-level rule, and the score.
        source: where the rules came from (a file name, or ``<rules>``).
        references: ReferentialIntegrity names -> the versions they resolved to.
        report: where the outcomes were stored (None with ``store=False``).
    """

    checked: str
    rows: int
    rules: RulesResult
    source: str
    references: dict[str, str] = field(default_factory=dict)
    report: StoredReport | None = None

    @property
    def score(self) -> float:
        """Passed rules / all rules."""
        return self.rules.score

    @property
    def passed(self) -> bool:
        """True when every rule passed."""
        return self.rules.passed

    @property
    def status(self) -> str:
        """``PASS`` when every rule passed, else ``FAIL``."""
        return PASS if self.passed else FAIL

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, as ``curata check --json`` prints it."""
        counts = self.rules.to_dict()
        return {
            "checked": self.checked,
            "rows": self.rows,
            "source": self.source,
            "status": self.status,
            "score": self.score,
            "passed": counts["passed"],
            "failed": counts["failed"],
            "errors": counts["errors"],
            "total": counts["total"],
            "rules": [
                {
                    "rule": o["rule"],
                    "outcome": o["status"],
                    "metrics": o["metrics"],
                    "message": o["message"],
                }
                for o in counts["outcomes"]
            ],
            "references": self.references,
            "report": self.report.ref if self.report else None,
            "run_id": self.report.run_id if self.report else None,
            "report_created": self.report.created if self.report else None,
        }

    def html_blocks(self) -> list[Block]:
        """The HTML report: summary, bars of the rules' shares of passing rows, the rules."""
        summary = Summary(
            [
                ("score", f"{self.score:.2f}"),
                ("passed", str(self.rules.count(PASS))),
                ("failed", str(self.rules.count(FAIL))),
                ("errors", str(self.rules.count(ERROR))),
                ("rows", f"{self.rows:,}"),
            ],
            status=self.status,
        )
        labels, values, statuses = [], [], []
        for outcome in self.rules.outcomes:
            share = next(
                (v for k, v in outcome.metrics.items() if k.rsplit(".", 1)[-1] in _SHARE_METRICS),
                None,
            )
            if share is not None:
                labels.append(outcome.rule)
                values.append(float(share))
                statuses.append(outcome.status)
        rows = [
            [o.rule, o.status, o.message, _metrics_text(o.metrics)] for o in self.rules.outcomes
        ]
        return [
            summary,
            Bars("Share of rows that pass", labels, values, statuses=statuses),
            Table("Rules", ["rule", "outcome", "message", "metrics"], rows),
        ]

    def write_html(self, path: str | Path) -> Path:
        """Write the self-contained HTML report; returns its path."""
        subtitle = f"{self.rows:,} rows, rules from {self.source}"
        return write_html(path, f"Check of {self.checked}", self.html_blocks(), subtitle=subtitle)


def _metrics_text(metrics: Mapping[str, float]) -> str:
    return ", ".join(f"{k} = {v:.4g}" for k, v in metrics.items())


def check_dataset(
    lake: Lake,
    ref: str,
    rules: RulesSource,
    now: datetime | None = None,
    *,
    store: bool = True,
    term_groups: Mapping[str, Sequence[str]] | None = None,
) -> CheckResult:
    """Evaluate DQDL rules on a dataset version and store the outcomes as a report.

    The rules run over the version's Lance files in place (aggregate rules in one scan).
    ``ReferentialIntegrity "user_id" "users@prod.id"`` reads the version of ``users`` that the
    reference names, in the same lake; ``PiiCount`` uses curata's PII detector.

    Args:
        lake: the lake.
        ref: the version to check (``tickets``, ``tickets@3``, ``tickets@prod``).
        rules: a ``.dqdl`` file, DQDL text, or parsed rules.
        now: the time ``DataFreshness`` and ``now()`` measure from (default: now).
        store: store the outcomes as the next version of ``NAME.check`` (default).
        term_groups: ``{group: [term, ...]}`` for ``TermGroupRatio`` (default: female / male).

    Returns:
        The outcomes, score, and the stored report.

    Raises:
        NotFound: the rules file or the version does not exist.
        InvalidInput: the rules do not parse, or no rule could be evaluated (each rule's
            reason is in the hint); nothing is stored then.
    """
    ruleset = load_ruleset(rules)
    snapshot = lake.ref(ref)
    references: dict[str, str] = {}
    result = evaluate_rules(
        ruleset,
        snapshot.lance_dataset(),
        resolve=_resolver(lake, references),
        pii_counter=count_pii,
        term_groups=term_groups,
        now=now,
    )
    if result.count(ERROR) == len(result.outcomes):
        reasons = "\n".join(f"  {o.rule}: {o.message}" for o in result.outcomes)
        raise InvalidInput(
            f"No rule of {ruleset.source} could be evaluated on {snapshot.ref}.",
            hint=reasons,
        )
    checked = CheckResult(snapshot.ref, snapshot.commit.rows, result, ruleset.source, references)
    if not store:
        return checked
    report = store_report(
        lake,
        kind="check",
        checked=snapshot.ref,
        rows=result.to_table(),
        params={
            "rules": ruleset.source,
            "rules_sha256": hashlib.sha256(ruleset.text.encode()).hexdigest(),
            "rules_text": ruleset.text,
            "references": references,
            "now": None if now is None else now.isoformat(),
        },
        metrics={k: v for k, v in checked.to_dict().items() if k in _HEADLINE},
        message=f"{ruleset.source}: {result.count(PASS)} of {len(result.outcomes)} rules passed "
        f"(score {result.score:.2f})",
        also_read=list(references.values()),
    )
    return replace(checked, report=report)


_HEADLINE = ("status", "score", "passed", "failed", "errors", "total", "rows")


def _resolver(lake: Lake, seen: dict[str, str]) -> Callable[[str], Any]:
    """Reads a ReferentialIntegrity reference as a dataset ref of ``lake``; records what it
    resolved to in ``seen``."""

    def resolve(name: str) -> Any:
        try:
            snapshot = lake.ref(name)
        except NotFound as err:
            dataset = name.partition("@")[0]
            if lake.has_dataset(dataset):  # the version is missing: the hint lists those
                raise NotFound(f"{err.message} {err.hint or ''}".strip()) from err
            names = [d.name for d in lake.datasets() if d.kind != "report"]
            listed = ", ".join(names[:_MAX_LISTED]) + (", ..." if len(names) > _MAX_LISTED else "")
            raise NotFound(f"{err.message} Datasets in this lake: {listed or '(none)'}.") from err
        seen[name] = snapshot.ref
        return snapshot.lance_dataset()

    return resolve


# -- bias ---------------------------------------------------------------------------------------

BIAS_SCHEMA = pa.schema(
    [
        pa.field("kind", pa.string(), nullable=False),  # group | facet
        pa.field("column", pa.string(), nullable=False),  # the text column, or the facet column
        pa.field("value", pa.string(), nullable=False),  # the group, or the facet value
        pa.field("mentions", pa.int64()),
        pa.field("mention_share", pa.float64()),
        pa.field("rows", pa.int64()),
        pa.field("row_share", pa.float64()),
        *(pa.field(n, pa.int64()) for n in ("n_d", "n_a")),
        *(
            pa.field(n, pa.float64())
            for n in ("ci", "q_d", "q_a", "dpl", "kl", "js", "lp", "tvd", "ks")
        ),
        pa.field("message", pa.string(), nullable=False),
    ]
)
"""One row per term group and per facet value, as stored in ``NAME.bias``."""

LABEL_METRICS = ("ci", "dpl", "kl", "js", "lp", "tvd", "ks")


@dataclass(frozen=True)
class BiasResult:
    """The outcome of :func:`bias_dataset`.

    Attributes:
        checked: the exact version measured.
        rows: its row count.
        column: the text column whose term groups were counted, if any.
        representation: term-group representation in ``column``.
        labels: label bias per facet value.
        report: where the rows were stored (None with ``store=False``).
    """

    checked: str
    rows: int
    column: str | None
    representation: RepresentationResult | None
    labels: LabelBiasResult | None
    report: StoredReport | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, as ``curata bias --json`` prints it."""
        return {
            "checked": self.checked,
            "rows": self.rows,
            "column": self.column,
            "representation": self.representation.to_dict() if self.representation else None,
            "labels": self.labels.to_dict() if self.labels else None,
            "report": self.report.ref if self.report else None,
            "run_id": self.report.run_id if self.report else None,
            "report_created": self.report.created if self.report else None,
        }

    def to_table(self) -> pa.Table:
        """The report's rows (schema :data:`BIAS_SCHEMA`)."""
        rows: list[dict[str, Any]] = []
        if self.representation is not None and self.column is not None:
            for g in self.representation.groups:
                entry = {"kind": "group", "column": self.column, "value": g.group, "message": ""}
                rows.append(entry | _fields(g, ("mentions", "mention_share", "rows", "row_share")))
        if self.labels is not None:
            for f in self.labels.facets:
                entry = {"kind": "facet", "column": self.labels.facet, "value": str(f.value)}
                names = ("n_d", "n_a", "q_d", "q_a", *LABEL_METRICS, "message")
                rows.append(entry | _fields(f, names))
        return pa.Table.from_pylist(rows, schema=BIAS_SCHEMA)

    def html_blocks(self) -> list[Block]:
        """The HTML report: figures, mention shares per group, label metrics per facet value."""
        items = [("rows", f"{self.rows:,}")]
        blocks: list[Block] = []
        rep = self.representation
        if rep is not None:
            ratio = "-" if rep.ratio is None else f"{rep.ratio:.2f}"
            items.append(("representation ratio", ratio))
            groups = list(rep.groups)
            blocks.append(
                Bars(
                    f"Share of mentions in {self.column}",
                    [g.group for g in groups],
                    [g.mention_share for g in groups],
                )
            )
            blocks.append(
                Table(
                    "Term groups",
                    ["group", "mentions", "mention share", "rows", "row share"],
                    [[g.group, g.mentions, g.mention_share, g.rows, g.row_share] for g in groups],
                    note="ratio = least mentioned share / most mentioned share (1 is balanced)",
                )
            )
        if self.labels is not None:
            lb = self.labels
            items.append((f"values of {lb.facet}", str(len(lb.facets))))
            values = [str(f.value) for f in lb.facets]
            rows = [float(f.n_d) for f in lb.facets]
            blocks.append(Bars(f"Rows per value of {lb.facet}", values, rows))
            positives = [(str(f.value), f.q_d) for f in lb.facets if f.q_d is not None]
            blocks.append(
                Bars(
                    f"Share of positive {lb.label} per value of {lb.facet}",
                    [v for v, _ in positives],
                    [float(q) for _, q in positives],
                )
            )
            blocks.append(
                Table(
                    f"Label {lb.label} (positive: {', '.join(map(str, lb.positive))}) "
                    f"by {lb.facet}",
                    ["value", "n_d", "n_a", *(m.upper() for m in LABEL_METRICS), "message"],
                    [[str(f.value), f.n_d, f.n_a, *_label_cells(f), f.message] for f in lb.facets],
                    note="Each value d against all other rows a (SageMaker Clarify): "
                    "CI = (n_a - n_d) / (n_a + n_d); DPL = q_a - q_d.",
                )
            )
        return [Summary(items), *blocks]

    def write_html(self, path: str | Path) -> Path:
        """Write the self-contained HTML report; returns its path."""
        return write_html(path, f"Bias of {self.checked}", self.html_blocks())


def _label_cells(facet: FacetBias) -> list[float | None]:
    return [getattr(facet, m) for m in LABEL_METRICS]


def _fields(obj: Any, names: Sequence[str]) -> dict[str, Any]:
    return {n: getattr(obj, n) for n in names}


def bias_dataset(
    lake: Lake,
    ref: str,
    *,
    column: str | None = None,
    groups_file: str | Path | None = None,
    label: str | None = None,
    facet: str | None = None,
    positive: Any = None,
    groups: Mapping[str, Sequence[str]] | None = None,
    store: bool = True,
) -> BiasResult:
    """Measure bias in a dataset version and store it as a report (``NAME.bias``).

    Args:
        lake: the lake.
        ref: the version to measure.
        column: a text column: how often each term group is mentioned in it.
        groups_file: YAML ``groups: {name: [term, ...]}`` (default: female / male terms).
        label: the label column, with ``facet``: Clarify's CI, DPL, KL, JS, LP, TVD, KS of
            the label for every value of ``facet``.
        facet: the sensitive attribute's column.
        positive: the positive label value(s) (default: True for a boolean label).
        groups: term groups as a mapping, instead of ``groups_file``.
        store: store the rows as the next version of ``NAME.bias`` (default).

    Raises:
        InvalidInput: nothing to measure, a missing column (the columns are listed), a label
            without facet, or no ``positive`` for a label that is not boolean.
        NotFound: the version or the groups file does not exist.
    """
    if column is None and label is None and facet is None:
        raise InvalidInput(
            "Nothing to measure.",
            hint="Give a text column (--column body) and/or a label and facet "
            "(--label approved --facet gender).",
        )
    if (label is None) != (facet is None):
        raise InvalidInput("Label bias needs both a label column and a facet column.")
    if groups_file is not None and column is None:
        raise InvalidInput("A groups file needs a text column to count its terms in.")
    if groups_file is not None:
        if not Path(groups_file).is_file():
            raise NotFound(f"Groups file {groups_file} does not exist.")
        groups = load_groups(groups_file)
    snapshot = lake.ref(ref)
    rep = _representation(snapshot, column, groups) if column is not None else None
    labels = None
    if label is not None and facet is not None:
        labels = _label_bias(snapshot, label, facet, positive)
    result = BiasResult(snapshot.ref, snapshot.commit.rows, column, rep, labels)
    if not store:
        return result
    report = store_report(
        lake,
        kind="bias",
        checked=snapshot.ref,
        rows=result.to_table(),
        params={
            "column": column,
            "groups": None if groups is None else {k: list(v) for k, v in groups.items()},
            "groups_file": None if groups_file is None else str(groups_file),
            "label": label,
            "facet": facet,
            "positive": None if labels is None else [str(p) for p in labels.positive],
        },
        metrics={
            "rows": snapshot.commit.rows,
            "representation_ratio": None if rep is None else rep.ratio,
            "max_abs_ci": max_abs_metric(labels, "ci"),
            "max_abs_dpl": max_abs_metric(labels, "dpl"),
        },
        message=f"bias of {snapshot.ref}",
    )
    return replace(result, report=report)


def max_abs_metric(labels: LabelBiasResult | None, metric: str) -> float | None:
    """The largest absolute value of ``metric`` over the facet values, or None."""
    facets = labels.facets if labels is not None else ()
    values = [abs(v) for f in facets if (v := getattr(f, metric)) is not None]
    return max(values) if values else None


def _require_columns(snapshot: Snapshot, *names: str) -> None:
    columns = snapshot.schema.names
    for name in names:
        if name not in columns:
            raise InvalidInput(
                f"{snapshot.ref} has no column '{name}'.",
                hint=f"Its columns: {', '.join(columns)}.",
            )


def _representation(
    snapshot: Snapshot, column: str, groups: Mapping[str, Sequence[str]] | None
) -> RepresentationResult:
    _require_columns(snapshot, column)
    kind = snapshot.schema.field(column).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise InvalidInput(f"Term groups are counted in text; column '{column}' is {kind}.")
    counter = TermCounter(groups)
    for batch in snapshot.to_batches(columns=[column]):
        counter.update(batch.column(0).to_pylist())
    return counter.result()


def _label_bias(snapshot: Snapshot, label: str, facet: str, positive: Any) -> LabelBiasResult:
    _require_columns(snapshot, facet, label)
    table = snapshot.to_arrow(columns=[facet, label])
    if positive is None or (isinstance(positive, list | tuple) and not positive):
        if not pa.types.is_boolean(table.schema.field(label).type):
            values = table.column(label).unique().drop_null().to_pylist()[:_MAX_LISTED]
            raise InvalidInput(
                f"Which values of '{label}' are positive?",
                hint=f"Name them (--positive VALUE, or positive= in Python); values of {label}: "
                f"{', '.join(map(str, values))}.",
            )
        positive = True
    return label_bias(table, facet, label, positive)
