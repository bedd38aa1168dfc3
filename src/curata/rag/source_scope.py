"""Several sources in one knowledge base: which documents belong to the source being synced.

Every document stores where it was read from (the ``source`` column) as an identity: the
location as the user gave it, normalised (``os.path.normpath`` of a local path, so
``./docs/``, ``docs`` and ``docs/`` are ``docs``; ``s3://bucket/prefix`` without trailing
slashes). A relative path stays relative: it names the same source in every checkout and on
every machine, as long as the sync runs from the same folder of it (the root of a repository,
say). Symbolic links are not resolved, so a ``current`` link moved to a new release stays the
same source. A sync compares with, and with ``delete_missing`` removes, only the documents of
its own source. A listed document whose doc id is published from another source is not
indexed: it is reported as a clash, and the published document stays.

``prefix`` puts ``PREFIX/`` in front of every doc id of a source, so two sources that both
hold ``README.md`` can live side by side. The knowledge base remembers each source's prefix
(in its documents part's settings): a later sync without one uses it, and a different one is
refused unless ``delete_missing`` renames the documents.

A source read from another place (a folder that moved, a checkout synced by another path) has
another identity, so its documents clash with those of the old one. ``moved_from`` says it is
the same source: the documents of the old identity become the new one's in the sync (their
``source`` is rewritten, the remembered prefix carries over), compared with the listing as if
they had always been its own.

Older knowledge bases stored other forms. Those written before identities were normalised
hold the path as typed (``handbook``, ``./posts.jsonl``): normalised when read, it is the
identity of the same path typed again. Those written while identities were absolute paths hold
``/srv/repo/docs`` for a sync of ``docs`` run in ``/srv/repo``: a sync of ``docs`` from there
moves them to ``docs`` as ``moved_from`` would (:func:`moved_sources`). The knowledge base
lists the absolute paths given as such since (:data:`ABSOLUTE_SETTING`), which are sources of
their own and never taken over that way.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from curata.errors import InvalidInput
from curata.rag.manifest import Manifest, Part
from curata.sources.remote import split_s3_uri

if TYPE_CHECKING:
    import pyarrow as pa

    from curata.sources import Source, SourceItem

SOURCES_SETTING = "sources"
#: the absolute paths given as such (not made absolute by older curata), as a list
ABSOLUTE_SETTING = "absolute_sources"


class StoredDocument(Protocol):
    """What a published document's row says of where it came from."""

    @property
    def source(self) -> str | None: ...


def normal_location(location: str) -> str:
    """``s3://bucket/prefix`` without trailing slashes; a local path normalised, not made
    absolute (``./docs/`` is ``docs``)."""
    if location.startswith("s3://"):
        bucket, key = split_s3_uri(location)
        return f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
    if "://" in location:
        return location
    return os.path.normpath(location)


def source_identity(source: Source) -> str:
    """The identity stored with each document read from ``source``."""
    return normal_location(source.uri)


def stored_source(source: str | None) -> str:
    """A stored ``source`` as an identity, also when it was stored as typed (``./posts.jsonl``
    is ``posts.jsonl``); ``""`` for none."""
    return normal_location(source) if source else ""


def _path_parts(identity: str) -> tuple[str, ...] | None:
    """``identity`` as path components that compare by prefix (None: not a path)."""
    if identity.startswith("s3://"):
        return ("s3:", *identity.removeprefix("s3://").split("/"))
    if "://" in identity or not identity:
        return None
    return ("file:", *Path(os.path.abspath(identity)).parts)


def overlapping_sources(identity: str, others: set[str]) -> list[str]:
    """The sources among ``others`` that hold ``identity``, lie inside it or are the same
    place by another name: a file under both is indexed twice, under two doc ids (unless the
    doc ids clash). Relative identities are taken from the current folder, where syncs of
    relative paths run."""
    mine = _path_parts(identity)
    if mine is None:
        return []
    found = []
    for other in sorted(others):
        theirs = _path_parts(other)
        if theirs is None:
            continue
        shorter = min(len(mine), len(theirs))
        if mine[:shorter] == theirs[:shorter]:
            found.append(other)
    return found


