"""``curata kb``: knowledge bases (create, sync, sources, search, log, diff, tag, rollback,
check)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from curata.cli.common import JsonOpt, lake_of
from curata.cli.output import console, err_console, print_json
from curata.cli.records import RecordColumn, print_records

if TYPE_CHECKING:
    from collections.abc import Callable

    from curata.rag.kb import KnowledgeBase
    from curata.rag.search import SearchHit
    from curata.rag.sync import SyncResult

# A sync that fails many documents (a moved folder, a folder of scans) prints the first ones.
_FAILURES_SHOWN = 10

app = typer.Typer(
    help="Knowledge bases for retrieval: documents, chunks and embeddings, versioned together.",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(help="Knowledge base name.")]


def _kb(ctx: typer.Context, name: str) -> KnowledgeBase:
    from curata.rag.kb import KnowledgeBase

    return KnowledgeBase(lake_of(ctx), name)


@app.command()
def create(
    ctx: typer.Context,
    name: NameArg,
    embedder: Annotated[
        str,
        typer.Option(
            help="minilm (local, default), minilm-int8 (local, faster), openai:MODEL, "
            "bedrock:MODEL or hash:DIM."
        ),
    ] = "minilm",
    chunk_size: Annotated[int, typer.Option(help="Tokens per chunk (the model's tokens).")] = 200,
    chunk_overlap: Annotated[int, typer.Option(help="Tokens shared by consecutive chunks.")] = 30,
    description: Annotated[str, typer.Option(help="What the knowledge base holds.")] = "",
    pii: Annotated[
        str,
        typer.Option(
            help="PII in documents: off (kept), replace (<EMAIL_ADDRESS>), mask or redact "
            "(removed) before anything is stored or embedded."
        ),
    ] = "off",
    dedup: Annotated[
        str,
        typer.Option(
            help="Skip new documents that duplicate an indexed one: off, exact (same text "
            "once normalised) or near (Jaccard of word 5-grams >= 0.8)."
        ),
    ] = "off",
    as_json: JsonOpt = False,
) -> None:
    """Create an empty knowledge base; fill it with `curata kb sync`."""
    from curata.rag.kb import KnowledgeBase

    kb = KnowledgeBase.create(
        lake_of(ctx),
        name,
        embedder=embedder,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        description=description,
        pii=pii,
        dedup=dedup,
    )
    manifest = kb.manifest()
    if as_json:
        print_json(manifest.to_dict())
        return
    console.print(
        f"Created knowledge base {name} (embedder {embedder}, chunks of {chunk_size} tokens, "
        f"overlap {chunk_overlap}). Next: curata kb sync {name} FOLDER",
        markup=False,
    )


@app.command()
def sync(
    ctx: typer.Context,
    name: NameArg,
    source: Annotated[
        str, typer.Argument(help="A folder, s3://bucket/prefix, or a JSONL file of records.")
    ],
    delete_missing: Annotated[
        bool,
        typer.Option(
            "--delete-missing",
            help="Also remove the documents read from SOURCE before that it no longer lists; "
            "documents of other sources stay.",
        ),
    ] = False,
    prefix: Annotated[
        str | None,
        typer.Option(
            metavar="PREFIX",
            help="Put PREFIX/ in front of every doc id from SOURCE (faq -> faq/README.md), "
            "so that two sources with the same file names fit in one knowledge base. "
            "Remembered for SOURCE: later syncs may leave it out; a different one is refused "
            "unless --delete-missing renames the documents.",
        ),
    ] = None,
    moved_from: Annotated[
        str | None,
        typer.Option(
            metavar="OLD",
            help="SOURCE is the source OLD in a new place (moved, another checkout, a sync "
            "from another folder): the documents of OLD become SOURCE's, with their prefix; "
            "unchanged ones are not parsed or embedded again. `curata kb sources NAME` lists "
            "the sources.",
        ),
    ] = None,
    include: Annotated[
        list[str] | None,
        typer.Option(metavar="GLOB", help="Only paths matching (e.g. '**/*.md'); repeatable."),
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option(metavar="GLOB", help="Skip paths matching; repeatable.")
    ] = None,
    text_field: Annotated[
        str, typer.Option(help="JSONL sources: the field holding each record's text.")
    ] = "text",
    id_field: Annotated[
        str,
        typer.Option(help="JSONL sources: the field holding each record's id ('': line numbers)."),
    ] = "id",
    max_bytes: Annotated[
        int,
        typer.Option(help="Files larger than this many bytes fail without being read.", min=1),
    ] = 100 * 2**20,
    executor: Annotated[str, typer.Option(help="local (default) or ray.")] = "local",
    workers: Annotated[
        int | None, typer.Option(help="Worker processes for parsing (default: by input size).")
    ] = None,
    message: Annotated[str | None, typer.Option("-m", "--message", help="Version message.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Index new and changed documents of SOURCE and publish them as one new version.

    Unchanged documents cost a directory listing; changed ones are re-chunked, and only chunk
    texts never embedded before are sent to the model. Files that cannot be read are
    reported (and kept in NAME.quarantine); the sync goes on with the rest.

    Several sources can feed one knowledge base. A source is SOURCE as given, normalised
    but not made absolute (docs/ is docs): run its syncs from the same folder each time. A
    document whose doc id is already published from another source is reported as failed
    and not indexed: give one of the sources a --prefix, or, when SOURCE is that source in a
    new place, add --moved-from."""
    kb = _kb(ctx, name)
    options: dict[str, Any] = {
        "delete_missing": delete_missing,
        "prefix": prefix,
        "moved_from": moved_from,
        "include": tuple(include or ()),
        "exclude": tuple(exclude or ()),
        "text_field": text_field,
        "id_field": id_field or None,
        "max_bytes": max_bytes,
        "executor": executor,
        "workers": workers,
        "message": message,
    }
    if as_json or not err_console.is_terminal:
        result = kb.sync(source, **options)
    else:
        result = _with_progress(lambda progress: kb.sync(source, progress=progress, **options))
    if as_json:
        print_json(result.to_dict())
        return
    _print_sync(result)


