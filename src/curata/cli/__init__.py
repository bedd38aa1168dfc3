"""The ``curata`` command line: ``curata <noun> <verb>``, with short aliases for the most used.

Exit codes: 0 ok, 1 a failed check or run, 2 bad usage or bad input.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from curata.cli import (
    dataset_cmds,
    dedup_cmds,
    kb_cmds,
    lineage_cmds,
    pii_cmds,
    quality_cmds,
    run_cmds,
)
from curata.cli.common import JsonOpt, LakeContext, lake_of
from curata.cli.output import console, print_error, print_json, print_table, rows_json
from curata.errors import CurataError, InvalidInput

app = typer.Typer(
    name="curata",
    help="Versioned, cataloged, lineage-tracked data for generative-AI teams.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(dataset_cmds.app, name="dataset")
app.add_typer(kb_cmds.app, name="kb")
app.add_typer(pii_cmds.app, name="pii")
app.add_typer(lineage_cmds.runs_app, name="runs")
app.add_typer(lineage_cmds.usage_app, name="usage")
app.add_typer(lineage_cmds.lineage_app, name="lineage")


def _version(value: bool) -> None:
    if value:
        from curata import __version__

        console.print(f"curata {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    lake: Annotated[
        str | None,
        typer.Option(
            "--lake",
            metavar="PATH",
            envvar="CURATA_LAKE",
            show_envvar=True,
            help="The lake folder (default: the nearest .curata/ walking up from here).",
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Versioned, cataloged, lineage-tracked data for generative-AI teams."""
    ctx.obj = LakeContext(lake)
    ctx.call_on_close(ctx.obj.close)


@app.command("init")
def init(
    ctx: typer.Context,
    path: Annotated[
        str | None,
        typer.Argument(
            metavar="PATH",
            help="Project folder; the lake goes in PATH/.curata "
            "(default: --lake or CURATA_LAKE if given, else the current folder).",
            show_default=False,
        ),
    ] = None,
    catalog_url: Annotated[
        str | None,
        typer.Option(
            envvar="CURATA_CATALOG_URL",
            show_envvar=True,
            help="SQLAlchemy URL of the catalog (default: SQLite inside the lake), "
            "e.g. postgresql://user@host/db.",
        ),
    ] = None,
) -> None:
    """Create a lake (idempotent: an existing lake is left as it is)."""
    import curata
    from curata.config import LAKE_MARKER, normalise_lake_path

    # Like every other command, init honours --lake / CURATA_LAKE: the lake it reports is
    # the one the next command will use.
    state = ctx.find_root().obj
    path = path or (state.lake_path if isinstance(state, LakeContext) else None) or "."
    existed = (Path(normalise_lake_path(path)) / LAKE_MARKER).is_file()
    lake = curata.init(path, catalog_url=catalog_url)
    backend = lake.catalog.engine.dialect.name
    lake.close()
    verb = "Reinitialized existing" if existed else "Initialized empty"
    console.print(f"{verb} curata lake in {lake.uri} (catalog: {backend})", markup=False)


@app.command("query")
def query(
    ctx: typer.Context,
    sql: Annotated[
        str,
        typer.Argument(metavar="SQL", help='DuckDB SQL; tables are references: "tickets@prod".'),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Run DuckDB SQL over dataset versions: SELECT count(*) FROM "tickets@orig"."""
    table = lake_of(ctx).query(sql)
    if as_json:
        print_json(rows_json(table))
    else:
        print_table(table)


@app.command("gc")
def gc(
    ctx: typer.Context,
    keep_versions: Annotated[
        int | None,
        typer.Option(
            help="Also remove versions older than the newest N of each branch "
            "(tagged versions and branch heads are always kept)."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Report what would be removed; change nothing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Compact small files, remove unpublished data and, if asked, old untagged versions."""
    if keep_versions is not None and keep_versions < 1:
        raise InvalidInput("--keep-versions must be at least 1.")
    report = lake_of(ctx).gc(keep_versions=keep_versions, dry_run=dry_run)
    if as_json:
        print_json(report.to_dict())
    else:
        console.print(report.summary, markup=False)


@app.command("demo")
def demo(
    folder: Annotated[
        Path, typer.Option("--dir", help="Folder for the demo's project (made anew).")
    ] = Path("curata-demo"),
    embedder: Annotated[
        str, typer.Option(help="Embedder of the demo knowledge base (e.g. hash:64: no model).")
    ] = "minilm",
) -> None:
    """Walk through curata on bundled samples: a versioned dataset (import, correct, log,
    diff, tag, revert) and a knowledge base (index, ask, edit, re-sync, search the past)."""
    from curata.cli.demo import run_demo

    run_demo(app, folder, embedder)


app.command("run")(run_cmds.run)
app.command("dedup")(dedup_cmds.dedup)
app.command("check")(quality_cmds.check)
app.command("bias")(quality_cmds.bias)

# Short aliases for the most used verbs.
app.command("ls", help="List datasets (alias of `dataset ls`).")(dataset_cmds.ls)
app.command("log", help="Show a dataset's versions (alias of `dataset log`).")(dataset_cmds.log)
app.command("diff", help="Compare two versions (alias of `dataset diff`).")(dataset_cmds.diff)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; curata's errors become a message and an exit code, never a traceback."""
    try:
        app(args=argv, prog_name="curata")
    except CurataError as err:
        print_error(err)
        sys.exit(err.exit_code)