def _relation(identity: str, other: str) -> tuple[bool, str]:
    """For overlapping sources: whether ``identity`` lies inside ``other``, and the folder
    between them (``guides`` for ``docs/guides`` and ``docs``, either way round; ``""`` for
    one place by two names)."""
    mine, theirs = _path_parts(identity) or (), _path_parts(other) or ()
    inside = len(mine) > len(theirs)
    longer, shorter = (mine, theirs) if inside else (theirs, mine)
    return inside, "/".join(longer[len(shorter) :])


def overlap_warning(identity: str, other: str, count: int, *, inside: bool, sub: str) -> str:
    """What to tell a user when ``count`` files of source ``identity`` are also published by
    source ``other``, which holds it (``inside``), lies inside it or is the same place
    (``sub`` empty)."""
    where = "is the same place as" if not sub else "lies inside" if inside else "holds"
    return (
        f"source {identity} {where} source {other} of this knowledge base, and {count} "
        f"file(s) are indexed from both, under two doc ids. Exclude them from one of the two "
        "(--exclude), or, if this source replaces the other, sync with --moved-from."
    )


def _is_relative(identity: str) -> bool:
    return "://" not in identity and not os.path.isabs(identity)


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
    """``manifest`` with ``prefix`` remembered for ``identity`` (forgotten when empty), an
    absolute ``identity`` listed as given so, and the sources in ``moved``, whose documents
    are ``identity``'s now, forgotten."""
    docs = manifest.documents
    prefixes = remembered_prefixes(manifest)
    absolute = set(docs.settings.get(ABSOLUTE_SETTING, [])) - moved
    for old in moved | {identity}:
        prefixes.pop(old, None)
    if prefix:
        prefixes[identity] = prefix
    if os.path.isabs(identity):
        absolute.add(identity)
    settings = {
        k: v for k, v in docs.settings.items() if k not in (SOURCES_SETTING, ABSOLUTE_SETTING)
    }
    if prefixes:
        settings[SOURCES_SETTING] = prefixes
    if absolute:
        settings[ABSOLUTE_SETTING] = sorted(absolute)
    if settings == docs.settings:
        return manifest
    documents = Part(docs.role, docs.dataset, docs.version, settings)
    parts = tuple(documents if p is docs else p for p in manifest.parts)
    return Manifest(manifest.name, manifest.version, parts)


