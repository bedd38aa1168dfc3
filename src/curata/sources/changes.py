"""Change detection: which listed documents are new, changed, unchanged or deleted.

The content hash is the truth; size and modification time are the fast path. When both match
what was stored, the document is unchanged and is not read at all. Otherwise its bytes are
read once, hashed, and, when new or changed, handed to the caller with the hash, so the
caller parses those same bytes instead of reading them again. Nothing keeps the bytes after
the caller moves on: a large corpus streams through in constant memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from curata.errors import InvalidInput
from curata.parse.document import DEFAULT_MAX_BYTES, size_limit_reason
from curata.sources.item import Source, SourceError, SourceItem, content_hash


@dataclass(frozen=True)
class PreviousState:
    """What was stored for a document at the last sync."""

    size: int
    mtime: float
    content_hash: str


@dataclass(frozen=True)
class Change:
    """A new or changed document with its bytes, read once: parse ``data``.

    Attributes:
        item: the listed item (its ``size`` and ``mtime`` are the ones to store).
        status: ``"new"`` or ``"changed"``.
        data: the bytes read.
        content_hash: SHA-256 hex of ``data``.
    """

    item: SourceItem
    status: Literal["new", "changed"]
    data: bytes
    content_hash: str

    @property
    def doc_id(self) -> str:
        """The item's doc id."""
        return self.item.doc_id


class ChangeSet:
    """The changes between a listing and the stored states; iterate it to get the bytes.

    Iterating yields one :class:`Change` per new or changed document, reading each item at
    most once. The lists fill in as the iteration goes; ``deleted`` is known only at its end
    (call :meth:`drain` to finish without keeping any bytes, for a dry run).

    Attributes:
        new: doc ids listed but not stored before.
        changed: doc ids whose content hash differs from the stored one.
        unchanged: doc ids whose content is the same (by size and mtime, or by hash).
        hashes: content hash of each new and changed document.
        touched: unchanged documents whose size or mtime moved (a ``touch``, a copy): the
            state to store so the next sync takes the fast path again.
        failed: ``(doc_id, reason)`` for documents that could not be read, are over the size
            limit, or sit under a path the listing could not walk. They are neither changed
            nor deleted: keep what was stored for them.
    """

    def __init__(
        self,
        items: Iterable[SourceItem],
        previous: Mapping[str, PreviousState],
        *,
        lists_completely: bool = True,
        problems: Callable[[], Sequence[tuple[str, str]]] = tuple,
        max_bytes: int | None = DEFAULT_MAX_BYTES,
    ) -> None:
        self._items = items
        self._previous = previous
        self._lists_completely = lists_completely
        self._problems = problems
        self._max_bytes = max_bytes
        self._started = False
        self._listed: set[str] = set()
        self._deleted: list[str] | None = None
        self.new: list[str] = []
        self.changed: list[str] = []
        self.unchanged: list[str] = []
        self.hashes: dict[str, str] = {}
        self.touched: dict[str, PreviousState] = {}
        self.failed: list[tuple[str, str]] = []

    def __repr__(self) -> str:
        deleted = "?" if self._deleted is None else len(self._deleted)
        return (
            f"ChangeSet(new={len(self.new)}, changed={len(self.changed)}, "
            f"unchanged={len(self.unchanged)}, deleted={deleted}, failed={len(self.failed)})"
        )

    @property
    def complete(self) -> bool:
        """Whether the whole listing has been gone through."""
        return self._deleted is not None

    @property
    def deleted(self) -> list[str]:
        """Stored doc ids missing from a complete listing (never any for partial listings).

        Raises:
            InvalidInput: the iteration has not finished yet.
        """
        if self._deleted is None:
            raise InvalidInput(
                "The deleted documents are known only once the whole listing is read.",
                hint="Iterate the ChangeSet to its end, or call drain() first.",
            )
        return self._deleted

    def __iter__(self) -> Iterator[Change]:
        if self._started:
            raise InvalidInput("A ChangeSet can be iterated only once: it reads as it goes.")
        self._started = True
        for item in self._items:
            self._listed.add(item.doc_id)
            change = self._classify(item)
            if change is not None:
                yield change
        self._deleted = self._find_deleted()

    def drain(self) -> ChangeSet:
        """Go through the rest of the listing without keeping any bytes; return self."""
        if not self._started:
            for _ in self:
                pass
        elif self._deleted is None:
            raise InvalidInput("drain() was called while another loop is iterating this set.")
        return self

    def _classify(self, item: SourceItem) -> Change | None:
        before = self._previous.get(item.doc_id)
        # mtime 0 means the source does not know it: only the hash can tell.
        if (
            before is not None
            and item.mtime
            and (before.size, before.mtime)
            == (
                item.size,
                item.mtime,
            )
        ):
            self.unchanged.append(item.doc_id)
            return None
        if self._max_bytes is not None and item.size > self._max_bytes:
            self.failed.append((item.doc_id, size_limit_reason(self._max_bytes)))
            return None
        try:
            data = item.read_bytes(max_bytes=self._max_bytes)
        except SourceError as err:
            self.failed.append((item.doc_id, err.reason))
            return None
        digest = content_hash(data)
        if before is not None and before.content_hash == digest:
            self.unchanged.append(item.doc_id)
            self.touched[item.doc_id] = PreviousState(len(data), item.mtime, digest)
            return None
        self.hashes[item.doc_id] = digest
        status: Literal["new", "changed"] = "new" if before is None else "changed"
        (self.new if before is None else self.changed).append(item.doc_id)
        return Change(item, status, data, digest)

    def _find_deleted(self) -> list[str]:
        if not self._lists_completely:
            return []
        failed = {doc_id for doc_id, _ in self.failed}
        deleted = []
        for doc_id in self._previous:
            if doc_id in self._listed or doc_id in failed:
                continue
            reason = self._problem_covering(doc_id)
            if reason is None:
                deleted.append(doc_id)
            else:
                # Not listed because the walk could not get there, not because it is gone.
                self.failed.append((doc_id, reason))
        return sorted(deleted)

    def _problem_covering(self, doc_id: str) -> str | None:
        for path, reason in self._problems():
            if doc_id == path or doc_id.startswith(path.rstrip("/") + "/"):
                return reason
        return None


def detect_changes(
    items: Source | Iterable[SourceItem],
    previous: Mapping[str, PreviousState],
    *,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
) -> ChangeSet:
    """Compare a listing with the states stored at the last sync.

    Args:
        items: a source (its ``list()``, ``lists_completely`` and ``problems`` are used) or
            the items of a complete listing.
        previous: the stored state of each doc id. Store ``mtime`` as the exact float
            listed: a rounded one only costs a read and a hash (the fast path is missed).
        max_bytes: items larger than this are reported in ``failed`` without being read.

    Returns:
        A :class:`ChangeSet`; iterate it to read and get the new and changed documents.

    >>> changes = detect_changes(source, stored)  # doctest: +SKIP
    >>> for change in changes:  # doctest: +SKIP
    ...     parse_document(change.data, mime=change.item.mime, name=change.doc_id)
    >>> changes.deleted  # doctest: +SKIP
    ['old/page.md']
    """
    if isinstance(items, Source):
        return ChangeSet(
            items.list(),
            previous,
            lists_completely=items.lists_completely,
            problems=lambda: items.problems,
            max_bytes=max_bytes,
        )
    return ChangeSet(items, previous, max_bytes=max_bytes)
