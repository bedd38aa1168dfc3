"""Document sources for knowledge bases: list documents, detect what changed, read bytes.

A source is a local folder (recursive), one file, an ``s3://bucket/prefix`` or a JSONL file
of records. Listing is cheap (names, sizes, modification times); :func:`detect_changes`
reads only the documents whose size or time moved, and hands their bytes over once::

    from curata.sources import detect_changes, open_source

    source = open_source("handbook/", include=["**/*.md", "**/*.pdf"], exclude=["drafts/**"])
    changes = detect_changes(source, stored_states)   # {doc_id: PreviousState}
    for change in changes:                             # new and changed documents
        handle(change.doc_id, change.data, change.content_hash)
    print(changes.deleted, changes.failed, source.problems)
"""

from curata.sources.changes import Change, ChangeSet, PreviousState, detect_changes
from curata.sources.item import Source, SourceError, SourceItem, content_hash, guess_mime
from curata.sources.uri import open_source

__all__ = [
    "Change",
    "ChangeSet",
    "PreviousState",
    "Source",
    "SourceError",
    "SourceItem",
    "content_hash",
    "detect_changes",
    "guess_mime",
    "open_source",
]
