"""Several sources in one knowledge base: which documents belong to the source being synced.

Every document stores where it was read from (the ``source`` column) as a normalised
identity: the absolute path of a folder, a file or a JSONL file (symbolic links are not
resolved, so a ``current`` link moved to a new release stays the same source), or
``s3://bucket/prefix``. A sync compares with, and with ``delete_missing`` removes, only the
documents of its own source. A listed document whose doc id is published from another source
is not indexed: it is reported as a clash, and the published document stays.

``prefix`` puts ``PREFIX/`` in front of every doc id of a source, so two sources that both
hold ``README.md`` can live side by side. The knowledge base remembers each source's prefix
(in its documents part's settings): a later sync without one uses it, and a different one is
refused unless ``delete_missing`` renames the documents.

A source read from another place (a folder that moved, another checkout) has another
identity, so its documents clash with those of the old one. ``moved_from`` says it is the
same source: the documents of the old identity become the new one's in the sync (their
``source`` is rewritten, the remembered prefix carries over), compared with the listing as
if they had always been its own.

Knowledge bases written before identities were normalised store the source as it was typed
(``handbook``, ``./posts.jsonl``). :func:`stored_source` normalises such a value when it is
read, from the absolute ``source_uri`` of the document where there is one; what stays relative
(JSONL files given by a relative path) is compared leniently by :func:`same_source`.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from curata.errors import InvalidInput
from curata.rag.manifest import Manifest, Part
from curata.sources.remote import split_s3_uri

if TYPE_CHECKING:
    import pyarrow as pa

    from curata.sources import Source, SourceItem

SOURCES_SETTING = "sources"


class StoredDocument(Protocol):
    """What a published document's row says of where it came from."""

    @property
    def source(self) -> str | None: ...

    @property
    def source_uri(self) -> str | None: ...


def normal_location(location: str) -> str:
    """``s3://bucket/prefix`` without trailing slashes; a local path made absolute."""
    if location.startswith("s3://"):
        bucket, key = split_s3_uri(location)
        return f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
    if "://" in location:
        return location
    return os.path.abspath(location)


def source_identity(source: Source) -> str:
    """The identity stored with each document read from ``source``."""
    return normal_location(source.uri)


def stored_source(source: str, source_uri: str, doc_id: str) -> str:
    """A stored ``source`` normalised, also when it was stored as typed (a relative path)."""
    if "://" in source or os.path.isabs(source):
        return normal_location(source)
    if os.path.isabs(source_uri):
        tail = _tail(source)
        folder = source_uri[: -len(doc_id) - 1] if source_uri.endswith("/" + doc_id) else ""
        for candidate in (folder, source_uri):  # a folder's document, else one file
            if candidate and _ends_with(candidate, tail):
                return candidate
    return os.path.normpath(source)


def same_source(stored: str, identity: str) -> bool:
    """Whether a document stored from ``stored`` came from the source ``identity``; a
    relative ``stored`` (not normalisable) matches an identity that ends with it."""
    if stored == identity:
        return True
    if "://" in stored or "://" in identity or os.path.isabs(stored):
        return False
    return _ends_with(identity, _tail(stored))


def _tail(path: str) -> list[str]:
    """The names of a relative path that are certain whatever the working folder was."""
    parts = [p for p in os.path.normpath(path).split("/") if p not in ("", ".")]
    while ".." in parts:
        parts = parts[parts.index("..") + 1 :]
    return parts


def _ends_with(path: str, tail: list[str]) -> bool:
    return not tail or path.split("/")[-len(tail) :] == tail


def clean_prefix(prefix: str) -> str:
    """``prefix`` without surrounding slashes; refused when it is not a relative path."""
    cleaned = prefix.strip().strip("/")
    if cleaned and any(p in ("", ".", "..") for p in cleaned.split("/")):
        raise InvalidInput(
            f"The prefix {prefix!r} is not a relative path.",
            hint="Give one or more names separated by '/', such as faq or docs/faq.",
        )
    return cleaned


