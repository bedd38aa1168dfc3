"""``curata check`` and ``curata bias``: quality of a dataset version, stored as a report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from curata.cli.common import JsonOpt, lake_of
from curata.cli.output import console, plain, print_json
from curata.cli.records import RecordColumn, print_records

if TYPE_CHECKING:
    from curata.quality.bias import LabelBiasResult, RepresentationResult
    from curata.quality.checks import CheckResult
    from curata.quality.reports import StoredReport

RefArg = Annotated[
    str, typer.Argument(metavar="REF", help="Version to check: tickets, tickets@3, tickets@prod.")
]
HtmlOpt = Annotated[
    Path | None,
    typer.Option("--html", metavar="FILE", help="Also write a self-contained HTML report."),
]
NoStoreOpt = Annotated[
    bool,
    typer.Option("--no-store", help="Do not store the result as a report dataset version."),
]
_STYLES = {"PASS": "bold green", "FAIL": "bold red", "ERROR": "bold yellow"}


def check(
    ctx: typer.Context,
    ref: RefArg,
    rules: Annotated[
        Path,
        typer.Option("--rules", "-r", metavar="FILE.dqdl", help="DQDL rules file."),
    ],
    as_json: JsonOpt = False,
    html: HtmlOpt = None,
    no_store: NoStoreOpt = False,
) -> None:
    """Check a dataset version against DQDL rules (exit code 1 when a rule fails or errs).

    The outcomes are stored as the next version of REF's report dataset NAME.check.
    """
    from curata.quality.checks import check_dataset

    result = check_dataset(lake_of(ctx), ref, rules, store=not no_store)
    if html is not None:
        result.write_html(html)
    if as_json:
        print_json(result.to_dict())
    else:
        _print_check(result, html)
    if not result.passed:
        raise typer.Exit(1)


def _print_check(result: CheckResult, html: Path | None) -> None:
    table = Table(title=plain(f"{result.checked}: {result.source}"), header_style="bold")
    table.add_column("#", justify="right")
    table.add_column("rule", overflow="fold")
    table.add_column("outcome")
    table.add_column("message", overflow="fold")
    for i, o in enumerate(result.rules.outcomes, start=1):
        table.add_row(str(i), plain(o.rule), Text(o.status, _STYLES[o.status]), plain(o.message))
    console.print(table)
    r = result.rules
    console.print(
        Text.assemble(
            ("score ", "bold"),
            (f"{result.score:.2f}", _STYLES["PASS" if result.passed else "FAIL"]),
            f"  {r.count('PASS')} passed, {r.count('FAIL')} failed, {r.count('ERROR')} errors "
            f"of {len(r.outcomes)} rules on {result.rows:,} rows",
        )
    )
    _print_where(result.report, html)


def _print_where(report: StoredReport | None, html: Path | None) -> None:
    if report is not None and report.created:
        console.print(f"stored as {report.ref}", markup=False)
    elif report is not None:
        console.print(f"same as {report.ref}, which this check confirms", markup=False)
    if html is not None:
        console.print(f"HTML report: {html}", markup=False)


def bias(
    ctx: typer.Context,
    ref: RefArg,
    column: Annotated[
        str | None,
        typer.Option("--column", "-c", help="Text column: how often each term group occurs."),
    ] = None,
    groups: Annotated[
        Path | None,
        typer.Option(
            "--groups",
            metavar="FILE.yaml",
            help="Term groups (groups: {name: [term, ...]}); default: female / male terms.",
        ),
    ] = None,
    label: Annotated[
        str | None, typer.Option("--label", help="Label column (with --facet).")
    ] = None,
    facet: Annotated[
        str | None,
        typer.Option("--facet", help="Sensitive attribute: label bias for each of its values."),
    ] = None,
    positive: Annotated[
        list[str] | None,
        typer.Option(
            "--positive",
            metavar="VALUE",
            help="A positive label value; repeatable (default: true for a boolean label).",
        ),
    ] = None,
    as_json: JsonOpt = False,
    html: HtmlOpt = None,
    no_store: NoStoreOpt = False,
) -> None:
    """Measure bias: term-group representation in a text column, and label balance across
    the values of a facet (SageMaker Clarify's CI, DPL, KL, JS, LP, TVD, KS).

    The rows are stored as the next version of REF's report dataset NAME.bias. To fail on a
    threshold, use `curata check` with TermGroupRatio or ClassImbalance rules.
    """
    from curata.quality.checks import bias_dataset

    result = bias_dataset(
        lake_of(ctx),
        ref,
        column=column,
        groups_file=groups,
        label=label,
        facet=facet,
        positive=positive or None,
        store=not no_store,
    )
    if html is not None:
        result.write_html(html)
    if as_json:
        print_json(result.to_dict())
        return
    if result.representation is not None:
        _print_groups(result.representation, result.column or "")
    if result.labels is not None:
        _print_labels(result.labels)
    _print_where(result.report, html)


def _print_groups(rep: RepresentationResult, column: str) -> None:
    print_records(
        [RecordColumn("group")]
        + [RecordColumn(c, justify="right") for c in ("mentions", "share", "rows", "row share")],
        [
            [
                g.group,
                f"{g.mentions:,}",
                f"{g.mention_share:.1%}",
                f"{g.rows:,}",
                f"{g.row_share:.1%}",
            ]
            for g in rep.groups
        ],
        title=f"Term groups in {column} ({rep.rows:,} rows)",
    )
    ratio = "no term of any group occurs" if rep.ratio is None else f"{rep.ratio:.2f}"
    console.print(f"representation ratio (least / most mentioned): {ratio}", markup=False)


def _print_labels(lb: LabelBiasResult) -> None:
    positives = ", ".join(map(str, lb.positive))
    title = f"Label {lb.label} (positive: {positives}) by {lb.facet}"
    metrics = ("ci", "dpl", "kl", "js", "lp", "tvd", "ks")
    print_records(
        [RecordColumn("value")]
        + [RecordColumn(c, justify="right") for c in ("n_d", "n_a", *(m.upper() for m in metrics))],
        [
            [f.value, f"{f.n_d:,}", f"{f.n_a:,}", *(_number(getattr(f, m)) for m in metrics)]
            for f in lb.facets
        ],
        title=title,
    )
    notes = [f"{f.value}: {f.message}" for f in lb.facets if f.message]
    if lb.dropped_rows:
        notes.append(f"{lb.dropped_rows:,} rows with a NULL facet or label left out")
    for note in notes:
        console.print(note, markup=False)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
