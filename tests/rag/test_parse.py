"""Parsers: every sample document, each format's structure, and each bad input's reason."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import make_sample_pdfs
import pytest

from curata.errors import InvalidInput
from curata.parse import (
    ParsedDocument,
    ParseError,
    Section,
    build_document,
    parse_document,
    parse_json,
    register_parser,
    registered_parsers,
)
from curata.parse import document as parse_registry
from curata.sources import guess_mime, open_source

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
HTML_BOILERPLATE = [
    "Skip to content",
    "Search the help center",
    "Getting started",  # the site menu
    "Related articles",
    "Popular articles",
    "Stay in the loop",
    "Privacy policy",
    "Lumen Labs GmbH",
    "cookies",
    "Accept all",
    "OK, got it",
    "Share this article",
    "Start a trial",
    "Was this article helpful",
    "Lumen Notes Support",
    "Help Center",
]


def parse_sample(kb: Path, doc_id: str) -> ParsedDocument:
    return parse_document((kb / doc_id).read_bytes(), mime=guess_mime(doc_id), name=doc_id)


def sample_ids() -> list[str]:
    kb = Path(str(files("curata.samples") / "kb"))
    return [item.doc_id for item in open_source(str(kb)).list()]


# ---------------------------------------------------------------- the sample knowledge base


def test_sample_corpus_is_small_and_mixed(sample_kb: Path) -> None:
    items = list(open_source(str(sample_kb)).list())
    assert 30 <= len(items) <= 40
    assert sum(i.size for i in items) < 300 * 1024
    by_mime: dict[str, int] = {}
    for item in items:
        by_mime[item.mime] = by_mime.get(item.mime, 0) + 1
    assert by_mime["text/markdown"] >= 15
    assert by_mime["text/html"] >= 4
    assert 4 <= by_mime["application/pdf"] <= 6
    assert by_mime["text/plain"] >= 4


@pytest.mark.parametrize("doc_id", sample_ids())
def test_every_sample_document_parses(sample_kb: Path, doc_id: str) -> None:
    doc = parse_sample(sample_kb, doc_id)
    assert len(doc.text) > 300
    assert doc.text == "\n\n".join(s.text for s in doc.sections)
    if doc_id.endswith((".md", ".html", ".pdf")):
        assert doc.title
    if doc_id.endswith(".html"):
        for boilerplate in HTML_BOILERPLATE:
            assert boilerplate.lower() not in doc.text.lower(), boilerplate
    if doc_id.endswith((".md", ".html")):
        assert all(s.heading_path for s in doc.sections), "all text sits under a heading"


def test_markdown_headings_become_paths(sample_kb: Path) -> None:
    doc = parse_sample(sample_kb, "getting-started/install-desktop.md")
    assert doc.title == "Install Lumen Notes on your computer"  # from the front matter
    paths = [s.heading_path for s in doc.sections]
    top = "Install Lumen Notes on your computer"
    assert paths == [
        (top,),
        (top, "System requirements"),
        (top, "On Windows"),
        (top, "On macOS"),
        (top, "On Linux"),
        (top, "Updates"),
    ]
    linux = doc.sections[4].text
    assert "flatpak install flathub com.lumennotes.Desktop" in linux  # code block kept
    assert "audience" not in doc.text and "---" not in doc.text  # front matter dropped
    assert "desktop-overview.png" not in doc.text and "The desktop app with" not in doc.text
    assert "Windows | Windows 10 22H2 (64-bit) | 4 GB RAM" in doc.sections[1].text
    assert "release notes](" not in doc.text and "in the release notes." in doc.text


def test_html_main_content_with_heading_paths(sample_kb: Path) -> None:
    doc = parse_sample(sample_kb, "billing/plans-and-pricing.html")
    assert doc.title == "Plans and pricing"
    assert ("Plans and pricing", "Team", "Seats") in [s.heading_path for s in doc.sections]
    plus = next(s for s in doc.sections if s.heading_path[-1:] == ("Plus",))
    assert "Plus costs $8.99 per month, or $89.99 per year" in plus.text
    assert "Plus | 20 GB" not in doc.text and "Storage | 2 GB | 20 GB | 100 GB per seat" in doc.text
    soup = parse_sample(sample_kb, "troubleshooting/sync-stuck.html")  # a page without <main>
    assert soup.sections[0].heading_path == ("Sync is stuck",)
    assert "Sync error E-4107" in soup.text


def test_pdf_pages_are_numbered_sections(sample_kb: Path) -> None:
    for doc_id, (title, pages) in make_sample_pdfs.PDFS.items():
        doc = parse_sample(sample_kb, doc_id)
        assert doc.title == title
        assert [s.page for s in doc.sections] == list(range(1, len(pages) + 1))
        assert all(s.heading_path == () for s in doc.sections)
        for section in doc.sections:
            expected = make_sample_pdfs.page_text(doc_id, section.page or 0)
            assert " ".join(section.text.split()) == " ".join(expected.split())


def test_sample_questions_are_answered_by_their_documents(sample_kb: Path) -> None:
    questions = json.loads((sample_kb.parent / "kb_questions.json").read_text(encoding="utf-8"))
    assert 6 <= len(questions) <= 8
    for question in questions:
        doc = parse_sample(sample_kb, question["doc_id"])
        where = doc.text
        if "page" in question:
            where = next(s.text for s in doc.sections if s.page == question["page"])
        assert question["answer"] in where, question["question"]


# ---------------------------------------------------------------- plain text and encodings


def test_text_keeps_paragraphs_and_normalises_newlines() -> None:
    data = b"First line\r\nsame paragraph.\r\n\r\n\r\n\r\nSecond.  \n"
    doc = parse_document(data, mime="text/plain")
    assert doc.text == "First line\nsame paragraph.\n\nSecond."
    assert doc.sections == (Section("First line\nsame paragraph.\n\nSecond.", (), None),)


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        ("Crème brûlée à la façon de Noël, très élégante.".encode("latin-1"), "Crème brûlée"),
        ("Größe für Äpfel: süß und günstig.".encode("latin-1"), "Größe für Äpfel"),
        ("Prix: 20 € — « déjà vu ».".encode("cp1252"), "20 € — « déjà vu »"),
        ("Привет, как дела? Это пример текста.".encode("cp1251"), "Привет, как дела?"),
        ("Notes in UTF-16 with ünïcödé".encode("utf-16"), "ünïcödé"),
        (b"\xef\xbb\xbfUTF-8 with a BOM: caf\xc3\xa9", "UTF-8 with a BOM: café"),
    ],
)
def test_non_utf8_text_is_decoded_right(encoded: bytes, expected: str) -> None:
    assert expected in parse_document(encoded, mime="text/plain", name="x.txt").text


def test_binary_data_named_txt_is_refused() -> None:
    with pytest.raises(ParseError, match=r"Cannot parse photo\.txt: binary data, not text"):
        parse_document(os.urandom(4096), mime="text/plain", name="photo.txt")
    png_like = b"\x89PNG\r\n\x1a\n" + bytes(range(1, 32)) * 50
    with pytest.raises(ParseError, match="binary data"):
        parse_document(png_like, mime="text/plain", name="image.txt")


def test_empty_and_blank_files() -> None:
    with pytest.raises(ParseError, match=r"Cannot parse empty\.md: empty file"):
        parse_document(b"", mime="text/markdown", name="empty.md")
    with pytest.raises(ParseError, match="no text"):
        parse_document(b" \n\t\n", mime="text/plain", name="blank.txt")
    with pytest.raises(ParseError, match="no text"):
        parse_document(b"---\ntitle: x\n---\n![only](an-image.png)\n", mime="text/markdown")
    with pytest.raises(ParseError, match="no text"):
        parse_document(b"<html><body><nav>Menu</nav></body></html>", mime="text/html")


def test_size_limit_is_checked_first() -> None:
    with pytest.raises(
        ParseError, match=r"larger than the 1,048 bytes limit \(raise it with kb sync --max-bytes"
    ):
        parse_document(b"x" * 2000, mime="text/plain", name="big.txt", max_bytes=1048)
    assert parse_document(b"x" * 2000, mime="text/plain", max_bytes=4096).text == "x" * 2000
    assert issubclass(ParseError, InvalidInput) and ParseError("a", "b").exit_code == 2


# ---------------------------------------------------------------- other formats


def test_html_in_a_declared_charset_without_main() -> None:
    page = (
        '<html><head><meta charset="iso-8859-1"><title>Caf\xe9</title></head><body>'
        '<div class="navbar"><a href="/">Home</a> <a href="/a">About</a></div>'
        "<div><h1>Caf\xe9 guide</h1><p>Cr\xe8me<br>br\xfbl\xe9e</p><h2>Step</h2>"
        "<pre>  keep   spacing</pre></div><footer>Footer text</footer></body></html>"
    ).encode("latin-1")
    doc = parse_document(page, mime="text/html", name="page.html")
    assert doc.title == "Café guide"
    assert doc.sections[0] == Section("Café guide\n\nCrème\nbrûlée", ("Café guide",))
    assert doc.sections[1].heading_path == ("Café guide", "Step")
    assert "  keep   spacing" in doc.sections[1].text
    assert "Home" not in doc.text and "Footer" not in doc.text


def test_corrupt_encrypted_and_textless_pdfs(sample_kb: Path) -> None:
    from fpdf import FPDF

    with pytest.raises(ParseError, match=r"Cannot parse a\.pdf: corrupt PDF"):
        parse_document(b"%PDF-1.7\n garbage", mime="application/pdf", name="a.pdf")
    with pytest.raises(ParseError, match="corrupt PDF"):
        parse_document(b"<html>not a pdf", mime="application/pdf", name="b.pdf")
    whole = (sample_kb / "guides" / "team-admin-guide.pdf").read_bytes()
    with pytest.raises(ParseError, match="corrupt PDF"):
        parse_document(whole[: len(whole) // 3], mime="application/pdf", name="cut.pdf")
    locked = FPDF()
    locked.add_page()
    locked.set_font("Helvetica", size=12)
    locked.cell(text="secret text")
    locked.set_encryption(owner_password="owner", user_password="user")
    with pytest.raises(ParseError, match="encrypted PDF"):
        parse_document(bytes(locked.output()), mime="application/pdf", name="locked.pdf")
    blank = FPDF()
    blank.add_page()
    with pytest.raises(ParseError, match=r"no text .*scanned PDF"):
        parse_document(bytes(blank.output()), mime="application/pdf", name="scan.pdf")


def make_docx() -> bytes:
    import docx

    document = docx.Document()
    document.add_paragraph("Handbook", style="Title")
    document.add_heading("Install", level=1)
    document.add_paragraph("Download the installer.")
    document.add_heading("On Linux", level=2)
    document.add_paragraph("Use the .deb package.")
    table = document.add_table(rows=2, cols=2)
    for row, cells in zip(table.rows, [("Port", "Use"), ("7421", "sync")], strict=True):
        for cell, text in zip(row.cells, cells, strict=True):
            cell.text = text
    document.add_heading("Backups", level=1)
    document.add_paragraph("Kept for 30 days.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def test_docx_headings_and_tables() -> None:
    doc = parse_document(make_docx(), mime=DOCX, name="handbook.docx")
    assert doc.title == "Handbook"
    assert [s.heading_path for s in doc.sections] == [
        (),
        ("Install",),
        ("Install", "On Linux"),
        ("Backups",),
    ]
    assert doc.sections[2].text == "On Linux\n\nUse the .deb package.\n\nPort | Use\n7421 | sync"
    with pytest.raises(ParseError, match=r"not a valid \.docx file \(an old binary \.doc\?\)"):
        parse_document(b"\xd0\xcf\x11\xe0" + b"\0" * 100, mime=DOCX, name="old.docx")
    with pytest.raises(ParseError, match=r"corrupt \.docx"):
        parse_document(b"PK\x03\x04 broken zip", mime=DOCX, name="broken.docx")


def test_json_strings_or_one_field() -> None:
    data = json.dumps(
        {"title": "Sync FAQ", "items": [{"q": "Port?", "a": "7421"}, {"q": "Backups?", "n": 3}]}
    ).encode()
    doc = parse_document(data, mime="application/json", name="faq.json")
    assert doc.title == "Sync FAQ"
    assert doc.text == "Sync FAQ\n\nPort?\n\n7421\n\nBackups?"
    assert parse_json(b'{"body": "Only this", "x": "not this"}', text_field="body").text == (
        "Only this"
    )
    with pytest.raises(ParseError, match=r"invalid JSON \(line 1, column 9"):
        parse_document(b'{"a": 1,', mime="application/json", name="bad.json")
    with pytest.raises(ParseError, match="no string field 'body'"):
        parse_json(b'{"text": "x"}', "rec.json", text_field="body")


# ---------------------------------------------------------------- the registry


@pytest.fixture
def clean_registry() -> Iterator[None]:
    registered_parsers()  # the built-ins are in before the snapshot
    saved = dict(parse_registry._PARSERS)
    yield
    parse_registry._PARSERS.clear()
    parse_registry._PARSERS.update(saved)


def test_unknown_types_and_text_fallback() -> None:
    with pytest.raises(ParseError, match=r"no parser for image/png") as caught:
        parse_document(b"\x89PNG", mime="image/png", name="logo.png")
    assert "text/markdown" in (caught.value.hint or "")
    assert parse_document(b"a,b\n1,2", mime="text/csv; charset=utf-8").text == "a,b\n1,2"


def test_register_parser_adds_a_format(clean_registry: None) -> None:
    def parse_csv(data: bytes, name: str) -> ParsedDocument:
        rows = data.decode().splitlines()
        sections = [Section(" | ".join(row.split(","))) for row in rows]
        return build_document(sections, title=None, mime="text/csv", name=name)

    register_parser("text/csv", parse_csv)
    assert registered_parsers()["text/csv"] is parse_csv
    assert parse_document(b"a,b\n1,2", mime="text/csv").text == "a | b\n\n1 | 2"

    def broken(data: bytes, name: str) -> ParsedDocument:
        raise ZeroDivisionError("oops")

    register_parser("application/x-broken", broken)
    with pytest.raises(ParseError, match=r"x\.bin: the application/x-broken parser failed"):
        parse_document(b"data", mime="application/x-broken", name="x.bin")
    with pytest.raises(InvalidInput, match="not a MIME type"):
        register_parser("csv", parse_csv)
