"""Document parsers for knowledge bases: bytes in, cleaned text and sections out.

One parser per format, looked up by MIME type: plain text (any encoding), Markdown, HTML (the
main content only), PDF (one section per page), Word (.docx) and JSON. Sections follow the
document's own structure (headings, pages), so chunkers can split within them::

    from curata.parse import parse_document

    doc = parse_document(data, mime="text/markdown", name="guides/setup.md")
    for section in doc.sections:
        print(section.heading_path, section.page, section.text[:60])

A file that cannot be parsed raises :class:`ParseError` saying which file and why; add a
format with :func:`register_parser`.
"""

from curata.parse.document import (
    DEFAULT_MAX_BYTES,
    ParsedDocument,
    ParseError,
    Parser,
    Section,
    build_document,
    clean_text,
    get_parser,
    parse_document,
    register_parser,
    registered_parsers,
)
from curata.parse.json_doc import parse_json
from curata.parse.plain_text import decode_text

__all__ = [
    "DEFAULT_MAX_BYTES",
    "ParseError",
    "ParsedDocument",
    "Parser",
    "Section",
    "build_document",
    "clean_text",
    "decode_text",
    "get_parser",
    "parse_document",
    "parse_json",
    "register_parser",
    "registered_parsers",
]
