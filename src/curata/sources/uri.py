"""``open_source``: the kind of source is chosen from the URI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from curata.errors import InvalidInput, NotFound
from curata.sources.item import Source
from curata.sources.jsonl import JsonlSource
from curata.sources.local import FileSource, FolderSource
from curata.sources.patterns import PathFilter
from curata.sources.remote import ObjectStoreSource

_JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")


def open_source(
    uri: str,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    include_hidden: bool = False,
    text_field: str = "text",
    id_field: str | None = "id",
    storage_options: Mapping[str, Any] | None = None,
) -> Source:
    """Open a folder, a bucket prefix, a JSONL file or one file as a source of documents.

    Args:
        uri: a local folder or file, ``s3://bucket/prefix``, a ``.jsonl``/``.jsonl.gz`` file
            (local or ``s3://``), or ``jsonl:PATH`` for a JSONL file with another name.
        include: globs of doc ids to list (all when empty): ``["**/*.md", "faq/*"]``;
            ``*`` stays within a folder, ``**`` spans folders, and a pattern without ``/``
            matches the file name at any depth.
        exclude: globs of doc ids to leave out; an excluded folder is not walked.
        include_hidden: also list files and folders whose names start with a dot.
        text_field: JSONL only: the field holding each record's text.
        id_field: JSONL only: the field holding each record's id (None: ``{file}:{line}``).
        storage_options: passed to s3fs for ``s3://`` URIs (``endpoint_url``, ``key``,
            ``secret``, ...); the ``AWS_*`` environment variables work as in s3fs.

    Returns:
        A :class:`Source`; call ``list()`` to get its items.

    Raises:
        NotFound: a local path does not exist.
        InvalidInput: the URI scheme is not supported, or a pattern is malformed.
        MissingDependency: an ``s3://`` URI without s3fs installed.

    >>> source = open_source("handbook/", include=["**/*.md"])  # doctest: +SKIP
    >>> [item.doc_id for item in source.list()]  # doctest: +SKIP
    ['guides/setup.md', 'index.md']
    """
    path_filter = PathFilter.of(include, exclude, include_hidden)
    if uri.startswith("jsonl:") or uri.lower().endswith(_JSONL_SUFFIXES):
        path = _local_or_s3(uri.removeprefix("jsonl:"))
        if not path.startswith("s3://") and not Path(path).is_file():
            raise NotFound(f"The JSONL file {path} does not exist.")
        return JsonlSource(
            path,
            text_field=text_field,
            id_field=id_field,
            storage_options=storage_options,
        )
    if uri.startswith("s3://"):
        return ObjectStoreSource(uri, path_filter, storage_options)
    path = _local_or_s3(uri)
    local = Path(path)
    if local.is_dir():
        return FolderSource(local, path_filter)
    if local.exists():
        return FileSource(local)
    raise NotFound(f"The source {uri} does not exist.")


def _local_or_s3(uri: str) -> str:
    """A local path (``file://`` removed) or an ``s3://`` URI; other schemes are refused."""
    if uri.startswith("file://"):
        return uri.removeprefix("file://")
    scheme, sep, _ = uri.partition("://")
    if sep and scheme != "s3":
        raise InvalidInput(
            f"Sources on {scheme}:// are not supported.",
            hint="Use a local path, s3://bucket/prefix, or a .jsonl file.",
        )
    return uri