def _with_progress(work: Callable[[Any], SyncResult]) -> SyncResult:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    tasks: dict[str, Any] = {}
    with Progress(
        TextColumn("{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
    ) as bar:

        def progress(stage: str, done: int, total: int | None) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        return work(progress)


def _print_sync(result: SyncResult) -> None:
    d, c = result.documents, result.chunks
    console.print(
        f"documents: {d['new']} new, {d['changed']} changed, {d['unchanged']} unchanged, "
        f"{d['deleted']} deleted, {d['failed']} failed",
        markup=False,
    )
    console.print(
        f"chunks: {c['added']} added ({c['embedded']} embedded, {c['reused']} reused), "
        f"{c['removed']} removed",
        markup=False,
    )
    if result.pii_redacted:
        console.print(f"PII: {result.pii_redacted} value(s) replaced before indexing", markup=False)
    for dup in result.duplicates:
        console.print(f"  skipped: {dup['doc_id']} duplicates {dup['duplicate_of']}", markup=False)
    for failure in result.failed[:_FAILURES_SHOWN]:
        console.print(f"  failed: {failure['doc_id']}: {failure['reason']}", markup=False)
    if len(result.failed) > _FAILURES_SHOWN:
        more = len(result.failed) - _FAILURES_SHOWN
        console.print(
            f"  ... and {more} more: --json lists them all, and so does "
            f"`curata dataset head {result.name}.quarantine`",
            markup=False,
        )
    for warning in result.warnings:
        err_console.print(f"warning: {warning}", markup=False, style="yellow")
    if result.moved:
        console.print(
            f"{result.moved} document(s) of the old place are this source's now",
            markup=False,
        )
    if result.touched:
        console.print(
            f"{result.touched} unchanged document(s) with a new modification time: stored, so "
            "the next sync does not read them again",
            markup=False,
        )
    if result.published:
        console.print(
            f"published {result.name}@{result.version} in {result.seconds:.1f}s", markup=False
        )
    else:
        console.print(
            f"nothing changed; {result.name} stays at version {result.version}", markup=False
        )


@app.command()
def search(
    ctx: typer.Context,
    name: NameArg,
    query: Annotated[str, typer.Argument(help="Question or keywords.")],
    k: Annotated[int, typer.Option("-k", help="How many chunks.")] = 5,
    at: Annotated[
        str | None, typer.Option(help="Version or tag to search (e.g. 3, prod); default head.")
    ] = None,
    mode: Annotated[str, typer.Option(help="vector, keyword (BM25) or hybrid.")] = "hybrid",
    embedder: Annotated[
        str | None, typer.Option(help="Whose chunks to search (default: the first embedder).")
    ] = None,
    where: Annotated[
        str | None,
        typer.Option("--filter", help="SQL predicate on chunks, e.g. \"doc_id LIKE 'faq/%'\"."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Find the chunks that best answer QUERY, at any version."""
    hits = _kb(ctx, name).search(query, k, at=at, mode=mode, embedder=embedder, filter=where)
    if as_json:
        print_json([h.to_dict() | {"source": h.source} for h in hits])
        return
    _print_hits(hits)


def _print_hits(hits: list[SearchHit]) -> None:
    if not hits:
        console.print("no matching chunks")
        return
    for rank, hit in enumerate(hits, start=1):
        where = f" (page {hit.page})" if hit.page else ""
        console.print(
            f"{rank}. {hit.chunk_id}{where}  score {hit.score:.4f}", markup=False, style="bold"
        )
        text = " ".join(hit.text.split())
        console.print("   " + (text[:300] + ("..." if len(text) > 300 else "")), markup=False)


@app.command("log")
def log_cmd(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """Versions of the knowledge base, newest first."""
    entries = _kb(ctx, name).log()
    if as_json:
        print_json([e.to_dict() for e in entries])
        return
    for e in entries:
        tags = f" [{', '.join(e.tags)}]" if e.tags else ""
        console.print(
            f"{name}@{e.version}{tags}  {e.timestamp[:19]}  {e.author}  {e.message}", markup=False
        )


@app.command()
def sources(ctx: typer.Context, name: NameArg, as_json: JsonOpt = False) -> None:
    """The sources that fill the knowledge base: prefix, documents, failures, last sync."""
    found = _kb(ctx, name).sources()
    if as_json:
        print_json([s.to_dict() for s in found])
        return
    if not found:
        console.print(
            f"{name} has no sources yet; fill it with `curata kb sync {name} FOLDER`", markup=False
        )
        return
    columns = [
        RecordColumn("source"),
        RecordColumn("prefix"),
        RecordColumn("documents", justify="right"),
        RecordColumn("failed", justify="right"),
        RecordColumn("last sync"),
    ]
    rows = [
        [
            s.source,
            s.prefix or "-",
            str(s.documents),
            str(s.failed),
            "-" if s.last_sync_version is None else f"{name}@{s.last_sync_version}",
        ]
        for s in found
    ]
    print_records(columns, rows)


@app.command()
def diff(
    ctx: typer.Context,
    name: NameArg,
    ref_a: Annotated[str, typer.Argument(metavar="REF_A", help="Older version or tag.")],
    ref_b: Annotated[str, typer.Argument(metavar="REF_B", help="Newer version or tag.")],
    as_json: JsonOpt = False,
) -> None:
    """Documents added, changed and removed between two versions."""
    result = _kb(ctx, name).diff(ref_a, ref_b)
    if as_json:
        print_json(result)
        return
    docs = result["documents"]
    console.print(f"{name}@{result['from']} -> {name}@{result['to']}", markup=False)
    for d in docs["added"]:
        console.print(f"  + {d['doc_id']} (v{d['doc_version']})", markup=False)
    for d in docs["changed"]:
        console.print(
            f"  ~ {d['doc_id']} (v{d['from_version']} -> v{d['to_version']})", markup=False
        )
    for d in docs["removed"]:
        console.print(f"  - {d['doc_id']} (v{d['doc_version']})", markup=False)
    chunks = result["chunks"]
    console.print(f"chunks: {chunks['from']} -> {chunks['to']}", markup=False)


@app.command()
def tag(
    ctx: typer.Context,
    name: NameArg,
    ref: Annotated[str, typer.Argument(metavar="REF", help="Version or tag to point at.")],
    tag_name: Annotated[str, typer.Argument(metavar="TAG", help="Tag to set or move.")],
) -> None:
    """Point TAG at a version, for the knowledge base and all its parts at once."""
    version = _kb(ctx, name).tag(ref, tag_name)
    console.print(f"{name}@{tag_name} -> {name}@{version}", markup=False)


@app.command()
def rollback(
    ctx: typer.Context,
    name: NameArg,
    ref: Annotated[str, typer.Argument(metavar="REF", help="Version or tag to go back to.")],
    message: Annotated[str | None, typer.Option("-m", "--message", help="Version message.")] = None,
) -> None:
    """Publish an earlier version's state as the new head (history is kept)."""
    kb = _kb(ctx, name)
    before = kb.version
    version = kb.rollback(ref, message=message)
    if version == before:
        console.print(f"{name} is already in the state of {ref}; nothing published", markup=False)
    else:
        console.print(f"published {name}@{version} with the content of {name}@{ref}", markup=False)


@app.command("add-embedder")
def add_embedder(
    ctx: typer.Context,
    name: NameArg,
    embedder: Annotated[
        str, typer.Argument(help="minilm, minilm-int8, openai:MODEL, bedrock:MODEL, hash:DIM.")
    ],
) -> None:
    """Embed the chunks with a second model too, and keep it in sync from now on."""
    version = _kb(ctx, name).add_embedder(embedder)
    console.print(f"published {name}@{version}: search it with --embedder {embedder}", markup=False)


@app.command()
def check(
    ctx: typer.Context,
    name: NameArg,
    repair: Annotated[bool, typer.Option("--repair", help="Publish a fixed version.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Verify that chunks and documents agree (exit code 1 when they do not)."""
    report = _kb(ctx, name).check(repair=repair)
    if as_json:
        print_json(report.to_dict())
    elif report.ok:
        console.print(f"{name}@{report.version}: consistent", markup=False)
    else:
        for p in report.problems:
            console.print(f"{p.kind}: {p.message}; e.g. {', '.join(p.examples[:3])}", markup=False)
        if report.repaired_version is not None:
            console.print(f"repaired: published {name}@{report.repaired_version}", markup=False)
        elif not repair:
            console.print(f"Publish a fixed version with `curata kb check {name} --repair`.")
    if not report.ok and report.repaired_version is None:
        raise typer.Exit(1)
