"""``curata dataset ...``: create, import, inspect and version datasets."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from curata.cli.common import AuthorOpt, BranchOpt, JsonOpt, MessageOpt, lake_of
from curata.cli.output import cell, console, print_json, print_table, rows_json
from curata.cli.records import RecordColumn, print_records
from curata.errors import InvalidInput

if TYPE_CHECKING:
    import pyarrow as pa

    from curata.lake import Commit, DatasetInfo, RowDiff

app = typer.Typer(
    help="Create, import, inspect and version datasets.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
branch_app = typer.Typer(help="Create and list branches of a dataset.", no_args_is_help=True)
app.add_typer(branch_app, name="branch")

KIND_HELP = "documents, chunks, records, logs, labels, synthetic or report."


def print_commit(commit: Commit | None, as_json: bool, nothing: str = "Nothing changed") -> None:
    """Report a write: the new reference and its change summary."""
    if as_json:
        print_json(commit.to_dict() if commit else None)
    elif commit is None:
        console.print(f"{nothing}; no version published.")
    else:
        console.print(f"[bold]{commit.ref}[/]  {escape(commit.summary)}")


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Dataset name.")],
    kind: Annotated[str, typer.Option(help=f"Kind: {KIND_HELP}")] = "records",
    key: Annotated[
        str | None, typer.Option(help="Primary-key column (for upserts, diffs).")
    ] = None,
    description: Annotated[str, typer.Option(help="What the data is.")] = "",
    owner: Annotated[str | None, typer.Option(help="Who answers for the data.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A label; repeatable.")] = None,
) -> None:
    """Create an empty dataset (the first write makes version 1)."""
    lake_of(ctx).create_dataset(
        name, kind=kind, key=key, description=description, owner=owner, tags=tag or []
    )
    console.print(f"Created dataset [bold]{name}[/] ({kind}" + (f", key {key})" if key else ")"))


@app.command("import")
def import_(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="Dataset to write (created if missing).")
    ],
    file: Annotated[Path, typer.Argument(metavar="FILE", help="Parquet, CSV or JSONL file.")],
    format: Annotated[
        str | None,
        typer.Option("--format", "-f", help="parquet, csv or jsonl (default: by extension)."),
    ] = None,
    mode: Annotated[str, typer.Option(help="append, upsert or overwrite.")] = "append",
    key: Annotated[str | None, typer.Option(help="Key column (upsert; set when creating).")] = None,
    kind: Annotated[str, typer.Option(help=f"Kind when creating: {KIND_HELP}")] = "records",
    branch: BranchOpt = "main",
    message: MessageOpt = "",
    author: AuthorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Import a file as a new version of NAME (creating NAME if it does not exist)."""
    from curata.formats import read_table

    if mode not in ("append", "upsert", "overwrite"):
        raise InvalidInput(f"Unknown --mode {mode!r}.", hint="Use append, upsert or overwrite.")
    table = read_table(file, format)
    lake = lake_of(ctx, author)
    msg = message or f"import {file.name}"
    commit: Commit | None
    if not lake.has_dataset(name):
        _check_first_write(table, name, mode, key)
        # Created in the transaction that publishes the rows: a failed or killed import
        # leaves no empty dataset behind.
        with lake.publish(message=msg, author=author) as pub:
            pub.create_dataset(name, kind=kind, key=key)
            if mode == "upsert":
                pub.upsert(name, table, key=key, branch=branch)
            else:
                getattr(pub, mode)(name, table, branch=branch)
        print_commit(pub.commits[0] if pub.commits else None, as_json)
        return
    ds = lake.dataset(name)
    if mode == "append":
        commit = ds.append(table, message=msg, author=author, branch=branch)
    elif mode == "upsert":
        commit = ds.upsert(table, key=key, message=msg, author=author, branch=branch)
    else:
        commit = ds.overwrite(table, message=msg, author=author, branch=branch)
    print_commit(commit, as_json)


def _check_first_write(table: pa.Table, name: str, mode: str, key: str | None) -> None:
    """Refuse input that would fail its first write before creating the dataset: a failed
    import must not leave an empty dataset behind, least of all one with a mistyped key."""
    from curata.lake.tables import check_key

    if key is None and mode == "upsert":
        raise InvalidInput(
            f"Upsert into the new dataset {name!r} needs a key column.", hint="Pass --key COL."
        )
    if key is not None:
        check_key(table, key, name)


