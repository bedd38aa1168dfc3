"""What every source yields: :class:`SourceItem`, the :class:`Source` protocol, content hashes.

An item knows how to read its own bytes, so listing stays cheap: nothing is read until the
change detection decides the bytes are needed.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from curata.errors import StorageError
from curata.parse.document import size_limit_reason

# Our own table first: the system's mimetypes database differs between machines (.md is
# missing on some), and these are the types the parsers are registered for.
MIME_BY_EXTENSION = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".log": "text/plain",
    ".rst": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".xhtml": "text/html",
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".json": "application/json",
}
UNKNOWN_MIME = "application/octet-stream"

# Read in pieces so that a size limit is enforced without holding more than the limit.
_READ_CHUNK = 1 << 20


class ByteStream(Protocol):
    """What an item's opener returns: a file, a BytesIO, an S3 response body."""

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes (all when -1); ``b""`` at the end."""
        ...

    def close(self) -> None:
        """Release the file or connection."""
        ...


class SourceError(StorageError):
    """An item could not be read from its source (it vanished, or reading it failed)."""

    def __init__(self, doc_id: str, reason: str) -> None:
        super().__init__(f"Cannot read {doc_id!r}: {reason}.")
        self.doc_id = doc_id
        self.reason = reason


def guess_mime(name: str) -> str:
    """The MIME type of a file, from its extension.

    >>> guess_mime("guides/setup.md")
    'text/markdown'
    """
    dot = name.rfind(".")
    extension = name[dot:].lower() if dot > name.rfind("/") else ""
    if extension in MIME_BY_EXTENSION:
        return MIME_BY_EXTENSION[extension]
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or UNKNOWN_MIME


def content_hash(data: bytes) -> str:
    """The SHA-256 of ``data`` as 64 hex digits: what change detection compares.

    >>> content_hash(b"")[:12]
    'e3b0c44298fc'
    """
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class SourceItem:
    """One document of a source, listed but not read yet.

    Attributes:
        doc_id: stable identity: the path relative to the source root, ``/``-separated
            (``guides/setup.md``); for JSONL records the record's id, else ``{file}:{line}``.
        uri: where it lives: a file path, ``s3://bucket/key`` or ``file.jsonl#L12``.
        size: bytes, as listed.
        mtime: modification time in seconds since the epoch (0 where the source has none).
        mime: the type guessed from the extension (``text/plain`` for JSONL records).
        metadata: JSON-serialisable extra fields (for JSONL records, the other fields).
    """

    doc_id: str
    uri: str
    size: int
    mtime: float
    mime: str
    metadata: dict[str, Any] = field(default_factory=dict, hash=False)
    # Opens the bytes for reading; raising OSError when they are gone or unreadable.
    opener: Callable[[], ByteStream] = field(
        default_factory=lambda: _no_opener, repr=False, compare=False
    )

    def read_bytes(self, *, max_bytes: int | None = None) -> bytes:
        """The item's bytes, read now.

        Args:
            max_bytes: refuse items larger than this, reading at most ``max_bytes + 1`` bytes
                (the file may have grown since it was listed).

        Raises:
            SourceError: the item vanished since it was listed, is unreadable, or is larger
                than ``max_bytes``.
        """
        if max_bytes is not None and self.size > max_bytes:
            raise SourceError(self.doc_id, size_limit_reason(max_bytes))
        try:
            with closing(self.opener()) as stream:
                data = _read_at_most(stream, max_bytes)
        except FileNotFoundError as err:
            raise SourceError(self.doc_id, "it vanished since the source was listed") from err
        except PermissionError as err:
            raise SourceError(self.doc_id, "permission denied") from err
        except IsADirectoryError as err:
            raise SourceError(self.doc_id, "it is a folder now") from err
        except OSError as err:
            raise SourceError(self.doc_id, f"read failed ({err})") from err
        if max_bytes is not None and len(data) > max_bytes:
            raise SourceError(self.doc_id, size_limit_reason(max_bytes) + " (it grew)")
        return data


def _no_opener() -> ByteStream:
    raise OSError("this item was built without a way to read it")


def _read_at_most(stream: ByteStream, max_bytes: int | None) -> bytes:
    if max_bytes is None:
        return stream.read(-1)
    parts: list[bytes] = []
    remaining = max_bytes + 1
    while remaining > 0:
        part = stream.read(min(remaining, _READ_CHUNK))
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


@runtime_checkable
class Source(Protocol):
    """Something that lists documents: a folder, a bucket prefix, a JSONL file, one file.

    Attributes:
        uri: what was opened, as given.
        lists_completely: True when a listing shows every document, so an item missing from
            it was deleted (folders, buckets, JSONL files); False for partial listings.
        problems: ``(doc_id or path, reason)`` for entries the last listing could not use
            (a symlink loop, an unreadable folder, a bad JSONL line); filled while listing.
    """

    uri: str
    lists_completely: bool
    problems: list[tuple[str, str]]

    def list(self) -> Iterator[SourceItem]:
        """Yield the documents, in a stable order; resets and fills ``problems``."""
        ...