def moved_sources(
    manifest: Manifest, identity: str, sources: set[str], moved_from: str | None
) -> frozenset[str]:
    """The sources whose documents become ``identity``'s in this sync: ``moved_from``, and
    for a relative ``identity``, the absolute path it names from here when older curata
    stored it so (an absolute path given as such since is a source of its own).

    Raises:
        InvalidInput: ``moved_from`` is not a source with documents in the knowledge base.
    """
    moved = set()
    if moved_from is not None:
        old = normal_location(moved_from)
        if old not in sources:
            listed = ", ".join(sorted(sources)) if sources else "none yet"
            raise InvalidInput(
                f"{manifest.name!r} has no documents from {old}, so there is nothing to move "
                "from it.",
                hint=f"--moved-from takes one of its sources (`curata kb sources "
                f"{manifest.name}`): {listed}.",
            )
        moved.add(old)
    given_absolute = manifest.documents.settings.get(ABSOLUTE_SETTING, [])
    before = os.path.abspath(identity)  # what older curata stored for a relative identity
    if _is_relative(identity) and before in sources and before not in given_absolute:
        moved.add(before)
    return frozenset(moved - {identity})


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
        self.stored = {d: stored_source(p.source) for d, p in stored.items()}
        sources = set(self.stored.values())
        #: the sources whose documents become this source's in this sync
        self.moved = moved_sources(manifest, self.identity, sources, moved_from)
        takes = self.moved | {self.identity}
        #: doc ids of the published documents that came from this source (or are moved to it)
        self.own = frozenset(d for d, s in self.stored.items() if s in takes)
        self.prefix = choose_prefix(manifest, sources & takes, prefix, renaming)
        prefixes = remembered_prefixes(manifest)
        self._overlaps = {
            other: (*_relation(self.identity, other), prefixes.get(other, ""))
            for other in overlapping_sources(self.identity, sources - takes)
        }
        #: per other source, how many files listed here it publishes too (under its doc ids)
        self.doubled: dict[str, int] = {}

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
        self.doubled = {}
        for listed in self.inner.list():
            self._count_doubled(listed.doc_id)
            item = replace(listed, doc_id=self.doc_id(listed.doc_id)) if self.prefix else listed
            other = self.stored.get(item.doc_id)
            if other is None or item.doc_id in self.own:
                mine.append(item)
            else:
                taken.append((item.doc_id, other))
        # After this sync the source has documents when it had some or indexes some now.
        renaming = bool(self.own or mine)
        return mine, [(d, self._clash(d, other, renaming)) for d, other in taken]

    def _count_doubled(self, name: str) -> None:
        """Count ``name`` (a listed doc id, before the prefix) for each overlapping source that
        publishes the same file under its own doc id."""
        for other, (inside, sub, prefix) in self._overlaps.items():
            if not sub:  # one place by two names
                theirs = name
            elif inside:  # this source is the folder ``sub`` of the other one
                theirs = f"{sub}/{name}"
            elif name.startswith(f"{sub}/"):  # the other one is the folder ``sub`` of this one
                theirs = name[len(sub) + 1 :]
            else:
                continue
            theirs = f"{prefix}/{theirs}" if prefix else theirs
            if self.stored.get(theirs) == other:
                self.doubled[other] = self.doubled.get(other, 0) + 1

    def overlap_warnings(self) -> list[str]:
        """What to tell the user about files that this source and another one both index
        (after :meth:`listing`)."""
        return [
            overlap_warning(
                self.identity,
                other,
                count,
                inside=self._overlaps[other][0],
                sub=self._overlaps[other][1],
            )
            for other, count in sorted(self.doubled.items())
        ]

    def quarantine(self, before: pa.Table | None, failed: list[dict[str, str]]) -> pa.Table:
        """The rows of ``kb.quarantine`` after this sync: its own failures, and those that the
        last syncs of other sources left, since each sync tries again (and clears) only its
        own. Rows from before quarantines had a ``source`` are the last sync's: replaced."""
        import pyarrow as pa

        rows = [{**f, "source": self.identity} for f in failed]
        retried = self.moved | {self.identity}
        if before is not None and "source" in before.column_names:
            rows += [r for r in before.to_pylist() if stored_source(r["source"]) not in retried]
        rows.sort(key=lambda r: (r["doc_id"], r["source"]))
        schema = pa.schema(
            [("doc_id", pa.string()), ("reason", pa.string()), ("source", pa.string())]
        )
        return pa.Table.from_pylist(rows, schema=schema)

    def _clash(self, doc_id: str, other: str, renaming: bool) -> str:
        # The name of the folder or file, also when it was given as "." or "..".
        where = os.path.abspath(self.identity) if _is_relative(self.identity) else self.identity
        name = _suggested_prefix(where)
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
            "place (moved, another checkout, a sync run from another folder)? Run "
            f"`{sync} --moved-from {shlex.quote(other)}`: "
            f"the documents of {other} become this source's. Another source? To index both, "
            f"run `{command}` ({effect})"
        )


def _suggested_prefix(identity: str) -> str:
    name = identity.rstrip("/").rsplit("/", 1)[-1]
    for suffix in (".gz", ".jsonl", ".ndjson"):
        name = name.removesuffix(suffix)
    return name
