"""Word documents (.docx) with python-docx: sections by "Heading N" styles, tables included.

Paragraphs and tables are read in body order, so a table stays under the heading it sits
under. A paragraph styled "Title" gives the document's title (else the core property).
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

from curata.parse.document import ParsedDocument, ParseError, Section, build_document

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)


def _heading_level(paragraph: Any) -> int | None:
    style = paragraph.style
    match = _HEADING_STYLE.match(style.name or "") if style is not None else None
    return int(match.group(1)) if match else None


def _table_lines(table: Any) -> list[str]:
    lines = []
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            text = " ".join(cell.text.split())
            # A merged cell is returned once per grid column it spans; keep it once.
            if not cells or cells[-1] != text:
                cells.append(text)
        if any(cells):
            lines.append(" | ".join(cells))
    return lines


def _open(data: bytes, name: str) -> Any:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    if data[:2] != b"PK":
        hint = "an old binary .doc?" if data[:4] == b"\xd0\xcf\x11\xe0" else "not a zip archive"
        raise ParseError(name, f"not a valid .docx file ({hint})")
    try:
        return docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, PackageNotFoundError, KeyError, ValueError) as err:
        raise ParseError(name, f"corrupt .docx file ({err})") from err


def parse_docx(data: bytes, name: str = "") -> ParsedDocument:
    """A Word document's paragraphs and tables, as sections by heading.

    Raises:
        ParseError: not a .docx file, a corrupt one, or no text.
    """
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = _open(data, name)
    sections: list[Section] = []
    headings: list[tuple[int, str]] = []
    lines: list[str] = []
    title: str | None = None
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            lines.extend([*_table_lines(block), ""])
            continue
        if not isinstance(block, Paragraph):
            continue
        text = block.text.strip()
        level = _heading_level(block)
        if block.style is not None and block.style.name == "Title" and text:
            title = title or text
        if level is not None and text:
            sections.append(Section("\n".join(lines), tuple(t for _, t in headings)))
            while headings and headings[-1][0] >= level:
                headings.pop()
            headings.append((level, text))
            lines = [text, ""]
        elif text:
            lines.extend([text, ""])
    sections.append(Section("\n".join(lines), tuple(t for _, t in headings)))
    title = title or (document.core_properties.title or "").strip() or None
    return build_document(sections, title=title, mime=DOCX_MIME, name=name)
