"""Knowledge-base sync: bring the documents and chunks in line with a source, incrementally.

1. List the source; a document whose size and mtime are as recorded is unchanged without
   being read, otherwise it is read and its content hash decides.
2. Parse and chunk only new and changed documents (the ``parse`` and ``chunk`` steps, through
   the chosen executor). A file that cannot be read or parsed is reported and quarantined;
   its published version, if any, stays.
3. Embed the distinct texts of the new chunks with every embedder of the knowledge base (the
   ``embed`` step with its per-row cache, so a chunk text seen before costs nothing).
4. Publish, in one catalog transaction: documents upserted (deleted ones removed with
   ``delete_missing``), chunks of changed and deleted documents out and the new ones in, the
   search indexes brought up to date, and the manifest. Nothing is visible before that; a
   sync that fails or is killed leaves the previous version as it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from curata.errors import Conflict, CurataError, InvalidInput
from curata.pipeline.executor import PlannedStep, Segment
from curata.pipeline.local import map_batches
from curata.rag.embedding_cache import EmbedCounts, embed_cached
from curata.rag.manifest import (
    CHUNKS,
    QUARANTINE,
    RETIRED,
    Manifest,
    Part,
    publish_manifest,
    refuse_moved_parts,
)
from curata.rag.source_scope import ScopedSource
from curata.rag.steps import MAX_DOCUMENT_BYTES, ChunkStep, ParseStep

if TYPE_CHECKING:
    import pyarrow as pa

    from curata.lake import Lake
    from curata.lake.publish import Publication
    from curata.sources import Change, ChangeSet, SourceItem

Progress = Callable[[str, int, int | None], None]
BATCH_DOCUMENTS = 64
BATCH_BYTES = 32 * 2**20
CHUNK_COLUMNS = (
    "chunk_id",
    "doc_id",
    "doc_version",
    "chunk_index",
    "text",
    "heading",
    "page",
    "n_tokens",
    "source_uri",
)


@dataclass
class SyncResult:
    """What a sync did. ``version`` is the knowledge base's version after it."""

    name: str
    version: int | None
    previous_version: int | None
    documents: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("new", "changed", "unchanged", "deleted", "failed"), 0
        )
    )
    chunks: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("added", "embedded", "reused", "removed"), 0)
    )
    failed: list[dict[str, str]] = field(default_factory=list)
    #: PII values replaced in the documents indexed (when the knowledge base redacts PII)
    pii_redacted: int = 0
    #: new or changed documents skipped as duplicates (when the knowledge base dedups)
    duplicates: list[dict[str, str]] = field(default_factory=list)
    #: unchanged documents with a new size or mtime (a touch, a copy), stored for the fast path
    touched: int = 0
    #: documents of the source moved from (``moved_from``) that are this source's now
    moved: int = 0
    #: things the user should know, such as sources that overlap
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    run_id: str | None = None

    @property
    def published(self) -> bool:
        return self.version != self.previous_version

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "previous_version": self.previous_version,
            "documents": self.documents,
            "chunks": self.chunks,
            "failed": self.failed,
            "pii_redacted": self.pii_redacted,
            "duplicates": self.duplicates,
            "touched": self.touched,
            "moved": self.moved,
            "warnings": self.warnings,
            "seconds": round(self.seconds, 3),
            "run_id": self.run_id,
        }


@dataclass
class _Previous:
    doc_id: str
    size: int
    mtime: float
    content_hash: str
    doc_version: int
    source: str | None


@dataclass
class _Plan:
    """What the listing and parsing found."""

    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0
    touched: list[dict[str, Any]] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    duplicates: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class SyncOptions:
    """How a sync runs (see :meth:`curata.rag.KnowledgeBase.sync`)."""

    delete_missing: bool = False
    executor: str = "local"
    workers: int | None = None
    max_bytes: int = MAX_DOCUMENT_BYTES
    message: str | None = None
    progress: Progress | None = None


