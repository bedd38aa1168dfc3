"""``curata dedup``: remove duplicate rows of a dataset (exact, near or semantic)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from curata.cli.common import AuthorOpt, JsonOpt, MessageOpt, lake_of
from curata.cli.output import console, plain, print_json

if TYPE_CHECKING:
    from curata.quality.dedup import DedupReport

#: clusters listed on a terminal
SHOWN = 10


def dedup(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The dataset (its head of main).")],
    column: Annotated[str, typer.Option("--column", "-c", help="The text column compared.")],
    method: Annotated[
        str, typer.Option(help="exact (normalised text), near (MinHash LSH) or semantic.")
    ] = "exact",
    threshold: Annotated[
        float | None,
        typer.Option(help="Similarity a pair needs: Jaccard for near (0.8), cosine (0.95)."),
    ] = None,
    keep: Annotated[
        str, typer.Option(help="Row kept per cluster: first (lowest key) or longest.")
    ] = "first",
    embedder: Annotated[
        str,
        typer.Option(help="Embedder for semantic: minilm, minilm-int8, hash:DIM, openai:MODEL..."),
    ] = "minilm",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the clusters; publish nothing.")
    ] = False,
    html: Annotated[
        Path | None, typer.Option("--html", metavar="FILE", help="Also write an HTML report.")
    ] = None,
    message: MessageOpt = "",
    author: AuthorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove duplicate rows: publishes the deduplicated version and NAME.dedup_clusters."""
    from curata.quality.dedup import dedup_dataset, write_dedup_html

    report = dedup_dataset(
        lake_of(ctx, author),
        name,
        column,
        method,
        threshold=threshold,
        keep=keep,
        message=message,
        embedder=embedder,
        dry_run=dry_run,
        author=author,
    )
    if html is not None:
        write_dedup_html(report, html)
    if as_json:
        print_json(report.to_dict())
    else:
        _print(report)


def _print(report: DedupReport) -> None:
    found = f"{report.removed} duplicate rows in {len(report.clusters)} clusters"
    if report.rows_in == 0:
        console.print(f"{report.input} has no rows: nothing to do.", markup=False)
        return
    if not report.clusters:
        console.print(f"{report.input}: no duplicates ({report.rows_in} rows).", markup=False)
    elif report.dry_run:
        console.print(f"{report.input}: {found} (dry run: nothing published).", markup=False)
    else:
        console.print(
            f"{report.input}: removed {found}; published {report.version} "
            f"({report.rows_out} rows) and {report.clusters_version}.",
            markup=False,
        )
    for members, kept in list(zip(report.clusters, report.canonical, strict=True))[:SHOWN]:
        others = ", ".join(str(m) for m in members if m != kept)
        console.print(plain(f"  keep {kept}: drop {others}"))
    if len(report.clusters) > SHOWN:
        console.print(f"  ... {len(report.clusters) - SHOWN} more clusters", markup=False)
    if report.method == "near":
        console.print(
            f"MinHash signatures: {report.signatures_computed} computed, "
            f"{report.signatures_reused} reused.",
            markup=False,
        )
