"""``curata runs ...``, ``curata usage ...`` and ``curata lineage ...``: what ran, who used
which version, and where a version came from and went."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.markup import escape
from typer.core import TyperGroup

from curata.cli.common import JsonOpt, lake_of
from curata.cli.output import cell, console, print_json
from curata.cli.records import RecordColumn, print_records
from curata.errors import InvalidInput

if TYPE_CHECKING:
    from curata.lake.lineage import LineageGraph, LineageNode
    from curata.lake.runs import Run

runs_app = typer.Typer(
    help="Runs: the work curata did, with its inputs, outputs and parameters.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
usage_app = typer.Typer(
    help="Usages: models, experiments and deployments that used a dataset version.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

_STATUS_STYLE = {
    "succeeded": "green",
    "failed": "red",
    "running": "yellow",
    "abandoned": "magenta",
}
_SHORT_ID = 12


def _when(value: datetime | None) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M:%S}"


def _refs(refs: list[str]) -> str:
    return ", ".join(refs) or "-"


# -- runs -----------------------------------------------------------------------------------------


@runs_app.command("ls")
def runs_ls(
    ctx: typer.Context,
    job: Annotated[str | None, typer.Option("--job", help="Only runs of this job.")] = None,
    limit: Annotated[int | None, typer.Option("-n", help="At most this many runs.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List runs, newest first."""
    if limit is not None and limit < 1:
        raise InvalidInput(f"-n must be 1 or more, got {limit}.")
    runs = lake_of(ctx).runs(limit=limit, job=job)
    if as_json:
        print_json([r.to_dict() for r in runs])
        return
    if not runs:
        console.print("No runs" + (f" of job {job!r}." if job else " yet."), markup=False)
        return
    # One run per two lines, like `dataset log`: ids and times stay whole for copying, and
    # long lists of references wrap on their own line.
    for run in runs:
        style = _STATUS_STYLE.get(run.status, "white")
        took = "" if run.seconds is None else f"  ({run.seconds:.1f} s)"
        console.print(
            f"[bold]{run.id[:_SHORT_ID]}[/]  {escape(run.job)}  [{style}]{run.status}[/]  "
            f"{_when(run.started_at)} UTC{took}"
        )
        console.print(f"    {_refs(run.inputs)} -> {_refs(run.outputs)}", markup=False)