def choose_prefix(manifest: Manifest, having: set[str], given: str | None, renaming: bool) -> str:
    """The prefix of this sync: ``given``, else the one the documents it takes have.

    Args:
        manifest: the knowledge base.
        having: the sources whose documents the sync takes that have documents (its own, and
            with a move, the old place's).
        given: the prefix asked for (None: not given).
        renaming: whether the sync deletes missing documents, so a new prefix may rename.

    Raises:
        InvalidInput: documents of ``having`` are under another prefix and ``renaming`` is
            off, or under two prefixes and none is given.
    """
    remembered = remembered_prefixes(manifest)
    had = {s: remembered.get(s, "") for s in sorted(having)}
    if given is None:
        if len(set(had.values())) > 1:
            raise InvalidInput(
                f"The documents taken by this sync are in {manifest.name!r} under two "
                f"prefixes ({_prefixes_of(had)}).",
                hint="Give the one they should all have, with --delete-missing "
                "(prefix=..., delete_missing=True): the others are renamed in the same version.",
            )
        return next(iter(had.values()), "")
    prefix = clean_prefix(given)
    other = next((s for s, p in had.items() if p != prefix), None)
    if other is not None and not renaming:
        was = f"the prefix {had[other]!r}" if had[other] else "no prefix"
        raise InvalidInput(
            f"The documents of {other} are in {manifest.name!r} with {was}; the prefix "
            f"{prefix!r} would index them a second time under other doc ids.",
            hint="Leave the prefix out: the knowledge base remembers it. To rename the "
            "documents, add --delete-missing (delete_missing=True): those under the old doc "
            "ids are removed in the same version.",
        )
    return prefix


def _prefixes_of(had: dict[str, str]) -> str:
    return "; ".join(f"{s}: {repr(p) if p else 'none'}" for s, p in had.items())


def remembered_prefixes(manifest: Manifest) -> dict[str, str]:
    """The prefix of each source synced with one: ``{identity: prefix}``."""
    return dict(manifest.documents.settings.get(SOURCES_SETTING, {}))


def remember_source(
    manifest: Manifest, identity: str, prefix: str, moved: frozenset[str] = frozenset()
) -> Manifest:
    """``manifest`` with ``prefix`` remembered for ``identity`` (forgotten when empty), and
    the sources in ``moved``, whose documents are ``identity``'s now, forgotten."""
    prefixes = remembered_prefixes(manifest)
    for old in moved | {identity}:
        prefixes.pop(old, None)
    if prefix:
        prefixes[identity] = prefix
    docs = manifest.documents
    if prefixes == docs.settings.get(SOURCES_SETTING, {}):
        return manifest
    settings = {k: v for k, v in docs.settings.items() if k != SOURCES_SETTING}
    if prefixes:
        settings[SOURCES_SETTING] = prefixes
    documents = Part(docs.role, docs.dataset, docs.version, settings)
    parts = tuple(documents if p is docs else p for p in manifest.parts)
    return Manifest(manifest.name, manifest.version, parts)


def moved_sources(
    kb: str, identity: str, sources: set[str], moved_from: str | None
) -> frozenset[str]:
    """The sources whose documents become ``identity``'s in this sync: ``moved_from``.

    Raises:
        InvalidInput: ``moved_from`` is not a source with documents in knowledge base ``kb``.
    """
    if moved_from is None:
        return frozenset()
    old = normal_location(moved_from)
    if old not in sources:
        listed = ", ".join(sorted(sources)) if sources else "none yet"
        raise InvalidInput(
            f"{kb!r} has no documents from {old}, so there is nothing to move from it.",
            hint=f"--moved-from takes one of its sources: {listed}.",
        )
    return frozenset({old} - {identity})