@dataclass
class _Job:
    """One sync in progress: what it started from and what it found so far."""

    lake: Lake
    manifest: Manifest
    source: Any
    options: SyncOptions
    result: SyncResult
    previous: dict[str, _Previous]
    plan: _Plan = field(default_factory=_Plan)


def sync_knowledge_base(
    lake: Lake,
    manifest: Manifest,
    source_uri: str,
    *,
    delete_missing: bool = False,
    prefix: str | None = None,
    moved_from: str | None = None,
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    storage_options: dict[str, Any] | None = None,
    text_field: str = "text",
    id_field: str | None = "id",
    executor: str = "local",
    workers: int | None = None,
    max_bytes: int = MAX_DOCUMENT_BYTES,
    message: str | None = None,
    progress: Progress | None = None,
) -> SyncResult:
    """Sync knowledge base ``manifest.name`` with ``source_uri``; see the module docstring."""
    from curata.pipeline.run import EXECUTORS
    from curata.sources import open_source

    if executor not in EXECUTORS:
        raise InvalidInput(f"Unknown executor {executor!r}.", hint="Use local or ray.")
    if workers is not None and workers < 1:
        raise InvalidInput(f"--workers must be at least 1, not {workers}.")
    started = time.perf_counter()
    opened = open_source(
        source_uri,
        include=include,
        exclude=exclude,
        text_field=text_field,
        id_field=id_field,
        storage_options=storage_options,
    )
    result = SyncResult(manifest.name, manifest.version, manifest.version)
    previous = _previous_documents(lake, manifest)
    source = ScopedSource(
        opened, manifest, previous, prefix, renaming=delete_missing, moved_from=moved_from
    )
    run_id = lake.start_run(
        f"kb-sync:{manifest.name}",
        params={**source.params(), "delete_missing": delete_missing, "executor": executor},
        code_version=_curata_version(),
        executor=executor,
        inputs=[p.ref for p in manifest.parts if p.ref and p.role != QUARANTINE],
    )
    result.run_id = run_id
    options = SyncOptions(delete_missing, executor, workers, max_bytes, message, progress)
    try:
        _sync(_Job(lake, manifest, source, options, result, previous))
    except BaseException as err:
        lake.finish_run(run_id, status="failed", metrics={}, outputs=[], error=str(err))
        raise
    result.seconds = time.perf_counter() - started
    lake.finish_run(run_id, status="succeeded", metrics=result.to_dict(), outputs=[])
    return result