@runs_app.command("show")
def runs_show(
    ctx: typer.Context,
    run_id: Annotated[
        str, typer.Argument(metavar="RUN_ID", help="Run id, or a unique prefix of 6+ characters.")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Show one run: status, timing, parameters, inputs, outputs, metrics, error."""
    run = lake_of(ctx).run(run_id)
    if as_json:
        print_json(run.to_dict())
        return
    _print_run(run)


def _print_run(run: Run) -> None:
    style = _STATUS_STYLE.get(run.status, "white")
    console.print(f"[bold]run {run.id}[/]  {escape(run.job)}  [{style}]{run.status}[/]")
    took = "" if run.seconds is None else f"  ({run.seconds:.1f} s)"
    ended = "-" if run.ended_at is None else f"{_when(run.ended_at)} UTC"
    console.print(f"started {_when(run.started_at)} UTC   ended {ended}{took}")
    console.print(
        f"executor: {run.executor or '-'}   code version: {run.code_version or '-'}", markup=False
    )
    console.print(f"inputs:  {_refs(run.inputs)}", markup=False)
    console.print(f"outputs: {_refs(run.outputs)}", markup=False)
    for title, data in (("params", run.params), ("metrics", run.metrics)):
        if data:
            console.print(f"{title}:", markup=False)
            console.print(json.dumps(data, indent=2, sort_keys=True, default=str), markup=False)
    if run.error:
        console.print(f"[red]error:[/] {escape(run.error)}")
    if run.status == "running":
        console.print("(still running, or its process ended without finishing it)")
    elif run.status == "abandoned" and run.owner:
        console.print(
            f"(its process, pid {run.owner.get('pid')} on {run.owner.get('host')}, ended "
            "without finishing it: killed or crashed)",
            markup=False,
        )


# -- usages --------------------------------------------------------------------------------------


@usage_app.command("add")
def usage_add(
    ctx: typer.Context,
    ref: Annotated[
        str,
        typer.Argument(metavar="DATASET_REF", help="The version used, e.g. kb@prod or train@5."),
    ],
    consumer: Annotated[
        str,
        typer.Option(
            "--consumer",
            metavar="KIND:NAME[@VER]",
            help="Who used it, e.g. model:ft-support@3 or deployment:prod-chat. Kinds: model, "
            "experiment, evaluation, deployment, application, other.",
        ),
    ],
    purpose: Annotated[
        str, typer.Option("--purpose", help="What for, e.g. training, evaluation, retrieval.")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Record that a model, experiment or deployment used DATASET_REF (stored as the version it
    names now)."""
    usage = lake_of(ctx).record_usage(ref, consumer=consumer, purpose=purpose)
    if as_json:
        print_json(usage.to_dict())
        return
    console.print(
        f"Recorded: {usage.ref} used by {usage.consumer} for {usage.purpose}", markup=False
    )


@usage_app.command("ls")
def usage_ls(
    ctx: typer.Context,
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="Only usages of this dataset.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List recorded usages, newest first."""
    usages = lake_of(ctx).usages(dataset)
    if as_json:
        print_json([u.to_dict() for u in usages])
        return
    if not usages:
        console.print("No usages" + (f" of {dataset!r}." if dataset else " yet."), markup=False)
        return
    rows = [[u.ref, u.consumer, u.purpose, _when(u.recorded_at), u.recorded_by] for u in usages]
    print_records(
        (
            RecordColumn("version"),
            RecordColumn("consumer"),
            RecordColumn("purpose", free_text=True),
            RecordColumn("recorded (UTC)", free_text=True),
            RecordColumn("by", free_text=True),
        ),
        rows,
    )


# -- lineage ---------------------------------------------------------------------------------------


class _DefaultShowGroup(TyperGroup):
    """``curata lineage REF`` runs ``curata lineage show REF``: anything that is not a
    subcommand (or help) is taken as the arguments of ``show``."""

    # ctx is typed Any: newer Typer versions vendor their own click Context class.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["show", *args]
        return super().parse_args(ctx, args)


lineage_app = typer.Typer(
    cls=_DefaultShowGroup,
    help="Where a version came from and where it went: `curata lineage REF` (short for "
    "`curata lineage show REF`); `curata lineage export` sends runs as OpenLineage events.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

_FORMATS = ("table", "json", "dot", "mermaid")


@lineage_app.command("show")
def lineage_show(
    ctx: typer.Context,
    ref: Annotated[
        str,
        typer.Argument(
            metavar="REF",
            help="A dataset reference (tickets@5, kb@prod), run:ID, or a consumer such as "
            "model:ft-support@3.",
        ),
    ],
    up: Annotated[bool, typer.Option("--up", help="Only upstream: where REF came from.")] = False,
    down: Annotated[bool, typer.Option("--down", help="Only downstream: what used REF.")] = False,
    depth: Annotated[
        int | None, typer.Option("--depth", help="At most this many edges away (default: all).")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="table, json, dot (Graphviz) or mermaid.")
    ] = "table",
    as_json: JsonOpt = False,
) -> None:
    """Show the lineage of REF: the runs, versions and consumers up and down from it."""
    fmt = "json" if as_json else fmt
    if fmt not in _FORMATS:
        raise InvalidInput(f"Unknown --format {fmt!r}.", hint=f"Use {', '.join(_FORMATS)}.")
    if depth is not None and depth < 0:
        raise InvalidInput("--depth must be zero or more.")
    direction: Literal["up", "down", "both"] = "both"
    if up != down:
        direction = "up" if up else "down"
    graph = lake_of(ctx).lineage(ref, direction=direction, depth=depth)
    if fmt == "json":
        print_json(graph.to_dict())
    elif fmt == "dot":
        console.out(graph.to_dot(), end="", highlight=False)
    elif fmt == "mermaid":
        console.out(graph.to_mermaid(), end="", highlight=False)
    else:
        _print_lineage(graph)


def _describe(node: LineageNode) -> str:
    a = node.attributes
    if node.type == "run":
        started = str(a.get("started_at") or "-")[:16].replace("T", " ")
        return f"{a.get('job') or '?'}, {a.get('status')}, {started}"
    if node.type == "dataset_version":
        if a.get("missing"):
            return "not in the catalog"
        tags = f" [{', '.join(a['tags'])}]" if a.get("tags") else ""
        pruned = " (removed by gc)" if a.get("pruned") else ""
        return f"{a.get('operation')}, {a.get('rows', 0):,} rows{tags}{pruned}: {a.get('message')}"
    if node.type == "consumer":
        return str(a.get("kind"))
    return "outside the lake"


def _print_lineage(graph: LineageGraph) -> None:
    which = {"up": "upstream", "down": "downstream", "both": "upstream and downstream"}
    scope = "any depth" if graph.depth is None else f"depth {graph.depth}"
    console.print(
        f"Lineage of [bold]{escape(graph.root)}[/] ({which[graph.direction]}, {scope}): "
        f"{len(graph.nodes)} nodes, {len(graph.edges)} edges"
    )
    if not graph.edges:
        console.print("No runs, usages or other versions are connected to it.")
        return
    nodes = {n.id: n for n in graph.nodes}
    rows = []
    for e in graph.edges:
        source, target = nodes[e.source], nodes[e.target]
        far = source if source.distance > target.distance else target
        rows.append(
            [str(far.distance), _short(e.source), e.label, _short(e.target), cell(_describe(far))]
        )
    print_records(_LINEAGE_COLUMNS, rows)


# Node names stay whole; run ids are shortened as in `runs ls` (a prefix finds the run).
_LINEAGE_COLUMNS = (
    RecordColumn("hops", justify="right"),
    RecordColumn("from"),
    RecordColumn("edge"),
    RecordColumn("to"),
    RecordColumn("details", free_text=True),
)


def _short(node_id: str) -> str:
    """A node as `curata lineage` takes it: a run by its short id, a consumer as KIND:NAME."""
    if node_id.startswith("run:"):
        return node_id[: len("run:") + _SHORT_ID]
    return node_id.removeprefix("consumer:")


@lineage_app.command("export")
def lineage_export(
    ctx: typer.Context,
    openlineage: Annotated[
        str,
        typer.Option(
            "--openlineage",
            metavar="FILE_OR_URL",
            help="A file (JSON Lines, appended), an http(s):// URL (a bare host posts to "
            "/api/v1/lineage, as Marquez expects), or - for standard output.",
        ),
    ],
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="TIME",
            help="Only events at or after TIME: 2025-06-01, 2025-06-01T12:00Z, or an age "
            "such as 30m, 12h, 7d.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Send the lake's runs as OpenLineage RunEvents (START, then COMPLETE or FAIL)."""
    from curata.lineage import export_openlineage

    when = parse_since(since) if since else None
    summary = export_openlineage(lake_of(ctx), openlineage, since=when)
    if openlineage == "-":
        return  # stdout holds the events and nothing else
    if as_json:
        print_json(summary.to_dict())
        return
    console.print(
        f"Exported {summary.events} OpenLineage events for {summary.runs} runs to {summary.target}",
        markup=False,
    )


_AGE = re.compile(r"^(\d+)\s*([smhdw])$")
_AGE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """An ISO-8601 date or time (UTC unless it says otherwise), or an age such as ``7d``.

    Raises:
        InvalidInput: neither.
    """
    text = text.strip()
    age = _AGE.match(text)
    if age:
        delta = timedelta(**{_AGE_UNITS[age[2]]: int(age[1])})
        return (now or datetime.now(UTC)) - delta
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"--since {text!r} is not a time.",
            hint="Use 2025-06-01, 2025-06-01T12:00:00Z, or an age: 30m, 12h, 7d, 2w.",
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