@app.command("delete-rows")
def delete_rows(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Dataset.")],
    where: Annotated[str, typer.Option("--where", help="SQL predicate, e.g. \"status = 'spam'\".")],
    branch: BranchOpt = "main",
    message: MessageOpt = "",
    author: AuthorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete the rows matching a SQL predicate, as a new version."""
    commit = (
        lake_of(ctx, author)
        .dataset(name)
        .delete(where, message=message or f"delete where {where}", author=author, branch=branch)
    )
    print_commit(commit, as_json, nothing="No row matched")


def _info_rows(info: DatasetInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "kind": info.kind,
        "version": info.version,
        "rows": info.rows,
        "owner": info.owner,
        "tags": info.tags,
        "description": info.description,
    }


@app.command("ls")
def ls(
    ctx: typer.Context,
    search: Annotated[
        str | None,
        typer.Option(help="Only datasets whose name, tags, description or columns match."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List datasets."""
    infos = lake_of(ctx).datasets(search=search)
    if as_json:
        print_json(
            [
                _info_rows(i) | {"key": i.key, "columns": [c["name"] for c in i.columns]}
                for i in infos
            ]
        )
        return
    if not infos:
        console.print("No datasets" + (f" match {search!r}." if search else " yet."), markup=False)
        return
    rows = [
        [
            info.name,
            info.kind,
            "-" if info.version is None else str(info.version),
            f"{info.rows:,}",
            info.owner,
            ", ".join(info.tags),
            cell(info.description),
        ]
        for info in infos
    ]
    print_records(_LS_COLUMNS, rows)


_LS_COLUMNS = (
    RecordColumn("name"),
    RecordColumn("kind"),
    RecordColumn("version", justify="right"),
    RecordColumn("rows", justify="right"),
    RecordColumn("owner"),
    RecordColumn("tags", free_text=True),
    RecordColumn("description", free_text=True),
)


@app.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[
        str, typer.Argument(metavar="REF", help="NAME, NAME@VERSION, NAME@TAG or NAME@branch:B.")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Show a dataset's metadata and the version REF points at."""
    from curata.lake import parse_ref

    lake = lake_of(ctx)
    parsed = parse_ref(ref)
    info = lake.dataset(parsed.name).info()
    commit = lake.snapshot(parsed).commit if info.version is not None else None
    if as_json:
        print_json(info.to_dict() | {"commit": commit.to_dict() if commit else None})
        return
    console.print(f"[bold]{info.name}[/]  ({info.kind})  {escape(info.description)}")
    tags = ", ".join(info.tags) or "-"
    console.print(
        f"owner: {info.owner or '-'}   key: {info.key or '-'}   tags: {tags}", markup=False
    )
    branches = ", ".join(
        f"{b}@{v}" if v is not None else f"{b} (no versions)" for b, v in info.branches.items()
    )
    version_tags = ", ".join(f"{t}@{v}" for t, v in info.version_tags.items()) or "-"
    console.print(f"branches: {branches}   version tags: {version_tags}")
    if commit is None:
        console.print("No versions yet.")
        return
    console.print(
        f"\n[bold]{commit.ref}[/] on {commit.branch}  {commit.timestamp:%Y-%m-%d %H:%M:%S} UTC  "
        f"by {escape(commit.author)}\n  {escape(commit.message)}\n  {escape(commit.summary)}\n"
        f"  {commit.rows:,} rows"
    )
    print_records(
        (
            RecordColumn("column"),
            RecordColumn("type", free_text=True),
            RecordColumn("classification"),
        ),
        [[c["name"], c["type"], info.classifications.get(c["name"])] for c in commit.schema],
    )


@app.command("head")
def head(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="Dataset reference.")],
    n: Annotated[int, typer.Option("-n", "--rows", help="How many rows.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Print the first rows of REF."""
    if n < 0:
        raise InvalidInput("-n must be zero or more.")
    snapshot = lake_of(ctx).ref(ref)
    table = snapshot.to_arrow(limit=n)
    if as_json:
        print_json(rows_json(table))
    else:
        print_table(table, title=f"{snapshot.ref} ({snapshot.commit.rows:,} rows)")


@app.command("log")
def log(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Dataset.")],
    branch: Annotated[
        str | None, typer.Option("--branch", "-b", help="Only versions on this branch's history.")
    ] = None,
    limit: Annotated[int | None, typer.Option("-n", help="At most this many versions.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the versions of a dataset, newest first."""
    commits = lake_of(ctx).dataset(name).log(branch=branch)
    if limit is not None:
        commits = commits[:limit]
    if as_json:
        print_json([c.to_dict() for c in commits])
        return
    if not commits:
        console.print(f"{name} has no versions yet.")
        return
    for c in commits:
        tags = f" [yellow]({', '.join(c.tags)})[/]" if c.tags else ""
        pruned = " [red](removed by gc)[/]" if c.pruned else ""
        when = f"{c.timestamp:%Y-%m-%d %H:%M:%S} UTC"
        console.print(f"[bold]{c.ref}[/]{tags}{pruned}  {c.branch}  {when}  {escape(c.author)}")
        if c.message:
            console.print(f"    {c.message}", markup=False)
        console.print(f"    {c.summary}   ({c.rows:,} rows)", markup=False)


def diff_json(diff: RowDiff, with_rows: bool) -> dict[str, Any]:
    """The ``diff --json`` object."""
    out: dict[str, Any] = diff.changes.to_dict()
    if with_rows:
        out["added"] = rows_json(diff.added) if diff.added is not None else []
        out["deleted"] = rows_json(diff.deleted) if diff.deleted is not None else []
        out["updated"] = diff.updated or []
    return out


def _shown(value: Any) -> str:
    """A changed value for a one-line diff: quoted text, or null (not '' for a missing value)."""
    return "null" if value is None else repr(cell(value))


def _change(old: Any, new: Any) -> str:
    """``old -> new``; for long texts, the part around where they start to differ."""
    if isinstance(old, str) and isinstance(new, str) and cell(old) == cell(new):
        start = next((i for i, (x, y) in enumerate(zip(old, new, strict=False)) if x != y), 0)
        start = max(0, start - 20)
        return f"{_shown('…' + old[start:])} -> {_shown('…' + new[start:])}"
    return f"{_shown(old)} -> {_shown(new)}"


@app.command("diff")
def diff(
    ctx: typer.Context,
    ref_a: Annotated[str, typer.Argument(metavar="REF_A", help="Older reference, e.g. tickets@3.")],
    ref_b: Annotated[
        str, typer.Argument(metavar="REF_B", help="Newer reference, e.g. tickets (head).")
    ],
    rows: Annotated[bool, typer.Option("--rows", help="Also list the rows that differ.")] = False,
    limit: Annotated[int, typer.Option(help="With --rows, at most this many of each kind.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Compare two versions: columns, and rows by key (as multisets without a key)."""
    from curata.lake import parse_ref

    a, b = parse_ref(ref_a), parse_ref(ref_b)
    if a.name != b.name:
        raise InvalidInput(f"Both references must name one dataset ({a.name!r} vs {b.name!r}).")
    result = lake_of(ctx).dataset(a.name).diff(str(a), str(b), rows=rows, limit=limit)
    if as_json:
        print_json(diff_json(result, rows))
        return
    console.print(f"{a} -> {b}: {result.changes.summary()}", markup=False)
    if rows:
        key = lake_of(ctx).dataset(a.name).info().key
        for sign, table in (("+", result.added), ("-", result.deleted)):
            for row in table.to_pylist() if table is not None else []:
                # One line a row, key first: readable at any width (use --json for all values).
                label = row.pop(key) if key in row else ""
                values = ", ".join(f"{col}={_shown(v)}" for col, v in row.items())
                console.print(f"  {sign} {label}: {values}"[: max(40, console.width)], markup=False)
        for upd in result.updated or []:
            changes = ", ".join(
                f"{col}: {_change(v['old'], v['new'])}" for col, v in upd["changes"].items()
            )
            console.print(f"  ~ {upd['key']}: {changes}", markup=False)


@app.command("tag")
def tag(
    ctx: typer.Context,
    ref: Annotated[
        str,
        typer.Argument(
            metavar="REF", help="Version to tag, e.g. tickets@5 (or tickets for the head)."
        ),
    ],
    tag_name: Annotated[str, typer.Argument(metavar="TAG", help="Tag name, e.g. prod.")],
    author: AuthorOpt = None,
) -> None:
    """Point TAG at REF (moving it if it exists): NAME@TAG then reads that version."""
    from curata.lake import parse_ref

    parsed = parse_ref(ref)
    version = lake_of(ctx).dataset(parsed.name).tag(tag_name, str(parsed), author=author)
    console.print(f"Tagged {parsed.name}@{version} as [bold]{parsed.name}@{tag_name}[/]")


@branch_app.command("create")
def branch_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Dataset.")],
    branch: Annotated[str, typer.Argument(metavar="BRANCH", help="New branch name.")],
    from_: Annotated[
        str | None,
        typer.Option("--from", help="Start from this reference (default: head of main)."),
    ] = None,
    author: AuthorOpt = None,
) -> None:
    """Create BRANCH of dataset NAME; write to it with --branch, read it as NAME@branch:BRANCH."""
    version = lake_of(ctx).dataset(name).branch(branch, from_, author=author)
    console.print(f"Created branch [bold]{name}@branch:{branch}[/] at {name}@{version}")


@branch_app.command("ls")
def branch_ls(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Dataset.")],
    as_json: JsonOpt = False,
) -> None:
    """List branches with their head versions."""
    branches = lake_of(ctx).dataset(name).branches()
    if as_json:
        print_json([{"branch": b, "version": v} for b, v in branches.items()])
        return
    for b, v in branches.items():
        console.print(f"{b}  {'-' if v is None else f'{name}@{v}'}")


@app.command("revert")
def revert(
    ctx: typer.Context,
    ref: Annotated[
        str,
        typer.Argument(metavar="REF", help="The version whose content to restore, e.g. tickets@3."),
    ],
    branch: BranchOpt = "main",
    message: MessageOpt = "",
    author: AuthorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Publish REF's content as a new version (history is never rewritten)."""
    from curata.lake import parse_ref

    parsed = parse_ref(ref)
    commit = (
        lake_of(ctx, author)
        .dataset(parsed.name)
        .revert(str(parsed), message=message, author=author, branch=branch)
    )
    print_commit(commit, as_json, nothing=f"The head already has the content of {parsed}")


@app.command("export")
def export(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="Dataset reference to export.")],
    path: Annotated[Path, typer.Argument(metavar="PATH", help="Output file (or folder for hf).")],
    format: Annotated[
        str | None,
        typer.Option("--format", "-f", help="parquet, csv, jsonl or hf (default: by extension)."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace PATH if it exists.")] = False,
) -> None:
    """Write REF to a Parquet, CSV or JSONL file or a Hugging Face datasets folder."""
    from curata.lake import parse_ref

    parsed = parse_ref(ref)
    n = (
        lake_of(ctx)
        .dataset(parsed.name)
        .export(path, format=format, ref=str(parsed), overwrite=overwrite)
    )
    console.print(f"Wrote {n:,} rows of {parsed} to {path}", markup=False)


@app.command("set")
def set_(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Dataset.")],
    owner: Annotated[str | None, typer.Option(help="New owner.")] = None,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Labels (replace all); repeatable.")
    ] = None,
    classify: Annotated[
        list[str] | None,
        typer.Option(
            "--classify", help="COL=CLASS, e.g. email=pii:email (COL= removes); repeatable."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a dataset's owner, description, labels or column classifications."""
    classes: dict[str, str] = {}
    for item in classify or []:
        col, sep, cls = item.partition("=")
        if not sep or not col:
            raise InvalidInput(
                f"--classify {item!r} is not COL=CLASS.", hint="E.g. --classify email=pii:email"
            )
        classes[col.strip()] = cls.strip()
    info = (
        lake_of(ctx)
        .dataset(name)
        .set(owner=owner, description=description, tags=tag, classifications=classes or None)
    )
    if as_json:
        print_json(info.to_dict())
    else:
        console.print(f"Updated [bold]{name}[/]")
