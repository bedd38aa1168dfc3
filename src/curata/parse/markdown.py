"""Markdown: sections by heading, markup stripped, from markdown-it-py's token stream.

Kept: the text of paragraphs, lists (one ``- `` line per item), tables (cells joined by
`` | ``), code blocks (verbatim), block quotes, link text and inline code. Dropped: images,
inline HTML tags and comments, emphasis markers, and a YAML front matter block (its
``title`` becomes the document's title).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

from curata.parse.document import ParsedDocument, Section, build_document
from curata.parse.plain_text import decode_text

MIME = "text/markdown"
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_SPACES = re.compile(r"[ \t]{2,}")
_TAG = re.compile(r"<!--.*?-->|<[^>]+>", re.DOTALL)


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """``(front matter as a dict, the rest)``; an unreadable block is dropped all the same."""
    match = _FRONT_MATTER.match(text)
    if match is None:
        return {}, text
    import yaml

    try:
        meta = yaml.safe_load(match.group(1) or "")
    except yaml.YAMLError:
        meta = None
    return (meta if isinstance(meta, dict) else {}), text[match.end() :]


@dataclass
class _Walker:
    """Builds sections while walking the token stream."""

    sections: list[Section] = field(default_factory=list)
    headings: list[tuple[int, str]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    lists: list[list[int]] = field(default_factory=list)  # per open list: [next number or 0]
    item_prefix: str | None = None
    row: list[str] | None = None
    first_h1: str | None = None

    def flush(self) -> None:
        self.sections.append(
            Section("\n".join(self.lines), tuple(text for _, text in self.headings))
        )
        self.lines = []

    def block(self, text: str) -> None:
        """Add a block of text; inside a list item it becomes a ``- `` line."""
        if self.item_prefix is not None:
            indent = "  " * (len(self.lists) - 1)
            self.lines.append(indent + self.item_prefix + text)
            self.item_prefix = None
        elif self.lists:
            self.lines.append("  " * len(self.lists) + text)
        else:
            self.lines.extend([text, ""])

    def heading(self, level: int, text: str) -> None:
        self.flush()
        while self.headings and self.headings[-1][0] >= level:
            self.headings.pop()
        self.headings.append((level, text))
        if level == 1 and self.first_h1 is None:
            self.first_h1 = text
        self.lines = [text, ""]


def inline_text(token: Any) -> str:
    """The plain text of an inline token: link text and code kept, images and tags dropped."""
    parts: list[str] = []
    for child in token.children or ():
        # An image is one child token (its alt text hangs below it), so it is skipped whole.
        kind = child.type
        if kind in ("text", "code_inline"):
            parts.append(child.content)
        elif kind == "softbreak":
            parts.append(" ")
        elif kind == "hardbreak":
            parts.append("\n")
    # A dropped image leaves the spaces around it side by side.
    return _SPACES.sub(" ", "".join(parts)).strip()


def _walk(tokens: list[Any], walker: _Walker) -> None:
    i = 0
    while i < len(tokens):
        token = tokens[i]
        kind = token.type
        if kind == "heading_open":
            walker.heading(int(token.tag[1]), inline_text(tokens[i + 1]))
            i += 3
            continue
        if kind in ("bullet_list_open", "ordered_list_open"):
            start = token.attrGet("start")
            walker.lists.append([int(start) if start else 1] if kind[0] == "o" else [0])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            walker.lists.pop()
            if not walker.lists:
                walker.lines.append("")
        elif kind == "list_item_open":
            number = walker.lists[-1]
            walker.item_prefix = f"{number[0]}. " if number[0] else "- "
            if number[0]:
                number[0] += 1
        elif kind == "inline" and walker.row is not None:
            walker.row.append(inline_text(token))
        elif kind == "inline":
            walker.block(inline_text(token))
        elif kind in ("fence", "code_block"):
            walker.block(token.content.rstrip("\n"))
        elif kind == "html_block":
            text = html.unescape(_TAG.sub(" ", token.content)).strip()
            if text:
                walker.block(" ".join(text.split()))
        elif kind == "tr_open":
            walker.row = []
        elif kind == "tr_close" and walker.row is not None:
            walker.lines.append(" | ".join(walker.row))
            walker.row = None
        elif kind == "table_close":
            walker.lines.append("")
        i += 1


def parse_markdown(data: bytes, name: str = "") -> ParsedDocument:
    """Markdown to sections, one per heading, each with its heading path.

    Raises:
        ParseError: binary data, or no text.
    """
    from markdown_it import MarkdownIt

    meta, body = split_front_matter(decode_text(data, name=name).replace("\r\n", "\n"))
    parser = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    walker = _Walker()
    _walk(parser.parse(body), walker)
    walker.flush()
    title = meta.get("title")
    title = str(title) if title else walker.first_h1
    return build_document(walker.sections, title=title, mime=MIME, name=name)
