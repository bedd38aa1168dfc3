"""The manifest of a knowledge base: which version of each of its datasets belongs together.

A knowledge base ``kb`` is a small dataset ``kb`` (kind ``knowledge_base``) plus its parts:
``kb.documents``, ``kb.chunks`` (the first embedder), ``kb.chunks.<embedder>`` for each
further embedder, ``kb.retired`` (the highest version of documents deleted or rolled back, so a
document that comes back or changes again gets a new version number, never an old one) and
``kb.quarantine`` (what the last sync of each source could not index). The manifest holds one
row per part: its dataset and version, and settings. Every sync publishes the manifest together
with the parts in one catalog transaction, so ``kb@12`` names one consistent state of all of
them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from curata.errors import CurataError, InvalidInput, NotFound

if TYPE_CHECKING:
    import pyarrow as pa

    from curata.lake import Lake, Snapshot
    from curata.lake.publish import Publication

DOCUMENTS = "documents"
CHUNKS = "chunks"
RETIRED = "retired"
QUARANTINE = "quarantine"


@dataclass(frozen=True)
class Part:
    """One dataset of a knowledge base at one version (None: not written yet)."""

    role: str
    dataset: str
    version: int | None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str | None:
        return None if self.version is None else f"{self.dataset}@{self.version}"


@dataclass(frozen=True)
class Manifest:
    """A knowledge base at one version."""

    name: str
    version: int
    parts: tuple[Part, ...]

    def part(self, role: str) -> Part:
        for p in self.parts:
            if p.role == role:
                return p
        raise NotFound(f"Knowledge base {self.name!r} has no {role} dataset.")

    @property
    def documents(self) -> Part:
        return self.part(DOCUMENTS)

    @property
    def chunk_parts(self) -> list[Part]:
        """Chunks datasets, the first embedder's first."""
        return [p for p in self.parts if p.role == CHUNKS]

    @property
    def embedders(self) -> list[str]:
        return [p.settings["embedder"] for p in self.chunk_parts]

    def chunks(self, embedder: str | None = None) -> Part:
        """The chunks dataset of ``embedder`` (default: the first)."""
        parts = self.chunk_parts
        if embedder is None:
            return parts[0]
        for p in parts:
            if p.settings["embedder"] == embedder:
                return p
        raise NotFound(
            f"Knowledge base {self.name!r} has no embedder {embedder!r} at version {self.version}.",
            hint=f"Its embedders: {', '.join(self.embedders)}. "
            f"Add one with `curata kb add-embedder {self.name} {embedder}`.",
        )

    @property
    def chunk_settings(self) -> dict[str, int]:
        settings = self.documents.settings
        return {k: int(settings[k]) for k in ("chunk_size", "chunk_overlap")}

    @property
    def dedup(self) -> str:
        """Which new documents syncs skip as duplicates: ``off``, ``exact`` or ``near``."""
        return str(self.documents.settings.get("dedup", "off"))

    @property
    def pii(self) -> str:
        """What syncs do with PII in documents: ``off``, ``replace``, ``mask``, ``redact``."""
        return str(self.documents.settings.get("pii", "off"))

    def to_table(self) -> pa.Table:
        import pyarrow as pa

        return pa.table(
            {
                "role": [p.role for p in self.parts],
                "dataset": [p.dataset for p in self.parts],
                "version": pa.array([p.version for p in self.parts], pa.int64()),
                "settings": [json.dumps(p.settings, sort_keys=True) for p in self.parts],
            }
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "parts": [
                {"role": p.role, "dataset": p.dataset, "version": p.version, **p.settings}
                for p in self.parts
            ],
        }


def chunks_dataset_name(kb: str, embedder_slug: str, first: bool) -> str:
    return f"{kb}.chunks" if first else f"{kb}.chunks.{embedder_slug}"


def read_manifest(snapshot: Snapshot) -> Manifest:
    """The manifest stored in one version of the knowledge base's own dataset."""
    rows = snapshot.to_arrow().to_pylist()
    parts = tuple(
        Part(r["role"], r["dataset"], r["version"], json.loads(r["settings"] or "{}")) for r in rows
    )
    return Manifest(snapshot.dataset, snapshot.version, parts)


def load_manifest(lake: Lake, name: str, at: str | int | None = None) -> Manifest:
    """The manifest of knowledge base ``name`` at a ref (``12``, ``prod``, ``kb@12``)."""
    if not lake.has_dataset(name) or lake.dataset_info(name).kind != "knowledge_base":
        kbs = [d.name for d in lake.datasets() if d.kind == "knowledge_base"]
        raise NotFound(
            f"No knowledge base named {name!r}.",
            hint=f"Knowledge bases: {', '.join(kbs)}."
            if kbs
            else f"Create one with `curata kb create {name}`.",
        )
    ref = ref_text(name, at)
    return read_manifest(lake.ref(ref))


def ref_text(name: str, at: str | int | None) -> str:
    """The reference to knowledge base ``name`` at ``at`` (``7``, ``prod``, ``kb@7``, None)."""
    if at is None or at == "":
        return name
    text = str(at)
    if "@" in text:
        base = text.partition("@")[0]
        if base != name:
            raise InvalidInput(f"{text!r} is not a version of knowledge base {name!r}.")
        return text
    return f"{name}@{text}"


def publish_manifest(pub: Publication, manifest: Manifest) -> Manifest:
    """Write ``manifest`` with each part at the version ``pub`` gives it; returns it."""
    parts = tuple(
        Part(p.role, p.dataset, pub.resulting_version(p.dataset), p.settings)
        for p in manifest.parts
    )
    resolved = Manifest(manifest.name, manifest.version, parts)
    pub.overwrite(manifest.name, resolved.to_table())
    version = pub.resulting_version(manifest.name)
    assert version is not None
    return Manifest(manifest.name, version, parts)


def moved_parts(pub: Publication, manifest: Manifest) -> list[tuple[Part, int | None]]:
    """Parts written outside the knowledge base's commands since ``manifest``: each with its
    published head, which is not the version the manifest uses."""
    moved = []
    for part in manifest.parts:
        if part.version is not None:
            head = pub.base_version(part.dataset)
            if head != part.version:
                moved.append((part, head))
    return moved


def refuse_moved_parts(pub: Publication, manifest: Manifest) -> None:
    """Fail when a part was written outside the knowledge base's commands: what is published
    next would silently take that write in, unchecked."""
    moved = moved_parts(pub, manifest)
    if moved:
        what = "; ".join(
            f"{p.dataset} is at version {head}, {manifest.name}@{manifest.version} uses {p.version}"
            for p, head in moved
        )
        raise CurataError(
            f"Knowledge base {manifest.name!r} was written outside `curata kb` ({what}); "
            "nothing was published.",
            hint=f"Run `curata kb check {manifest.name} --repair` to publish its parts as "
            f"{manifest.name}@{manifest.version} has them (the other writes stay in their "
            "datasets' history), then run this again.",
        )
