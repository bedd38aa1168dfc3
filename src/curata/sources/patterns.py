"""Include and exclude globs, matched against doc ids (``guides/setup.md``).

The rules are those of ``.gitignore`` users expect: ``*`` and ``?`` stay within one folder
level, ``**`` spans any number of levels (``**/*.md`` matches ``a.md`` and ``x/y/a.md``),
``[abc]`` is a character class, and a pattern without ``/`` is matched against the file name
alone, at any depth (``*.md`` matches ``guides/setup.md``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from curata.errors import InvalidInput


@lru_cache(maxsize=256)
def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a glob to a regex matching whole doc ids.

    >>> bool(glob_to_regex("**/*.md").match("guides/setup.md"))
    True
    """
    if not pattern:
        raise InvalidInput("An include/exclude pattern is empty.")
    parts: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if pattern.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            parts.append(".*")
            i += 2
        elif char == "*":
            parts.append("[^/]*")
            i += 1
        elif char == "?":
            parts.append("[^/]")
            i += 1
        elif char == "[":
            end = pattern.find("]", i + 2)
            if end == -1:
                parts.append(re.escape(char))
                i += 1
                continue
            body = pattern[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            parts.append(f"[{body.replace(chr(92), chr(92) * 2)}]")
            i = end + 1
        else:
            parts.append(re.escape(char))
            i += 1
    return re.compile("".join(parts) + r"\Z")


def matches(doc_id: str, pattern: str) -> bool:
    """Whether ``doc_id`` matches one glob (see the module docstring for the rules)."""
    if "/" not in pattern.rstrip("/"):
        # A name pattern: compared with the last part of the path, at any depth.
        name = doc_id.rstrip("/").rsplit("/", 1)[-1]
        return glob_to_regex(pattern.rstrip("/")).match(name) is not None
    return glob_to_regex(pattern).match(doc_id) is not None


@dataclass(frozen=True)
class PathFilter:
    """Which doc ids a source lists: matching an include (if any) and no exclude."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    include_hidden: bool = False

    @classmethod
    def of(cls, include: Sequence[str], exclude: Sequence[str], include_hidden: bool) -> PathFilter:
        """Validate the patterns (a bare string is a common slip) and build the filter."""
        for name, patterns in (("include", include), ("exclude", exclude)):
            if isinstance(patterns, str):
                raise InvalidInput(
                    f"{name} takes a list of patterns, not one string.",
                    hint=f"Write {name}=[{patterns!r}].",
                )
            for pattern in patterns:
                glob_to_regex(pattern)
        return cls(tuple(include), tuple(exclude), include_hidden)

    def is_hidden(self, doc_id: str) -> bool:
        """Whether a file or folder on the path starts with a dot (and those are skipped)."""
        return not self.include_hidden and any(p.startswith(".") for p in doc_id.split("/"))

    def wants_file(self, doc_id: str) -> bool:
        """Whether a file with this doc id is listed."""
        if self.is_hidden(doc_id) or any(matches(doc_id, p) for p in self.exclude):
            return False
        return not self.include or any(matches(doc_id, p) for p in self.include)

    def wants_folder(self, folder_id: str) -> bool:
        """Whether to walk into a folder: not hidden, not excluded as a whole."""
        if self.is_hidden(folder_id):
            return False
        return not any(matches(folder_id, p) or matches(folder_id + "/", p) for p in self.exclude)