class ScopedSource:
    """A source as one sync sees it: its identity, and its doc ids with the prefix.

    Args:
        source: the opened source.
        manifest: the knowledge base synced.
        stored: the published documents, by doc id.
        prefix: what goes in front of every doc id (None: the one the source's documents
            have, if any); see :func:`choose_prefix`.
        renaming: whether the sync deletes missing documents, so a new prefix may rename.
        moved_from: a source of the knowledge base that this one is in a new place: its
            documents become this source's (see :func:`moved_sources`).
    """

    def __init__(
        self,
        source: Source,
        manifest: Manifest,
        stored: Mapping[str, StoredDocument],
        prefix: str | None,
        *,
        renaming: bool,
        moved_from: str | None = None,
    ) -> None:
        self.inner = source
        self.uri = source.uri
        self.lists_completely = source.lists_completely
        self.identity = source_identity(source)
        self.kb = manifest.name
        self.stored = {
            d: stored_source(p.source or "", p.source_uri or "", d) for d, p in stored.items()
        }
        sources = set(self.stored.values())
        #: the sources whose documents become this source's in this sync
        self.moved = moved_sources(self.kb, self.identity, sources, moved_from)
        mine = {s for s in sources if same_source(s, self.identity)}
        #: doc ids of the published documents that came from this source (or are moved to it)
        self.own = frozenset(d for d, s in self.stored.items() if s in mine | self.moved)
        having = ({self.identity} if mine else set()) | self.moved
        self.prefix = choose_prefix(manifest, having, prefix, renaming)

    def params(self) -> dict[str, Any]:
        """What the sync's run records of its source."""
        moved = {"moved_from": sorted(self.moved)} if self.moved else {}
        return {"source": self.identity, "prefix": self.prefix, **moved}

    def remember(self, manifest: Manifest) -> Manifest:
        """``manifest`` with this source's prefix remembered and the sources moved to it
        forgotten (see :func:`remember_source`)."""
        return remember_source(manifest, self.identity, self.prefix, self.moved)

    def moved_documents(self, deleted: list[str]) -> list[str]:
        """Doc ids of the moved sources' documents that stay: they get this source's identity."""
        gone = set(deleted)
        return sorted(d for d in self.own if self.stored[d] in self.moved and d not in gone)

    def relabelled(self, doc_ids: list[str]) -> pa.Table:
        """Rows that give the documents ``doc_ids`` this source's identity."""
        import pyarrow as pa

        sources = pa.array([self.identity] * len(doc_ids), pa.string())
        return pa.table({"doc_id": pa.array(doc_ids, pa.string()), "source": sources})

    @property
    def problems(self) -> list[tuple[str, str]]:
        return [(self.doc_id(path), reason) for path, reason in self.inner.problems]

    def doc_id(self, name: str) -> str:
        """The doc id of what the source calls ``name``."""
        if not self.prefix:
            return name
        return self.prefix if name in ("", ".") else f"{self.prefix}/{name}"

    def listing(self) -> tuple[list[SourceItem], list[tuple[str, str]]]:
        """List the source: the items this sync may index (doc ids with the prefix), and
        ``(doc_id, reason)`` for each item whose doc id is published from another source."""
        mine: list[SourceItem] = []
        taken: list[tuple[str, str]] = []
        for listed in self.inner.list():
            item = replace(listed, doc_id=self.doc_id(listed.doc_id)) if self.prefix else listed
            other = self.stored.get(item.doc_id)
            if other is None or item.doc_id in self.own:
                mine.append(item)
            else:
                taken.append((item.doc_id, other))
        # After this sync the source has documents when it had some or indexes some now.
        renaming = bool(self.own or mine)
        return mine, [(d, self._clash(d, other, renaming)) for d, other in taken]

    def quarantine(self, before: pa.Table | None, failed: list[dict[str, str]]) -> pa.Table:
        """The rows of ``kb.quarantine`` after this sync: its own failures, and those that the
        last syncs of other sources left, since each sync tries again (and clears) only its
        own. Rows from before quarantines had a ``source`` are the last sync's: replaced."""
        import pyarrow as pa

        rows = [{**f, "source": self.identity} for f in failed]
        retried = self.moved | {self.identity}
        if before is not None and "source" in before.column_names:
            rows += [r for r in before.to_pylist() if r["source"] not in retried]
        rows.sort(key=lambda r: (r["doc_id"], r["source"]))
        schema = pa.schema(
            [("doc_id", pa.string()), ("reason", pa.string()), ("source", pa.string())]
        )
        return pa.Table.from_pylist(rows, schema=schema)

    def _clash(self, doc_id: str, other: str, renaming: bool) -> str:
        name = _suggested_prefix(self.identity)
        name = "NAME" if name in ("", self.prefix) else name
        listed = doc_id.removeprefix(f"{self.prefix}/") if self.prefix else doc_id
        sync = f"curata kb sync {self.kb} {shlex.quote(self.identity)}"
        command = f"{sync} --prefix {name}"
        effect = f"this document becomes {name}/{listed}"
        if renaming:
            command += " --delete-missing"
            effect += "; --delete-missing renames the ones indexed from it"
        return (
            f"published from {other} already, so this one from {self.identity} was not indexed "
            "(one document per doc id; the published one stays). The same source in a new "
            f"place (moved, another checkout)? Run `{sync} --moved-from {shlex.quote(other)}`: "
            f"the documents of {other} become this source's. Another source? To index both, "
            f"run `{command}` ({effect})"
        )


def _suggested_prefix(identity: str) -> str:
    name = identity.rstrip("/").rsplit("/", 1)[-1]
    for suffix in (".gz", ".jsonl", ".ndjson"):
        name = name.removesuffix(suffix)
    return name
