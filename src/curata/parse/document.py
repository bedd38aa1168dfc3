"""Parsed documents, the parser registry and :func:`parse_document`.

A parser turns one document's bytes into a :class:`ParsedDocument`: the cleaned text, cut into
sections along the document's own structure (headings, pages), which chunkers split within.
Parsers are looked up by MIME type; :func:`register_parser` adds or replaces one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from curata.errors import CurataError, InvalidInput

DEFAULT_MAX_BYTES = 100 * 2**20

Parser = Callable[[bytes, str], "ParsedDocument"]
"""A parser: ``(data, name) -> ParsedDocument``; ``name`` is for error messages."""

_PARSERS: dict[str, Parser] = {}
_BUILTINS_REGISTERED = False
_BLANK_LINES = re.compile(r"\n{3,}")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")


@dataclass(frozen=True)
class Section:
    """A stretch of a document under one heading, or one page of a PDF.

    Attributes:
        text: the section's text (a heading's own text is its first line).
        heading_path: the headings above it, outermost first: ``("Install", "On Linux")``.
        page: 1-based page number for PDFs, else None.
    """

    text: str
    heading_path: tuple[str, ...] = ()
    page: int | None = None


@dataclass(frozen=True)
class ParsedDocument:
    """A document as text.

    Attributes:
        text: the whole cleaned text: the sections' texts joined by blank lines.
        sections: the sections in document order.
        title: the document's title (front matter, ``<title>``, first heading, metadata).
        mime: the MIME type it was parsed as.
    """

    text: str
    sections: tuple[Section, ...]
    title: str | None
    mime: str


class ParseError(InvalidInput):
    """A document could not be turned into text; the message says which one and why."""

    def __init__(self, name: str, reason: str, *, hint: str | None = None) -> None:
        super().__init__(f"Cannot parse {name or 'the document'}: {reason}.", hint=hint)
        self.name = name
        self.reason = reason


def size_limit_reason(max_bytes: int) -> str:
    """Why a document over ``max_bytes`` is refused: ``larger than the 100 MB limit (...)``."""
    shown = f"{max_bytes / 2**20:g} MB" if max_bytes >= 2**20 else f"{max_bytes:,} bytes"
    return f"larger than the {shown} limit (raise it with kb sync --max-bytes, or max_bytes=)"


def clean_text(text: str) -> str:
    """Unix newlines, no trailing spaces, at most one blank line in a row, no outer blanks."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = _TRAILING_SPACE.sub("\n", text + "\n")
    return _BLANK_LINES.sub("\n\n", text).strip()


def build_document(
    sections: Iterable[Section], *, title: str | None, mime: str, name: str
) -> ParsedDocument:
    """Clean the sections, drop empty ones and join them: what every parser returns.

    Raises:
        ParseError: no section has any text.
    """
    kept = []
    for section in sections:
        text = clean_text(section.text)
        if text:
            kept.append(Section(text, section.heading_path, section.page))
    if not kept:
        raise ParseError(name, "no text (nothing readable in it after parsing)")
    title = " ".join(title.split()) if title else None
    return ParsedDocument("\n\n".join(s.text for s in kept), tuple(kept), title or None, mime)


def register_parser(mime: str, parser: Parser) -> Parser:
    """Use ``parser`` for documents of type ``mime`` (replacing any registered before).

    Args:
        mime: a MIME type such as ``text/csv``.
        parser: ``(data, name) -> ParsedDocument``; raise :class:`ParseError` for bad input.

    Returns:
        ``parser``, so that a partial application can be registered and kept in one line.
    """
    if "/" not in mime:
        raise InvalidInput(f"{mime!r} is not a MIME type.", hint="Write it as 'text/csv'.")
    _PARSERS[mime.lower()] = parser
    return parser


def registered_parsers() -> dict[str, Parser]:
    """Every registered parser by MIME type."""
    _register_builtins()
    return dict(sorted(_PARSERS.items()))


def get_parser(mime: str, *, name: str = "") -> Parser:
    """The parser for ``mime``; any ``text/*`` type without its own falls back to plain text.

    Raises:
        ParseError: no parser handles this type (the message lists those that do).
    """
    _register_builtins()
    base = mime.split(";", 1)[0].strip().lower()
    parser = _PARSERS.get(base)
    if parser is None and base.startswith("text/"):
        parser = _PARSERS.get("text/plain")
    if parser is None:
        known = ", ".join(sorted(_PARSERS))
        raise ParseError(
            name,
            f"no parser for {base or 'an unknown type'}",
            hint=f"Parsers exist for: {known}. Exclude such files, or register_parser() one.",
        )
    return parser


def parse_document(
    data: bytes, *, mime: str, name: str = "", max_bytes: int = DEFAULT_MAX_BYTES
) -> ParsedDocument:
    """Turn a document's bytes into cleaned text and sections.

    Args:
        data: the document's bytes.
        mime: its MIME type (a source item's ``mime``).
        name: how to call it in error messages (a doc id or file name).
        max_bytes: larger documents are refused.

    Returns:
        The :class:`ParsedDocument`.

    Raises:
        ParseError: the document is empty, too large, corrupt, binary where text was
            expected, of a type without a parser, or has no text.

    >>> parse_document(b"# Setup\\n\\nRun it.", mime="text/markdown").sections[0].heading_path
    ('Setup',)
    """
    if len(data) > max_bytes:
        raise ParseError(name, size_limit_reason(max_bytes))
    if not data:
        raise ParseError(name, "empty file")
    parser = get_parser(mime, name=name)
    try:
        document = parser(data, name)
    except CurataError:
        raise
    except Exception as err:  # a parser's bug or a library's surprise: one bad file, not a crash
        raise ParseError(name, f"the {mime} parser failed ({type(err).__name__}: {err})") from err
    if not document.text.strip():
        raise ParseError(name, "no text (nothing readable in it after parsing)")
    return document


def _register_builtins() -> None:
    """Fill the registry with the built-in parsers, once (they import their libraries lazily)."""
    global _BUILTINS_REGISTERED  # noqa: PLW0603 - the registry is filled once per process
    if _BUILTINS_REGISTERED:
        return
    from curata.parse import html_page, json_doc, markdown, pdf, plain_text, word

    for mime, parser in (
        ("text/plain", plain_text.parse_text),
        ("text/markdown", markdown.parse_markdown),
        ("text/x-markdown", markdown.parse_markdown),
        ("text/html", html_page.parse_html),
        ("application/xhtml+xml", html_page.parse_html),
        ("application/pdf", pdf.parse_pdf),
        (word.DOCX_MIME, word.parse_docx),
        ("application/json", json_doc.parse_json),
    ):
        # setdefault: a parser registered before the first lookup wins over the built-in.
        _PARSERS.setdefault(mime, parser)
    _BUILTINS_REGISTERED = True