def _sync(job: _Job) -> None:
    import pyarrow.compute as pc

    from curata.sources import ChangeSet, PreviousState

    lake, manifest, source, options = job.lake, job.manifest, job.source, job.options

    items, clashes = source.listing()
    job.result.warnings = source.overlap_warnings()
    mine = (job.previous[d] for d in source.own)
    stored = {p.doc_id: PreviousState(p.size, p.mtime, p.content_hash) for p in mine}
    changes = ChangeSet(
        items,
        stored,
        lists_completely=source.lists_completely,
        problems=lambda: source.problems,
        max_bytes=options.max_bytes,
    )
    plan = job.plan
    settings = manifest.chunk_settings
    parse = {"max_bytes": options.max_bytes, "errors_to_column": True, "pii": manifest.pii}
    size, overlap = settings["chunk_size"], settings["chunk_overlap"]
    chunk = {"embedder": manifest.embedders[0], "size": size, "overlap": overlap}
    segment = Segment(
        steps=[PlannedStep(ParseStep(parse)), PlannedStep(ChunkStep(chunk))],
        taps={"documents": 0, "chunks": 1},
        gates=[],
        offset=0,
    )
    batches = _document_batches(job, changes, len(items))
    workers = options.workers if options.workers is not None else _workers(job, items)
    documents: list[pa.Table] = []
    chunks: list[pa.Table] = []
    try:
        for batch in map_batches(segment, batches, options.executor, workers):
            documents.append(batch.tables["documents"])
            chunks.append(batch.tables["chunks"])
    except BrokenProcessPool as err:
        raise CurataError(
            "A worker process parsing documents died; nothing was published.",
            hint="A script that calls sync must guard its top level with "
            "`if __name__ == '__main__':` (workers are spawned and import it), or pass "
            "workers=1.",
        ) from err
    _take_listing(plan, changes, source.problems + clashes)
    docs_table, chunk_table = _settle(documents, chunks, plan, job.previous)
    deleted = changes.deleted if options.delete_missing else []
    if manifest.dedup != "off" and docs_table.num_rows:
        docs_table, chunk_table = _skip_duplicates(job, docs_table, chunk_table, deleted)
    if "pii_redacted" in docs_table.column_names:
        job.result.pii_redacted = int(pc.sum(docs_table["pii_redacted"]).as_py() or 0)
    if deleted and not items and not clashes:
        raise InvalidInput(
            f"{source.uri} lists no documents; --delete-missing would remove all "
            f"{len(deleted)} documents of {manifest.name!r}.",
            hint="Check the source path or prefix; nothing was published.",
        )
    plan.moved = source.moved_documents(deleted)
    _count(job.result, plan, deleted)
    if docs_table.num_rows == 0 and not deleted and not plan.touched and not plan.moved:
        _write_quarantine_only(job)
        return
    embedded = _embed_all(
        lake,
        manifest,
        chunk_table,
        executor=options.executor,
        result=job.result,
        progress=options.progress,
    )
    _publish(job, docs_table, embedded, deleted)


def _workers(job: _Job, items: list[SourceItem]) -> int | None:
    """One process unless there is much to parse: a pool costs seconds to start."""
    to_read = 0
    for item in items:
        prev = job.previous.get(item.doc_id)
        same = prev is not None and (prev.size, prev.mtime) == (item.size, item.mtime)
        if not (same and item.mtime) and item.size <= job.options.max_bytes:
            to_read += item.size
    return None if to_read > BATCH_BYTES else 1


