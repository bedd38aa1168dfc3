"""``curata run``: run a pipeline file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from curata.cli.common import JsonOpt, lake_of
from curata.cli.output import console, err_console, print_json
from curata.cli.records import RecordColumn, print_records

if TYPE_CHECKING:
    from rich.progress import TaskID

    from curata.lake import Lake
    from curata.pipeline.run import RunResult


def run(
    ctx: typer.Context,
    pipeline: Annotated[Path, typer.Argument(metavar="PIPELINE.yaml", help="Pipeline file.")],
    executor: Annotated[str, typer.Option(help="local (default) or ray.")] = "local",
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Compute every row; ignore cached step results.")
    ] = False,
    recompute: Annotated[
        list[str] | None,
        typer.Option(
            "--recompute", metavar="STEP", help="Drop the cache of this step; repeatable."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and show the plan; run nothing.")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(help="Worker processes for CPU-heavy steps (default: cores when needed)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a pipeline: only new or changed rows are computed; outputs publish together."""
    from curata.pipeline.run import run_pipeline

    lake = lake_of(ctx)
    options: dict[str, Any] = {
        "executor": executor,
        "no_cache": no_cache,
        "recompute": recompute or [],
    }
    if dry_run or as_json or not console.is_terminal:
        result = run_pipeline(lake, pipeline, dry_run=dry_run, workers=workers, **options)
    else:
        result = _run_with_progress(lake, pipeline, workers, options)
    if as_json:
        print_json(result.to_dict())
    elif dry_run:
        _print_plan(result)
    else:
        _print_result(result)


def _run_with_progress(
    lake: Lake, pipeline: Path, workers: int | None, options: dict[str, Any]
) -> RunResult:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from curata.pipeline.run import run_pipeline

    tasks: dict[str, TaskID] = {}
    with Progress(
        TextColumn("{task.description:<20}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    ) as bar:

        def progress(step: str, done: int, total: int | None) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=total)
            bar.update(tasks[step], completed=done, total=max(total or 0, done) or None)

        result = run_pipeline(lake, pipeline, workers=workers, progress=progress, **options)
        # A step after a filter sees fewer rows than the input has: its bar ends full anyway.
        for task in bar.tasks:
            bar.update(task.id, total=task.completed)
        return result


def _print_plan(result: RunResult) -> None:
    console.print(f"Pipeline [bold]{result.pipeline}[/] (dry run, nothing read or written)")
    for step in result.plan:
        flags = ", ".join(
            f for f, on in (("row-wise", step["row_wise"]), ("cached", step["cached"])) if on
        )
        console.print(
            f"  {step['id']:<20} {step['step']:<10} {flags or 'whole input'}", markup=False
        )
    console.print(f"outputs: {', '.join(result.outputs)}", markup=False)


def _print_result(result: RunResult) -> None:
    print_records(
        [RecordColumn("step")]
        + [
            RecordColumn(c, justify="right")
            for c in ("rows in", "rows out", "cache hits", "computed", "errors", "seconds")
        ],
        [
            [
                s.id,
                f"{s.rows_in:,}",
                f"{s.rows_out:,}",
                f"{s.cache_hits:,}",
                f"{s.computed:,}",
                str(s.errors),
                f"{s.seconds:.2f}",
            ]
            for s in result.steps
        ],
    )
    outputs = ", ".join(result.outputs) or "nothing changed; no version published"
    console.print(
        f"run {result.id} {result.status} in {result.seconds:.1f}s: {outputs}", markup=False
    )
    if result.quarantined:
        console.print(f"{result.quarantined:,} row(s) quarantined", markup=False)
    if result.warned:
        console.print(f"{result.warned:,} row(s) flagged with a warning", markup=False)
