"""Repairing a knowledge base that ``kb check`` found inconsistent.

Orphan chunks are removed; documents whose chunks are missing or lack embeddings are chunked
and embedded again from the text and sections stored with the document (the source is not
read), with the knowledge base's own chunk settings, so their chunk ids come out as a sync
would have made them. The fix is published as one new version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from curata.errors import Conflict
from curata.rag.check import chunks_table, documents_table, inconsistencies
from curata.rag.manifest import Manifest, moved_parts, publish_manifest

if TYPE_CHECKING:
    import pyarrow as pa

    from curata.lake import Lake


def _rechunk(lake: Lake, manifest: Manifest, doc_ids: list[str]) -> pa.Table:
    """Chunks of ``doc_ids`` made again from the stored documents."""
    from curata.rag.steps import ChunkStep
    from curata.rag.sync import CHUNK_COLUMNS, _in_filter

    part = manifest.documents
    docs = lake.ref(part.ref or "").to_arrow(
        columns=["doc_id", "doc_version", "text", "sections", "source_uri"],
        filter=_in_filter("doc_id", doc_ids),
    )
    settings = manifest.chunk_settings
    step = ChunkStep(
        {
            "embedder": manifest.embedders[0],
            "size": settings["chunk_size"],
            "overlap": settings["chunk_overlap"],
        }
    )
    return step.process(docs).select(list(CHUNK_COLUMNS))


def repair_knowledge_base(lake: Lake, manifest: Manifest, *, moved: bool = False) -> int | None:
    """Publish a consistent version of the head; returns it (None: nothing to fix). With
    ``moved``, parts written outside the knowledge base's commands go back to the versions
    the head uses."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from curata.lake.refs import Ref
    from curata.rag.sync import SyncResult, _embed_all, _in_filter

    docs = documents_table(lake, manifest)
    plans = []
    for part in manifest.chunk_parts:
        chunks = chunks_table(lake, part)
        orphans, missing, unembedded = inconsistencies(docs, chunks)
        if unembedded:
            owners = chunks.filter(pc.is_in(chunks["chunk_id"], pa.array(unembedded)))
            missing = sorted(set(missing) | set(owners["doc_id"].to_pylist()))
        if orphans or missing:
            plans.append((part, orphans, missing))
    if not plans and not moved:
        return None
    result = SyncResult(manifest.name, manifest.version, manifest.version)
    rebuilt = {}
    for part, _orphans, missing in plans:
        if missing:
            alone = Manifest(manifest.name, manifest.version, (part,))
            fresh = _rechunk(lake, manifest, missing)
            rebuilt[part.dataset] = _embed_all(
                lake,
                alone,
                fresh,
                executor="local",
                result=result,
                progress=None,
                again="run the repair again",
            )[part.settings["embedder"]]
    with lake.publish(message="kb check --repair") as pub:
        if pub.base_version(manifest.name) != manifest.version:
            raise Conflict(f"{manifest.name!r} changed during the repair.", hint="Run it again.")
        for part, _head in moved_parts(pub, manifest):
            pub.revert(part.dataset, Ref(part.dataset, version=part.version))
        for part, orphans, missing in plans:
            if orphans:
                pub.delete(part.dataset, _in_filter("chunk_id", orphans))
            if missing:
                pub.delete(part.dataset, _in_filter("doc_id", missing))
                pub.append(part.dataset, rebuilt[part.dataset])
            pub.index_for_search(part.dataset, vector="embedding", text="text")
        new = publish_manifest(pub, manifest)
    return new.version
