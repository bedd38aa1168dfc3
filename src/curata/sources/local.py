"""Local sources: a folder walked recursively, or one file.

The walk follows symbolic links, as a user who links a folder into the source expects, but
remembers the folders on the current path by (device, inode): a link back to one of them is
a loop, reported in ``problems`` and not followed. Entries the walk cannot use (a broken
link, an unreadable folder, a FIFO or device) are reported the same way, so a sync can count
them as failed instead of treating the documents under them as deleted.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import IO

from curata.errors import NotFound
from curata.sources.item import SourceItem, guess_mime
from curata.sources.patterns import PathFilter


def _open_file(path: str) -> IO[bytes]:
    return open(path, "rb")


def _stat_problem(err: OSError, *, is_link: bool = False) -> str:
    """The reason a stat failed, in the words a user would look for."""
    if err.errno == errno.ELOOP:
        return "symbolic link loop (the link points back to itself)"
    if err.errno == errno.ENOENT:
        return "broken symbolic link (its target does not exist)" if is_link else "it vanished"
    if err.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return f"cannot be read ({err.strerror or err})"


class FolderSource:
    """Every file under a folder, recursively, with doc ids relative to the folder.

    Args:
        root: the folder.
        path_filter: include/exclude globs and whether hidden entries are listed.
    """

    lists_completely = True

    def __init__(self, root: str | Path, path_filter: PathFilter) -> None:
        self.root = Path(root)
        self.uri = str(root)
        self.path_filter = path_filter
        self.problems: list[tuple[str, str]] = []

    def __repr__(self) -> str:
        return f"FolderSource({self.uri!r})"

    def list(self) -> Iterator[SourceItem]:
        """Yield the files in a stable order (sorted by name, folder by folder)."""
        self.problems = []
        try:
            root_stat = self.root.stat()
        except OSError as err:
            # Raised, not reported: an empty listing would read as "every document deleted".
            raise NotFound(f"The source folder {self.uri} cannot be read: {err.strerror}.") from err
        yield from self._walk(str(self.root), "", {(root_stat.st_dev, root_stat.st_ino)})

    def _walk(
        self, folder: str, prefix: str, ancestors: set[tuple[int, int]]
    ) -> Iterator[SourceItem]:
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda e: e.name)
        except OSError as err:
            self.problems.append((prefix.rstrip("/") or ".", _stat_problem(err)))
            return
        for entry in entries:
            doc_id = prefix + entry.name
            if self.path_filter.is_hidden(doc_id):
                continue
            try:
                info = entry.stat(follow_symlinks=True)
            except OSError as err:
                self.problems.append((doc_id, _stat_problem(err, is_link=entry.is_symlink())))
                continue
            if stat.S_ISDIR(info.st_mode):
                if not self.path_filter.wants_folder(doc_id):
                    continue
                key = (info.st_dev, info.st_ino)
                if key in ancestors:
                    reason = "symbolic link loop (the link points back to a folder above it)"
                    self.problems.append((doc_id, reason))
                    continue
                yield from self._walk(entry.path, doc_id + "/", ancestors | {key})
            elif not self.path_filter.wants_file(doc_id):
                continue
            elif stat.S_ISREG(info.st_mode):
                yield _file_item(doc_id, entry.path, info)
            else:
                # Reading a FIFO would block forever; devices and sockets are not documents.
                self.problems.append((doc_id, "not a regular file (a pipe, socket or device)"))


def _file_item(doc_id: str, path: str, info: os.stat_result) -> SourceItem:
    return SourceItem(
        doc_id=doc_id,
        uri=os.path.abspath(path),
        size=info.st_size,
        mtime=info.st_mtime,
        mime=guess_mime(doc_id),
        opener=partial(_open_file, path),
    )


class FileSource:
    """One local file: a single item whose doc id is the file name."""

    lists_completely = True

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.uri = str(path)
        self.problems: list[tuple[str, str]] = []

    def __repr__(self) -> str:
        return f"FileSource({self.uri!r})"

    def list(self) -> Iterator[SourceItem]:
        """Yield the file, or report why it cannot be listed."""
        self.problems = []
        try:
            info = self.path.stat()
        except OSError as err:
            self.problems.append(
                (self.path.name, _stat_problem(err, is_link=self.path.is_symlink()))
            )
            return
        yield _file_item(self.path.name, str(self.path), info)
