"""The sources of a knowledge base, as ``curata kb sources`` lists them.

A source is known by the documents that store it (see :mod:`curata.rag.source_scope`) and by
the rows its last sync left in ``kb.quarantine``; its prefix is the one the knowledge base
remembers, and its last sync is found through the runs that published versions.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from curata.rag.manifest import QUARANTINE, Manifest
from curata.rag.source_scope import remembered_prefixes, stored_source

if TYPE_CHECKING:
    from curata.lake import Lake


@dataclass(frozen=True)
class KbSource:
    """One source of a knowledge base."""

    #: its identity: the path as syncs give it (normalised), or ``s3://bucket/prefix``
    source: str
    #: what its doc ids start with (``""``: nothing)
    prefix: str
    #: its published documents
    documents: int
    #: its documents in ``kb.quarantine``: what its last sync could not index
    failed: int
    #: the version of the knowledge base that its last sync with changes published
    last_sync_version: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def list_sources(lake: Lake, manifest: Manifest) -> list[KbSource]:
    """The sources of ``manifest`` with documents or failures, by identity."""
    documents = _per_source(lake, manifest.documents.ref)
    failed = _per_source(lake, manifest.part(QUARANTINE).ref)
    prefixes = remembered_prefixes(manifest)
    last = _last_syncs(lake, manifest)
    return [
        KbSource(s, prefixes.get(s, ""), documents[s], failed[s], last.get(s))
        for s in sorted(documents.keys() | failed.keys())
    ]


def _per_source(lake: Lake, ref: str | None) -> Counter[str]:
    """Rows of a part by the source they store (in any form older curata stored it)."""
    counts: Counter[str] = Counter()
    if ref is None:
        return counts
    snapshot = lake.ref(ref)
    if "source" not in snapshot.schema.names:  # a quarantine from before it kept sources
        return counts
    table = snapshot.to_arrow(columns=["source"])
    grouped = table.group_by("source").aggregate([("source", "count")])
    for source, n in zip(grouped["source"].to_pylist(), grouped["source_count"].to_pylist(),
                         strict=True):  # fmt: skip
        counts[stored_source(source)] += n
    return counts


def _last_syncs(lake: Lake, manifest: Manifest) -> dict[str, int]:
    """The newest version of the knowledge base published by a sync of each source."""
    synced = {
        run.id: stored_source(str(run.params.get("source") or ""))
        for run in lake.runs(job=f"kb-sync:{manifest.name}")
    }
    last: dict[str, int] = {}
    for commit in lake.dataset(manifest.name).log():  # newest first
        source = synced.get(commit.run_id or "")
        if source and source not in last:
            last[source] = commit.version
    return last
