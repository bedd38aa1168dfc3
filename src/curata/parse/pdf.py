"""PDF: one section per page, numbered from 1, with pypdfium2 (PDFium, Chrome's PDF engine).

``docs/rag.md`` has the benchmark against pypdf that chose it: several times faster and at
least as faithful. PDFium is not thread-safe, so calls into it hold one process-wide lock;
parse PDFs in several processes, not threads, for parallelism. Scanned PDFs (images without
a text layer) have no text to extract: they fail with "no text", as OCR is not done here.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from curata.parse.document import ParsedDocument, ParseError, Section, build_document

MIME = "application/pdf"
# PDFium is not thread-safe (pypdfium2's documentation says so); one lock serialises it.
_PDFIUM_LOCK = threading.Lock()
# PDFium marks a hyphen it saw at a line end with \x02 (and \ufffe in older builds); the word
# was split by the layout, not by the author, so the parts are joined again.
_SOFT_HYPHEN = re.compile("[\x02\ufffe]\r?\n?")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _reason(err: Exception) -> str:
    message = str(err)
    if "password" in message.lower() or "security" in message.lower():
        return "encrypted PDF (it needs a password; decrypt it first)"
    return f"corrupt PDF ({message.rstrip('.')})"


def _page_text(page: Any) -> str:
    textpage = page.get_textpage()
    try:
        text: str = textpage.get_text_range()
    finally:
        textpage.close()
    return _CONTROL.sub("", _SOFT_HYPHEN.sub("", text))


def parse_pdf(data: bytes, name: str = "") -> ParsedDocument:
    """A PDF's text, one section per page (``page`` is 1-based, ``heading_path`` empty).

    Raises:
        ParseError: corrupt or encrypted PDF, or no text layer.
    """
    import pypdfium2 as pdfium

    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise ParseError(name, "corrupt PDF (it does not start with %PDF)")
    with _PDFIUM_LOCK:
        try:
            document = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as err:
            raise ParseError(name, _reason(err)) from err
        try:
            title = (document.get_metadata_dict().get("Title") or "").strip() or None
            sections = []
            for index in range(len(document)):
                page = document[index]
                try:
                    sections.append(Section(_page_text(page), (), index + 1))
                finally:
                    page.close()
        except pdfium.PdfiumError as err:
            raise ParseError(name, _reason(err)) from err
        finally:
            document.close()
    if not any(s.text.strip() for s in sections):
        raise ParseError(
            name, "no text (a scanned PDF? its pages are images, and OCR is not done here)"
        )
    return build_document(sections, title=title, mime=MIME, name=name)
