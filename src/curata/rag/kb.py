"""Knowledge bases: documents and their embedded chunks, versioned together in a lake.

>>> import curata
>>> from curata.rag import KnowledgeBase
>>> lake = curata.open("./.curata")  # doctest: +SKIP
>>> kb = KnowledgeBase.create(lake, "handbook", embedder="minilm")  # doctest: +SKIP
>>> kb.sync("docs/")  # doctest: +SKIP
>>> kb.search("which port does sync use?", k=3)  # doctest: +SKIP
>>> kb.search("which port does sync use?", at=1)  # an earlier version  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from curata.errors import AlreadyExists, InvalidInput, StorageError
from curata.parse.document import DEFAULT_MAX_BYTES
from curata.rag.chunking import ChunkSettings
from curata.rag.embedders import DEFAULT_EMBEDDER, load_embedder
from curata.rag.manifest import (
    CHUNKS,
    DOCUMENTS,
    QUARANTINE,
    RETIRED,
    Manifest,
    Part,
    chunks_dataset_name,
    load_manifest,
    publish_manifest,
    read_manifest,
    ref_text,
)

PII_MODES = ("off", "replace", "mask", "redact")
DEDUP_MODES = ("off", "exact", "near")

if TYPE_CHECKING:
    import pyarrow as pa

    from curata.lake import Lake
    from curata.lake.snapshot import Snapshot
    from curata.rag.check import CheckReport
    from curata.rag.search import SearchHit
    from curata.rag.source_list import KbSource
    from curata.rag.sync import Progress, SyncResult


# How many versions' manifests and part snapshots a KnowledgeBase keeps open.
KEPT_VERSIONS = 16


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    """Keep ``value`` under ``key``, forgetting the oldest entry past KEPT_VERSIONS."""
    cache[key] = value
    if len(cache) > KEPT_VERSIONS:
        del cache[next(iter(cache))]


@dataclass(frozen=True)
class KbVersion:
    """One entry of a knowledge base's log."""

    version: int
    author: str
    timestamp: str
    message: str
    run_id: str | None
    tags: list[str]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class KnowledgeBase:
    """A knowledge base in a lake: see :mod:`curata.rag.manifest` for what it is made of."""

    def __init__(self, lake: Lake, name: str) -> None:
        self.lake = lake
        self.name = name
        load_manifest(lake, name)  # fails clearly when there is no such knowledge base
        # A published version never changes, so what was read of one is kept: searches then
        # cost one catalog read besides the search itself (see bench/bench_kb.py).
        self._manifests: dict[tuple[int, int], Manifest] = {}
        self._snapshots: dict[str, Snapshot] = {}

    def __repr__(self) -> str:
        return f"<KnowledgeBase {self.name}>"

    @classmethod
    def create(
        cls,
        lake: Lake,
        name: str,
        *,
        embedder: str = DEFAULT_EMBEDDER,
        chunk_size: int = 200,
        chunk_overlap: int = 30,
        description: str = "",
        pii: str = "off",
        dedup: str = "off",
    ) -> KnowledgeBase:
        """Create an empty knowledge base (version 1); fill it with :meth:`sync`.

        Args:
            lake: the lake to create it in.
            name: its name (also the prefix of its datasets).
            embedder: ``minilm``, ``openai:MODEL``, ``bedrock:MODEL`` or ``hash:DIM``.
            chunk_size: tokens per chunk, in the embedder's tokens.
            chunk_overlap: tokens shared by consecutive chunks of a section.
            description: what it holds.
            pii: PII in documents is kept (``off``), or replaced by the entity name
                (``replace``), masked (``mask``) or removed (``redact``) before anything is
                stored or embedded.
            dedup: new documents whose text duplicates one already indexed (or another new
                one) are skipped: ``exact`` (same text once normalised) or ``near``
                (word 5-gram Jaccard similarity of 0.8 or more); ``off`` keeps them all.

        Raises:
            AlreadyExists: a dataset of that name, or of one of its parts, exists.
            InvalidInput: a bad name, embedder, chunk settings or PII mode.
        """
        ChunkSettings(chunk_size, chunk_overlap)
        if dedup not in DEDUP_MODES:
            raise InvalidInput(
                f"Unknown dedup mode {dedup!r}.", hint=f"Use one of: {', '.join(DEDUP_MODES)}."
            )
        if pii not in PII_MODES:
            raise InvalidInput(
                f"Unknown PII mode {pii!r}.", hint=f"Use one of: {', '.join(PII_MODES)}."
            )
        model = load_embedder(embedder)
        if chunk_size > model.max_tokens:
            raise InvalidInput(
                f"Chunk size {chunk_size} is more than {embedder} reads ({model.max_tokens} "
                "tokens); the rest of each chunk would be ignored.",
                hint=f"Use --chunk-size {model.max_tokens} or less.",
            )
        parts = (
            Part(
                DOCUMENTS,
                f"{name}.documents",
                None,
                {
                    "chunk_size": chunk_size,
                    "chunk_overlap": chunk_overlap,
                    "pii": pii,
                    "dedup": dedup,
                },
            ),
            Part(
                CHUNKS,
                chunks_dataset_name(name, model.slug, True),
                None,
                {"embedder": embedder, "dim": model.dim},
            ),
            Part(RETIRED, f"{name}.retired", None),
            Part(QUARANTINE, f"{name}.quarantine", None),
        )
        if lake.has_dataset(name) and lake.dataset(name).info().kind == "knowledge_base":
            raise AlreadyExists(
                f"Knowledge base {name!r} exists already.",
                hint=f"Sync into it with `curata kb sync {name} SOURCE`, or pick another name.",
            )
        datasets = [
            (name, "knowledge_base", None, description or f"Knowledge base {name}"),
            (parts[0].dataset, "documents", "doc_id", f"Documents of knowledge base {name}"),
            (
                parts[1].dataset,
                "chunks",
                "chunk_id",
                f"Chunks of knowledge base {name}, embedded by {embedder}",
            ),
            (
                parts[2].dataset,
                "records",
                "doc_id",
                f"Last versions of documents deleted from {name}",
            ),
            (
                parts[3].dataset,
                "records",
                None,
                f"Documents the last sync of {name} could not index",
            ),
        ]
        # One transaction: a create that fails or is killed leaves no part behind, and a name
        # taken (also by a concurrent create) rolls all of it back.
        with lake.publish(message=f"create knowledge base {name} ({embedder})") as pub:
            taken = [
                dataset
                for dataset, kind, key, about in datasets
                if not pub.create_dataset(dataset, kind=kind, key=key, description=about)
            ]
            if taken:
                raise AlreadyExists(
                    f"Dataset(s) {', '.join(taken)} exist already.",
                    hint="Pick another knowledge-base name.",
                )
            publish_manifest(pub, Manifest(name, 0, parts))
        return cls(lake, name)

    # -- reading ----------------------------------------------------------------------------

    def manifest(self, at: str | int | None = None) -> Manifest:
        """The knowledge base at ``at`` (a version, a tag, ``kb@REF``; default: head)."""
        commit = self.lake.resolve(ref_text(self.name, at))
        # The Lance version too: gc may have compacted the version since it was read.
        key = (commit.version, commit.lance_version)
        found = self._manifests.get(key)
        if found is None:
            found = read_manifest(self.lake.ref(commit.ref))
            _remember(self._manifests, key, found)
        return found

    def _snapshot(self, ref: str) -> Snapshot:
        """The snapshot of a part (``kb.chunks@7``), opened once."""
        found = self._snapshots.get(ref)
        if found is None:
            found = self.lake.ref(ref)
            _remember(self._snapshots, ref, found)
        return found

    @property
    def version(self) -> int:
        return self.manifest().version

    def search(
        self,
        query: str,
        k: int = 5,
        *,
        at: str | int | None = None,
        mode: str = "hybrid",
        embedder: str | None = None,
        filter: str | None = None,
    ) -> list[SearchHit]:
        """The ``k`` chunks that best answer ``query``.

        Args:
            query: the question or keywords.
            k: how many chunks.
            at: which version (a number, a tag such as ``prod``); default: head.
            mode: ``vector``, ``keyword`` (BM25) or ``hybrid`` (both, fused by rank).
            embedder: which embedder's chunks (default: the first one).
            filter: a SQL predicate over chunk columns, e.g. ``doc_id LIKE 'guides/%'``.
        """
        from curata.rag.search import search_manifest

        def run() -> list[SearchHit]:
            return search_manifest(
                self.lake,
                self.manifest(at),
                query,
                k=k,
                mode=mode,
                embedder=embedder,
                filter=filter,
                snapshot=self._snapshot,
            )

        try:
            return run()
        except StorageError:
            # A kept snapshot's files may have been compacted away by gc since: read afresh.
            self._manifests.clear()
            self._snapshots.clear()
            return run()

    def log(self) -> list[KbVersion]:
        """Versions, newest first, with what each sync did in its message."""
        ds = self.lake.dataset(self.name)
        tags: dict[int, list[str]] = {}
        for tag, version in ds.tags().items():
            tags.setdefault(version, []).append(tag)
        return [
            KbVersion(
                c.version,
                c.author,
                c.timestamp.isoformat(),
                c.message,
                c.run_id,
                sorted(tags.get(c.version, [])),
            )
            for c in ds.log()
        ]

    def sources(self) -> list[KbSource]:
        """The sources that fill the knowledge base, by identity: each with its prefix, its
        published documents, its failures in ``kb.quarantine`` and the version its last sync
        with changes published. See :mod:`curata.rag.source_scope`.

        >>> [s.source for s in kb.sources()]  # doctest: +SKIP
        ['docs', 's3://team-docs/faq']
        """
        from curata.rag.source_list import list_sources

        return list_sources(self.lake, self.manifest())

    def diff(self, a: str | int, b: str | int) -> dict[str, Any]:
        """Documents added, changed and removed between two versions, and chunk counts."""
        from curata.rag.check import diff_manifests

        return diff_manifests(self.lake, self.manifest(a), self.manifest(b))

    # -- writing ----------------------------------------------------------------------------

    def sync(
        self,
        source: str,
        *,
        delete_missing: bool = False,
        prefix: str | None = None,
        moved_from: str | None = None,
        include: tuple[str, ...] = (),
        exclude: tuple[str, ...] = (),
        storage_options: dict[str, Any] | None = None,
        text_field: str = "text",
        id_field: str | None = "id",
        max_bytes: int = DEFAULT_MAX_BYTES,
        executor: str = "local",
        workers: int | None = None,
        message: str | None = None,
        progress: Progress | None = None,
    ) -> SyncResult:
        """Bring the knowledge base in line with ``source`` (a folder, ``s3://bucket/prefix``
        or a JSONL file); only new and changed documents are processed. For a JSONL file,
        ``text_field`` and ``id_field`` name the fields of each record's text and id. Files
        larger than ``max_bytes`` are reported as failed, unread. See :mod:`curata.rag.sync`.

        A knowledge base may be fed by several sources, each known by its path as given,
        normalised but not made absolute (``"docs/"`` is ``docs``, in every checkout that
        syncs from the same folder). ``delete_missing`` removes only documents read from this
        source. A document whose doc id is published from another
        source is reported as failed, not indexed; ``prefix="faq"`` makes this source's doc
        ids ``faq/...`` so both can live side by side. The prefix is remembered for the
        source: later syncs may leave it out, and a different one is refused unless
        ``delete_missing`` renames the documents. ``moved_from="old/docs"`` says that
        ``source`` is that source in a new place: its documents become this source's (with
        their prefix; unchanged ones are not parsed or embedded again), and with
        ``delete_missing`` those no longer listed are removed. See
        :mod:`curata.rag.source_scope`."""
        from curata.rag.sync import sync_knowledge_base

        return sync_knowledge_base(
            self.lake,
            self.manifest(),
            source,
            delete_missing=delete_missing,
            prefix=prefix,
            moved_from=moved_from,
            include=include,
            exclude=exclude,
            storage_options=storage_options,
            text_field=text_field,
            id_field=id_field,
            max_bytes=max_bytes,
            executor=executor,
            workers=workers,
            message=message,
            progress=progress,
        )

    def tag(self, at: str | int, tag: str) -> int:
        """Point ``tag`` at version ``at`` of the knowledge base and of each of its parts, in
        one catalog transaction (a blue/green switch for readers of ``kb@TAG``)."""
        manifest = self.manifest(at)
        versions = {p.dataset: p.version for p in manifest.parts if p.version is not None}
        versions[self.name] = manifest.version
        self.lake.tag_versions(versions, tag)
        return manifest.version

    def rollback(self, at: str | int, *, message: str | None = None) -> int:
        """Publish the state of version ``at`` as a new version (history is kept)."""
        from curata.lake.refs import Ref
        from curata.rag.sync import embed_chunks_of

        target, head = self.manifest(at), self.manifest()
        left_behind = _versions_left_behind(self.lake, head, target)
        # An embedder added after ``at`` stays, holding the chunks of ``at`` embedded by its
        # model (from the embedding cache: they were embedded when the embedder was added).
        then = {p.dataset: p for p in target.parts}
        added = {
            part.dataset: embed_chunks_of(self.lake, target, part)
            for part in head.chunk_parts
            if part.dataset not in then and part.version is not None
        }
        parts = []
        with self.lake.publish(
            message=message or f"rollback to {self.name}@{target.version}"
        ) as pub:
            for part in head.parts:
                old = then.get(part.dataset)
                if part.dataset in added:
                    pub.overwrite(part.dataset, added[part.dataset])
                    if added[part.dataset].num_rows:
                        pub.index_for_search(part.dataset, vector="embedding", text="text")
                elif old is not None and old.version is None and part.version is not None:
                    # Empty at ``at`` (a rollback to before the first sync): empty it again.
                    schema = self.lake.ref(part.ref or "").schema
                    pub.overwrite(part.dataset, schema.empty_table())
                elif (
                    old is not None
                    and old.version is not None
                    # Against the published head: a part written outside `curata kb` goes
                    # back too.
                    and old.version != pub.base_version(part.dataset)
                ):
                    pub.revert(part.dataset, Ref(part.dataset, version=old.version))
                parts.append(Part(part.role, part.dataset, part.version, part.settings))
            if left_behind.num_rows:
                pub.upsert(head.part(RETIRED).dataset, left_behind)
            new = publish_manifest(pub, Manifest(self.name, head.version, tuple(parts)))
        return new.version

    def add_embedder(self, spec: str, *, progress: Progress | None = None) -> int:
        """Keep a second chunks dataset, embedded by ``spec``, in sync from now on (filled
        now from the current chunks); search it with ``embedder=spec``."""
        from curata.rag.sync import add_embedder

        return add_embedder(self.lake, self.manifest(), spec, progress=progress)

    def check(self, *, repair: bool = False) -> CheckReport:
        """Verify that every chunk belongs to a published document version and every
        document has its chunks; with ``repair``, publish a fixed version."""
        from curata.rag.check import check_knowledge_base

        return check_knowledge_base(self.lake, self.manifest(), repair=repair)


def _highest_versions(lake: Lake, manifest: Manifest) -> dict[str, int]:
    """The highest version of each document up to ``manifest``: published or retired."""
    highest: dict[str, int] = {}
    for part, column in (
        (manifest.documents, "doc_version"),
        (manifest.part(RETIRED), "last_version"),
    ):
        if part.version is None:
            continue
        table = lake.ref(part.ref or "").to_arrow(columns=["doc_id", column])
        for doc_id, version in zip(
            table["doc_id"].to_pylist(), table[column].to_pylist(), strict=True
        ):
            highest[doc_id] = max(version, highest.get(doc_id, 0))
    return highest


def _versions_left_behind(lake: Lake, head: Manifest, target: Manifest) -> pa.Table:
    """Rows of ``kb.retired`` for the document versions that rolling back from ``head`` to
    ``target`` unpublishes, so that later syncs number past them."""
    import pyarrow as pa

    before, after = _highest_versions(lake, head), _highest_versions(lake, target)
    left = sorted((d, v) for d, v in before.items() if v > after.get(d, 0))
    return pa.table(
        {
            "doc_id": pa.array([d for d, _ in left], pa.string()),
            "last_version": pa.array([v for _, v in left], pa.int64()),
        }
    )