def _skip_duplicates(
    job: _Job, docs: pa.Table, chunks: pa.Table, deleted: list[str]
) -> tuple[pa.Table, pa.Table]:
    """Drop new and changed documents that duplicate an indexed one that stays (not one this
    sync deletes: a moved file is no copy) or an earlier new one."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from curata.quality.dedup import find_duplicates

    plan, manifest = job.plan, job.manifest
    incoming = docs["doc_id"].to_pylist()
    replaced = set(incoming) | set(deleted)
    kept_ids: list[str] = []
    kept_texts: list[str] = []
    part = manifest.documents
    if part.version is not None:
        stored = job.lake.ref(part.ref or "").to_arrow(columns=["doc_id", "text"])
        for doc_id, text in zip(stored["doc_id"].to_pylist(), stored["text"].to_pylist(),
                                strict=True):  # fmt: skip
            if doc_id not in replaced:
                kept_ids.append(doc_id)
                kept_texts.append(text)
    ids = kept_ids + incoming
    # Keep the indexed document of a cluster, else the new one first in doc_id order.
    rank = {d: i for i, d in enumerate(sorted(incoming))}
    keys = list(range(len(kept_ids))) + [len(kept_ids) + rank[d] for d in incoming]
    found = find_duplicates(kept_texts + docs["text"].to_pylist(), manifest.dedup, keys=keys)
    skipped: dict[str, str] = {}
    for members, canonical in zip(found.clusters, found.canonical, strict=True):
        for m in members:
            if m != canonical and m >= len(kept_ids):
                skipped[ids[m]] = ids[canonical]
    if not skipped:
        return docs, chunks
    plan.duplicates = [{"doc_id": d, "duplicate_of": o} for d, o in sorted(skipped.items())]
    plan.new = [d for d in plan.new if d not in skipped]
    plan.changed = [d for d in plan.changed if d not in skipped]
    gone = pa.array(sorted(skipped))
    return (
        docs.filter(pc.invert(pc.is_in(docs["doc_id"], gone))),
        chunks.filter(pc.invert(pc.is_in(chunks["doc_id"], gone))),
    )


def _take_listing(plan: _Plan, changes: ChangeSet, problems: list[tuple[str, str]]) -> None:
    """Counts from the change detection: unchanged, touched, and what could not be read."""
    plan.unchanged = len(changes.unchanged)
    plan.touched = [
        {"doc_id": d, "size": s.size, "mtime": s.mtime} for d, s in changes.touched.items()
    ]
    failed = dict(problems)
    failed.update(changes.failed)
    plan.failed = [{"doc_id": d, "reason": r} for d, r in failed.items()]


def _previous_documents(lake: Lake, manifest: Manifest) -> dict[str, _Previous]:
    part = manifest.documents
    if part.version is None:
        return {}
    columns = [f.name for f in fields(_Previous)]
    rows = lake.ref(part.ref or "").to_arrow(columns=columns).to_pylist()
    return {r["doc_id"]: _Previous(**r) for r in rows}


def _retired_versions(lake: Lake, manifest: Manifest, doc_ids: list[str]) -> dict[str, int]:
    """The highest versions of ``doc_ids`` that are no longer published (deleted, or left
    behind by a rollback), for those that have one."""
    part = manifest.part(RETIRED)
    if part.version is None or not doc_ids:
        return {}
    table = lake.ref(part.ref or "").to_arrow(
        columns=["doc_id", "last_version"], filter=_in_filter("doc_id", doc_ids)
    )
    return dict(zip(table["doc_id"].to_pylist(), table["last_version"].to_pylist(), strict=True))


def _document_batches(job: _Job, changes: ChangeSet, total: int) -> Iterator[pa.Table]:
    """New and changed documents, read once each, in batches of rows for the parse step."""
    rows: list[dict[str, Any]] = []
    size = 0
    for change in changes:
        rows.append(_row(job, change))
        size += len(change.data)
        if job.options.progress is not None:
            done = len(changes.unchanged) + len(changes.failed) + len(changes.hashes)
            job.options.progress("read", done, total)
        if len(rows) >= BATCH_DOCUMENTS or size >= BATCH_BYTES:
            yield _rows_table(_with_versions(job, rows))
            rows, size = [], 0
    if rows:
        yield _rows_table(_with_versions(job, rows))


def _row(job: _Job, change: Change) -> dict[str, Any]:
    item = change.item
    prev = job.previous.get(item.doc_id)
    return {
        "doc_id": item.doc_id,
        "doc_version": 0 if prev is None else prev.doc_version,  # numbered in _with_versions
        "content_hash": change.content_hash,
        "source": job.source.identity,
        "source_uri": item.uri,
        "mime": item.mime,
        "size": len(change.data),
        "mtime": item.mtime,
        "metadata": _json(item.metadata),
        "data": change.data,
    }


def _with_versions(job: _Job, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Number documents one above the highest version they ever had: the published one, or
    one that a deletion or a rollback retired. So a version number never names two contents."""
    retired = _retired_versions(job.lake, job.manifest, [r["doc_id"] for r in rows])
    for r in rows:
        r["doc_version"] = max(r["doc_version"], retired.get(r["doc_id"], 0)) + 1
    return rows


