"""Consistency of a knowledge base, and differences between two of its versions.

A consistent knowledge base has, in every chunks dataset, exactly the chunks of the published
documents: no chunk of a document version that is not published (an orphan), and for every
document as many chunks as it was split into (``n_chunks``), each with an embedding.
``repair`` removes orphans and re-chunks and re-embeds documents whose chunks are missing, from
the text stored with the document, and publishes the result as a new version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from curata.lake.query import duckdb_cursor

if TYPE_CHECKING:
    import pyarrow as pa

    from curata.lake import Lake
    from curata.rag.manifest import Manifest, Part

EXAMPLES = 10


@dataclass(frozen=True)
class Problem:
    """One kind of inconsistency in one dataset."""

    kind: str  # orphan_chunks | missing_chunks | missing_embeddings | head_moved
    dataset: str
    count: int
    examples: list[str]
    message: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class CheckReport:
    """What ``kb check`` found (and, with repair, the version that fixed it)."""

    name: str
    version: int
    problems: list[Problem] = field(default_factory=list)
    repaired_version: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "ok": self.ok,
            "problems": [p.to_dict() for p in self.problems],
            "repaired_version": self.repaired_version,
        }


def documents_table(lake: Lake, manifest: Manifest) -> pa.Table:
    import pyarrow as pa

    part = manifest.documents
    if part.version is None:
        return pa.table(
            {
                "doc_id": pa.array([], pa.string()),
                "doc_version": pa.array([], pa.int64()),
                "n_chunks": pa.array([], pa.int32()),
            }
        )
    return lake.ref(part.ref or "").to_arrow(columns=["doc_id", "doc_version", "n_chunks"])


def chunks_table(lake: Lake, part: Part) -> pa.Table:
    import pyarrow as pa

    if part.version is None:
        return pa.table(
            {
                "chunk_id": pa.array([], pa.string()),
                "doc_id": pa.array([], pa.string()),
                "doc_version": pa.array([], pa.int64()),
                "has_embedding": pa.array([], pa.bool_()),
            }
        )
    snap = lake.ref(part.ref or "")
    table = snap.to_arrow(columns=["chunk_id", "doc_id", "doc_version", "embedding"])
    import pyarrow.compute as pc

    has = pc.is_valid(table["embedding"])
    return table.drop_columns(["embedding"]).append_column("has_embedding", has)


def inconsistencies(docs: pa.Table, chunks: pa.Table) -> tuple[list[str], list[str], list[str]]:
    """Orphan chunk ids, ids of documents missing chunks, chunk ids without embedding."""
    queries = (
        "SELECT c.chunk_id FROM chunks c ANTI JOIN docs d "
        "ON c.doc_id = d.doc_id AND c.doc_version = d.doc_version ORDER BY 1",
        "SELECT d.doc_id FROM docs d LEFT JOIN (SELECT doc_id, doc_version, "
        "count(*) AS n FROM chunks GROUP BY ALL) c "
        "ON c.doc_id = d.doc_id AND c.doc_version = d.doc_version "
        "WHERE coalesce(c.n, 0) <> d.n_chunks ORDER BY 1",
        "SELECT chunk_id FROM chunks WHERE NOT has_embedding ORDER BY 1",
    )
    with duckdb_cursor() as con:
        con.register("docs", docs)
        con.register("chunks", chunks)
        found = [[r[0] for r in con.execute(q).fetchall()] for q in queries]
    return found[0], found[1], found[2]


def find_problems(lake: Lake, manifest: Manifest) -> list[Problem]:
    """Every inconsistency between the documents and each chunks dataset of ``manifest``."""
    docs = documents_table(lake, manifest)
    problems: list[Problem] = []
    for part in manifest.chunk_parts:
        orphans, missing, unembedded = inconsistencies(docs, chunks_table(lake, part))
        problems += _problem("orphan_chunks", part, orphans, "chunk(s) of no published document")
        problems += _problem("missing_chunks", part, missing, "document(s) without all chunks")
        problems += _problem("missing_embeddings", part, unembedded, "chunk(s) without embedding")
    problems += _moved_heads(lake, manifest)
    return problems


def _problem(kind: str, part: Part, items: list[str], what: str) -> list[Problem]:
    if not items:
        return []
    return [
        Problem(
            kind, part.dataset, len(items), items[:EXAMPLES], f"{len(items)} {what} in {part.ref}"
        )
    ]


def _moved_heads(lake: Lake, manifest: Manifest) -> list[Problem]:
    """Parts written to directly, outside a sync: their head is not the manifest's version."""
    problems = []
    for part in manifest.parts:
        log = lake.dataset(part.dataset).log()
        head = log[0].version if log else None
        if head != part.version:
            problems.append(
                Problem(
                    "head_moved",
                    part.dataset,
                    1,
                    [f"{part.dataset}@{head}"],
                    f"{part.dataset} is at version {head}, the knowledge base uses "
                    f"{part.version}: it was written outside `kb sync`",
                )
            )
    return problems


def check_knowledge_base(lake: Lake, manifest: Manifest, *, repair: bool) -> CheckReport:
    """Check (and with ``repair`` fix) the head of a knowledge base."""
    report = CheckReport(manifest.name, manifest.version, find_problems(lake, manifest))
    if repair and report.problems:
        from curata.rag.repair import repair_knowledge_base

        moved = any(p.kind == "head_moved" for p in report.problems)
        report.repaired_version = repair_knowledge_base(lake, manifest, moved=moved)
    return report


def diff_manifests(lake: Lake, a: Manifest, b: Manifest) -> dict[str, Any]:
    """Documents added, changed and removed from version ``a`` to ``b``, and chunk counts."""
    docs_a, docs_b = documents_table(lake, a), documents_table(lake, b)
    with duckdb_cursor() as con:
        con.register("a", docs_a)
        con.register("b", docs_b)
        rows = con.execute(
            "SELECT coalesce(a.doc_id, b.doc_id) AS doc_id, a.doc_version AS va, "
            "b.doc_version AS vb FROM a FULL OUTER JOIN b ON a.doc_id = b.doc_id "
            "WHERE a.doc_version IS DISTINCT FROM b.doc_version ORDER BY 1"
        ).fetchall()
    added = [{"doc_id": d, "doc_version": vb} for d, va, vb in rows if va is None]
    removed = [{"doc_id": d, "doc_version": va} for d, va, vb in rows if vb is None]
    changed = [
        {"doc_id": d, "from_version": va, "to_version": vb}
        for d, va, vb in rows
        if va is not None and vb is not None
    ]
    chunks_a = _chunk_count(lake, a.chunk_parts[0])
    chunks_b = _chunk_count(lake, b.chunk_parts[0])
    return {
        "name": a.name,
        "from": a.version,
        "to": b.version,
        "documents": {"added": added, "changed": changed, "removed": removed},
        "chunks": {"from": chunks_a, "to": chunks_b},
    }


def _chunk_count(lake: Lake, part: Part) -> int:
    return 0 if part.version is None else lake.ref(part.ref or "").count_rows()