def _rows_table(rows: list[dict[str, Any]]) -> pa.Table:
    import pyarrow as pa

    schema = pa.schema(
        [
            ("doc_id", pa.string()),
            ("doc_version", pa.int64()),
            ("content_hash", pa.string()),
            ("source", pa.string()),
            ("source_uri", pa.string()),
            ("mime", pa.string()),
            ("size", pa.int64()),
            ("mtime", pa.float64()),
            ("metadata", pa.string()),
            ("data", pa.binary()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def _settle(
    documents: list[pa.Table],
    chunks: list[pa.Table],
    plan: _Plan,
    previous: dict[str, _Previous],
) -> tuple[pa.Table, pa.Table]:
    """Documents that parsed (the others go to ``plan.failed``) and their chunks."""
    import pyarrow as pa
    import pyarrow.compute as pc

    docs = pa.concat_tables(documents) if documents else None
    if docs is None or docs.num_rows == 0:
        return _empty_documents(), _empty_chunks()
    errors = docs.column("error")
    for doc_id, error in zip(docs["doc_id"].to_pylist(), errors.to_pylist(), strict=True):
        if error is not None:
            plan.failed.append({"doc_id": doc_id, "reason": error})
    good = docs.filter(pc.is_null(errors)).drop_columns(["error"])
    chunk_table = pa.concat_tables(chunks, promote_options="permissive").select(list(CHUNK_COLUMNS))
    no_chunks = set(good["doc_id"].to_pylist()) - set(chunk_table["doc_id"].to_pylist())
    texts = dict(zip(good["doc_id"].to_pylist(), good["text"].to_pylist(), strict=True))
    for doc_id in sorted(no_chunks):
        # Chunks hold what is under a heading; headings alone are only their prefix.
        headings = (texts[doc_id] or "").strip()
        reason = "only headings, no text under them to index" if headings else "no text to index"
        plan.failed.append({"doc_id": doc_id, "reason": reason})
    if no_chunks:
        good = good.filter(pc.invert(pc.is_in(good["doc_id"], pa.array(sorted(no_chunks)))))
    n_chunks = chunk_table.group_by("doc_id").aggregate([("chunk_id", "count")])
    counts = dict(zip(n_chunks["doc_id"].to_pylist(), n_chunks[1].to_pylist(), strict=True))
    good = good.append_column(
        "n_chunks", pa.array([counts.get(d, 0) for d in good["doc_id"].to_pylist()], pa.int32())
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    good = good.append_column("ingested_at", pa.array([now] * good.num_rows, pa.timestamp("us")))
    for doc_id in good["doc_id"].to_pylist():
        (plan.changed if doc_id in previous else plan.new).append(doc_id)
    return good, chunk_table


def _empty_documents() -> pa.Table:
    import pyarrow as pa

    return pa.table({"doc_id": pa.array([], pa.string())})


def _empty_chunks() -> pa.Table:
    import pyarrow as pa

    return pa.table({c: pa.array([], pa.string()) for c in CHUNK_COLUMNS})


def _count(result: SyncResult, plan: _Plan, deleted: list[str]) -> None:
    result.documents.update(
        new=len(plan.new),
        changed=len(plan.changed),
        unchanged=plan.unchanged,
        deleted=len(deleted),
        failed=len(plan.failed),
    )
    result.failed = sorted(plan.failed, key=lambda f: f["doc_id"])
    result.duplicates = plan.duplicates
    result.touched = len(plan.touched)
    result.moved = len(plan.moved)


def _embed_all(
    lake: Lake,
    manifest: Manifest,
    chunks: pa.Table,
    *,
    executor: str,
    result: SyncResult,
    progress: Progress | None,
    again: str = "run the sync again",
) -> dict[str, pa.Table]:
    """The new chunks with embeddings, per embedder; counts embedded and reused texts.
    ``again`` ends the hint of an embedder failure (what to run once it is fixed)."""
    import pyarrow as pa

    out: dict[str, pa.Table] = {}
    result.chunks["added"] = chunks.num_rows
    texts = chunks["text"] if chunks.num_rows else pa.array([], pa.string())
    counts = EmbedCounts()
    for part in manifest.chunk_parts:
        spec = part.settings["embedder"]
        vectors = embed_cached(
            lake,
            texts,
            spec,
            executor=executor,
            counts=counts,
            progress=progress,
            again=again,
        )
        # The dimension from the manifest: a sync that only deletes needs no endpoint.
        out[spec] = _attach(chunks, vectors, spec, int(part.settings["dim"]))
    result.chunks["embedded"] += counts.embedded
    result.chunks["reused"] += counts.reused
    return out


def _attach(chunks: pa.Table, vectors: pa.Table | None, spec: str, dim: int) -> pa.Table:
    """``chunks`` with the ``embedding`` of their text and the ``embedding_model``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    vector_type = pa.list_(pa.float32(), dim)
    if vectors is None or chunks.num_rows == 0:
        embedding = pa.array([], vector_type)
    else:
        index = pc.index_in(chunks["text"], vectors["text"])
        embedding = vectors["embedding"].combine_chunks().cast(vector_type).take(index)
    table = chunks.append_column("embedding", embedding)
    return table.append_column("embedding_model", pa.array([spec] * chunks.num_rows, pa.string()))


def _publish(
    job: _Job, documents: pa.Table, embedded: dict[str, pa.Table], deleted: list[str]
) -> None:
    import pyarrow as pa

    lake, manifest, plan, result = job.lake, job.manifest, job.plan, job.result
    previous, message = job.previous, job.options.message
    docs_part = manifest.documents
    replaced = sorted(set(plan.changed) | set(deleted))
    result.chunks["removed"] = _removed_chunks(lake, manifest, replaced)
    summary = message or _message(result)
    retired = _retired_rows(lake, manifest, previous, deleted)
    with lake.publish(message=summary, run_id=result.run_id) as pub:
        if pub.base_version(manifest.name) != manifest.version:
            raise Conflict(
                f"Another sync of {manifest.name!r} published while this one ran.",
                hint="Run the sync again; it will only do what is left.",
            )
        refuse_moved_parts(pub, manifest)
        if documents.num_rows:
            pub.upsert(docs_part.dataset, documents)
        if plan.touched:
            pub.upsert(docs_part.dataset, pa.Table.from_pylist(plan.touched))
        if plan.moved:
            pub.upsert(docs_part.dataset, job.source.relabelled(plan.moved))
        if deleted:
            pub.delete(docs_part.dataset, _in_filter("doc_id", deleted))
        for part in manifest.chunk_parts:
            _replace_chunks(pub, part, replaced, embedded[part.settings["embedder"]], result)
        if deleted:
            pub.upsert(manifest.part(RETIRED).dataset, retired)
        _quarantine(job, pub)
        new = publish_manifest(pub, job.source.remember(manifest))
    result.version = new.version


def _retired_rows(
    lake: Lake, manifest: Manifest, previous: dict[str, _Previous], deleted: list[str]
) -> pa.Table:
    """Rows of ``kb.retired`` for ``deleted``: the highest version each had, which a rollback
    may have retired before (above the one published now)."""
    import pyarrow as pa

    before = _retired_versions(lake, manifest, deleted)
    last = [max(previous[d].doc_version, before.get(d, 0)) for d in deleted]
    return pa.table(
        {"doc_id": pa.array(deleted, pa.string()), "last_version": pa.array(last, pa.int64())}
    )


def _replace_chunks(
    pub: Publication, part: Part, replaced: list[str], chunks: pa.Table, result: SyncResult
) -> None:
    if part.version is not None and replaced:
        pub.delete(part.dataset, _in_filter("doc_id", replaced))
    if chunks.num_rows:
        pub.append(part.dataset, chunks)
    pub.index_for_search(part.dataset, vector="embedding", text="text")


def _removed_chunks(lake: Lake, manifest: Manifest, doc_ids: list[str]) -> int:
    """Chunks (of the first embedder) that belong to ``doc_ids`` in the published version."""
    part = manifest.chunk_parts[0]
    if part.version is None or not doc_ids:
        return 0
    return lake.ref(part.ref or "").count_rows(_in_filter("doc_id", doc_ids))


def _quarantine(job: _Job, pub: Publication) -> None:
    part = job.manifest.part(QUARANTINE)
    if not job.plan.failed and part.version is None:
        return
    before = None if part.version is None else job.lake.ref(part.ref or "").to_arrow()
    # No run id per row: a file that keeps failing must not make every sync a new version
    # (the commit records the run).
    pub.overwrite(part.dataset, job.source.quarantine(before, job.plan.failed))


def _write_quarantine_only(job: _Job) -> None:
    """Nothing to index: still record what failed (and clear what no longer fails)."""
    manifest, result = job.manifest, job.result
    if not job.plan.failed and manifest.part(QUARANTINE).version is None:
        return
    with job.lake.publish(message=_message(result), run_id=result.run_id) as pub:
        refuse_moved_parts(pub, manifest)
        _quarantine(job, pub)
        new = publish_manifest(pub, manifest)
    result.version = new.version


def _message(result: SyncResult) -> str:
    d = result.documents
    touched = f", {result.touched} touched" if result.touched else ""
    moved = f", {result.moved} moved" if result.moved else ""
    return (
        f"sync: {d['new']} new, {d['changed']} changed, {d['deleted']} deleted, "
        f"{d['failed']} failed{touched}{moved}"
    )


def _in_filter(column: str, values: list[str]) -> str:
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"{column} IN ({quoted})"


def _json(value: Any) -> str | None:
    import json

    return json.dumps(value, sort_keys=True, default=str) if value else None


def _curata_version() -> str:
    from importlib.metadata import version

    return version("curata")


def embed_chunks_of(
    lake: Lake, manifest: Manifest, part: Part, *, progress: Progress | None = None
) -> pa.Table:
    """The chunks of ``manifest`` (its first chunks part) embedded for chunks part ``part``:
    from the embedding cache where these texts were embedded by that model before."""
    first = manifest.chunk_parts[0]
    if first.version is None:
        chunks = _empty_chunks()
    else:
        chunks = lake.ref(first.ref or "").to_arrow(columns=list(CHUNK_COLUMNS))
    alone = Manifest(manifest.name, manifest.version, (part,))
    result = SyncResult(manifest.name, manifest.version, manifest.version)
    embedded = _embed_all(
        lake,
        alone,
        chunks,
        executor="local",
        result=result,
        progress=progress,
        again="run the command again",
    )
    return embedded[part.settings["embedder"]]


def add_embedder(
    lake: Lake, manifest: Manifest, spec: str, *, progress: Progress | None = None
) -> int:
    """Add a chunks dataset embedded by ``spec``, filled from the current chunks, and publish
    it with the manifest; later syncs keep it in step. Returns the new version."""
    from curata.errors import AlreadyExists
    from curata.rag.embedders import load_embedder
    from curata.rag.manifest import chunks_dataset_name

    model = load_embedder(spec)
    if model.spec in manifest.embedders:
        raise AlreadyExists(f"Knowledge base {manifest.name!r} has embedder {spec!r} already.")
    name = chunks_dataset_name(manifest.name, model.slug, first=False)
    if lake.has_dataset(name) and lake.dataset(name).log():
        raise AlreadyExists(f"A dataset named {name!r} exists already and is not empty.")
    part = Part(CHUNKS, name, None, {"embedder": model.spec, "dim": model.dim})
    embedded = embed_chunks_of(lake, manifest, part, progress=progress)
    extended = Manifest(manifest.name, manifest.version, (*manifest.parts, part))
    with lake.publish(message=f"add embedder {spec}") as pub:
        if pub.base_version(manifest.name) != manifest.version:
            raise Conflict(
                f"{manifest.name!r} changed while the embedder was added.",
                hint="Run the command again.",
            )
        refuse_moved_parts(pub, manifest)
        pub.create_dataset(
            name,
            kind="chunks",
            key="chunk_id",
            description=f"Chunks of knowledge base {manifest.name}, embedded by {spec}",
        )
        if embedded.num_rows:
            pub.append(name, embedded)
            pub.index_for_search(name, vector="embedding", text="text")
        new = publish_manifest(pub, extended)
    return new.version
