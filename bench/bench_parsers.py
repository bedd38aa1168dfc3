"""Document parsers side by side: PDF (pypdfium2 vs pypdf), HTML (selectolax vs trafilatura).

Both pairs run on the sample knowledge base (src/curata/samples/kb/) and on synthetic larger
documents made here from a seeded vocabulary, so the true text of every document is known:

- **PDF**: the sample PDFs (their texts are in tests/cases/make_sample_pdfs.py) and synthetic
  50-page PDFs written with fpdf2. Quality is the character-level similarity of each page's
  extracted text to the text written on it (difflib ratio after collapsing whitespace),
  averaged over pages. ``pypdfium2`` is curata's parser (``curata.parse.pdf``); ``pypdf`` is
  ``PdfReader(...).pages[i].extract_text()``.
- **HTML**: the sample pages and synthetic pages in three layouts: HTML5 landmarks (``header``,
  ``nav``, ``main``, ``aside``, ``footer``), "div soup" whose class names say what the parts are
  (``sidebar``, ``cookie-consent``), and pages with meaningless class names where only the
  structure tells content from navigation. Quality is the share of the main content's sentences
  found in the output (recall), the share of boilerplate strings (menus, footers, cookie
  banners, related links) found in it (leak), and the share of the content's headings that
  come out as section headings. ``selectolax`` is curata's parser (``curata.parse.html_page``);
  ``trafilatura`` is ``trafilatura.extract(..., output_format="markdown")`` with its Markdown
  cut into sections by curata's Markdown parser.

Speed is documents per second and input MB per second over the whole set (best of a few
rounds). Run it from the repository root::

    python bench/bench_parsers.py            # full size (about a minute)
    python bench/bench_parsers.py --quick    # small sizes: checks the script works
"""

from __future__ import annotations

import difflib
import io
import random
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import harness

from curata.parse import ParsedDocument, ParseError
from curata.parse.html_page import parse_html
from curata.parse.markdown import parse_markdown
from curata.parse.pdf import parse_pdf

ROOT = Path(__file__).resolve().parents[1]
KB = ROOT / "src" / "curata" / "samples" / "kb"
sys.path.insert(0, str(ROOT / "tests" / "cases"))
import make_sample_pdfs  # noqa: E402 - needs tests/cases on the path

# fmt: off
_WORDS = (
    "sync", "note", "notebook", "attachment", "server", "backup", "device", "account", "search",
    "index", "editor", "table", "export", "import", "reminder", "widget", "offline", "version",
    "history", "plan", "seat", "admin", "member", "token", "request", "limit", "folder",
    "archive", "page", "heading", "paragraph", "quickly", "usually", "before", "after", "while",
    "every", "another", "several", "shared", "private", "daily", "weekly", "update", "restore",
    "verify", "install", "open", "close", "select", "choose", "keep", "remove", "add", "change",
    "check", "send", "receive", "stay", "appear", "work", "run",
)
_LINK_WORDS = (
    "home", "pricing", "blog", "careers", "about", "press", "partners", "docs", "community",
    "events", "webinars", "store", "gallery", "podcast", "newsletter", "legal", "imprint",
    "privacy", "terms", "cookies", "status", "jobs", "investors",
)
# fmt: on
_SPACE = re.compile(r"\s+")


def sentence(rng: random.Random) -> str:
    """A sentence of 9-18 vocabulary words: unique enough to be searched for."""
    words = [rng.choice(_WORDS) for _ in range(rng.randint(9, 18))]
    return " ".join(words).capitalize() + "."


def normalise(text: str) -> str:
    return _SPACE.sub(" ", text).strip().lower()


# ---------------------------------------------------------------- HTML


@dataclass
class HtmlCase:
    name: str
    html: str
    sentences: list[str]
    boilerplate: list[str]
    headings: list[str]


def _links(rng: random.Random, n: int, words: int) -> list[str]:
    """Link texts from their own vocabulary, so no content sentence contains one by chance."""
    return [" ".join(rng.choice(_LINK_WORDS) for _ in range(words)).title() for _ in range(n)]


def synthetic_page(rng: random.Random, layout: str, n_sections: int) -> HtmlCase:
    """A page whose content and boilerplate are known, in one of three layouts.

    Content paragraphs sometimes hold a link (so link-dense boxes cannot just be dropped
    blindly), and every page has a reader comments block, counted as boilerplate.
    """
    headings, sentences, body = [], [], []
    for _ in range(n_sections):
        heading = " ".join(rng.choice(_WORDS) for _ in range(3)).capitalize()
        headings.append(heading)
        body.append(f"<h2>{heading}</h2>")
        for _ in range(rng.randint(2, 4)):
            para = [sentence(rng) for _ in range(rng.randint(2, 5))]
            sentences.extend(para)
            html_para = " ".join(para)
            if rng.random() < 0.4:
                words = para[0].split()
                linked = " ".join(words[2:5])
                html_para = html_para.replace(
                    linked, f'<a href="/kb/{rng.randint(1, 999)}">{linked}</a>', 1
                )
            body.append(f"<p>{html_para}</p>")
        if rng.random() < 0.3:
            items = [sentence(rng) for _ in range(3)]
            sentences.extend(items)
            body.append("<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>")
    menu, related, footer = _links(rng, 8, 2), _links(rng, 6, 5), _links(rng, 10, 2)
    cookie = "We use cookies to improve your experience and to measure traffic on this site."
    copyright_ = "Copyright 2026 Example Publishing Ltd. All rights reserved."
    comments = [f"{rng.choice(_LINK_WORDS).title()} wrote: {_comment(rng)}" for _ in range(3)]
    boilerplate = [*menu, *related, *footer, cookie, copyright_, *comments]
    comment_html = "".join(f"<p>{c}</p>" for c in comments)

    def ul(items: list[str], cls: str = "") -> str:
        lis = "".join(f'<li><a href="/{i.lower().replace(" ", "-")}">{i}</a></li>' for i in items)
        return f'<ul class="{cls}">{lis}</ul>'

    title = "<h1>" + " ".join(rng.choice(_WORDS) for _ in range(4)).title() + "</h1>"
    content = title + "\n".join(body)
    if layout == "semantic":
        page = (
            f"<header><nav>{ul(menu)}</nav></header><main><article>{content}</article>"
            f'<section class="comments"><h2>Comments</h2>{comment_html}</section>'
            f"<aside><h3>Related</h3>{ul(related)}</aside></main>"
            f"<footer>{ul(footer)}<p>{copyright_}</p></footer>"
            f'<div class="cookie-banner"><p>{cookie}</p></div>'
        )
    elif layout == "named-divs":
        page = (
            f'<div id="cookie-consent"><span>{cookie}</span></div>'
            f'<div id="top-bar">{ul(menu, "menu")}</div><div class="container">'
            f'<div class="post-body">{content}</div><div id="comments">{comment_html}</div>'
            f'<div id="sidebar">{ul(related)}</div></div>'
            f'<div class="footer">{ul(footer)}<p>{copyright_}</p></div>'
        )
    else:  # no hints: class names carry no meaning
        page = (
            f'<div class="c1">{ul(menu)}</div><div class="c2"><div class="c3">{content}</div>'
            f'<div class="c7">{comment_html}</div><div class="c4">{ul(related)}</div></div>'
            f'<div class="c5">{ul(footer)}<p>{copyright_}</p></div>'
            f'<div class="c6"><p>{cookie} <a href="/privacy">Read more</a></p></div>'
        )
    html = f"<!DOCTYPE html><html><head><title>Page</title></head><body>{page}</body></html>"
    return HtmlCase(f"synthetic-{layout}", html, sentences, boilerplate, headings)


def _comment(rng: random.Random) -> str:
    words = [rng.choice(_LINK_WORDS) for _ in range(rng.randint(6, 12))]
    return " ".join(words).capitalize() + "!"


def sample_page(path: Path) -> HtmlCase:
    """A sample page; its truth read with lxml: the article (or .post-body) vs the rest."""
    from lxml import html as lxml_html

    text = path.read_text(encoding="utf-8")
    tree = lxml_html.fromstring(text)
    content = (tree.xpath("//article") or tree.xpath("//*[@class='post-body']"))[0]
    for meta in content.xpath(".//*[contains(@class, 'article-meta')]"):
        meta.getparent().remove(meta)
    content_text = normalise(content.text_content())
    sentences = []
    for block in content.xpath(".//p|.//li|.//pre"):
        block_text = normalise(block.text_content())
        sentences += [s for s in re.split(r"(?<=[.!?])\s+", block_text) if len(s.split()) >= 4]
    headings = [normalise(h.text_content()) for h in content.xpath(".//h1|.//h2|.//h3")]
    boilerplate = []
    for node in tree.xpath("//body//text()[not(ancestor::script) and not(ancestor::style)]"):
        phrase = normalise(str(node))
        if len(phrase.split()) >= 2 and phrase not in content_text:
            boilerplate.append(phrase)
    return HtmlCase(f"sample/{path.name}", text, sentences, boilerplate, headings)


def trafilatura_parse(data: bytes, name: str) -> ParsedDocument:
    """trafilatura's main text as Markdown, cut into sections by curata's Markdown parser."""
    import trafilatura

    markdown = trafilatura.extract(
        data.decode("utf-8"),
        output_format="markdown",
        include_tables=True,
        include_formatting=True,
        include_links=False,
        include_images=False,
        include_comments=False,
    )
    return parse_markdown((markdown or " ").encode("utf-8"), name)


def or_empty(
    parse: Callable[[bytes, str], ParsedDocument],
) -> Callable[[bytes, str], ParsedDocument]:
    """``parse``, returning an empty document where it finds no text (scored as nothing found)."""

    def run(data: bytes, name: str) -> ParsedDocument:
        try:
            return parse(data, name)
        except ParseError:
            return ParsedDocument("", (), None, "text/html")

    return run


def html_quality(doc: ParsedDocument, case: HtmlCase) -> tuple[float, float, float, float]:
    text = normalise(doc.text)
    found = sum(1 for s in case.sentences if normalise(s) in text)
    leaked = sum(1 for b in case.boilerplate if normalise(b) in text)
    section_headings = {normalise(h) for s in doc.sections for h in s.heading_path}
    kept = sum(1 for h in case.headings if normalise(h) in section_headings)
    return (
        found / max(len(case.sentences), 1),
        leaked / max(len(case.boilerplate), 1),
        kept / max(len(case.headings), 1),
        0.0 if text else 1.0,
    )


# ---------------------------------------------------------------- PDF


@dataclass
class PdfCase:
    name: str
    data: bytes
    pages: list[str]


_UNICODE_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
_UNICODE_EXTRAS = (
    "Prix 20 € « déjà vu », Straße, naïve façade, Привет, 5\u201310 \u201cquoted\u201d days."
)


def synthetic_pdf(rng: random.Random, n_pages: int) -> PdfCase:
    """A PDF of ``n_pages``: a heading and paragraphs per page, every fifth page in two columns.

    With the DejaVu font installed, pages also carry non-Latin-1 text (euro sign, curly
    quotes, Cyrillic); without it, fpdf2's core font allows Latin-1 only.
    """
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    unicode_font = _UNICODE_FONT.is_file()
    if unicode_font:
        pdf.add_font("DejaVu", fname=str(_UNICODE_FONT))
    font = "DejaVu" if unicode_font else "Helvetica"
    truths = []
    for number in range(n_pages):
        pdf.add_page()
        pdf.set_font(font, size=11)
        heading = f"Chapter {number + 1}: " + " ".join(rng.choice(_WORDS) for _ in range(3))
        pdf.multi_cell(0, 8, heading, new_x="LMARGIN", new_y="NEXT")
        paragraphs = [" ".join(sentence(rng) for _ in range(5)) for _ in range(4)]
        if unicode_font:
            paragraphs[0] += " " + _UNICODE_EXTRAS
        if number % 5 == 4:  # two columns: the left one is read first
            top = pdf.get_y() + 2
            pdf.set_xy(10, top)
            pdf.multi_cell(90, 5, " ".join(paragraphs[:2]))
            pdf.set_xy(110, top)
            pdf.multi_cell(90, 5, " ".join(paragraphs[2:]))
        else:
            for paragraph in paragraphs:
                pdf.multi_cell(0, 5, paragraph, new_x="LMARGIN", new_y="NEXT")
                pdf.ln(2)
        truths.append("\n".join([heading, *paragraphs]))
    return PdfCase(f"synthetic-{n_pages}p", bytes(pdf.output()), truths)


def pypdf_parse(data: bytes) -> list[str]:
    from pypdf import PdfReader

    return [page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages]


def pdfium_parse(data: bytes) -> list[str]:
    doc = parse_pdf(data, "bench.pdf")
    by_page = {s.page: s.text for s in doc.sections}
    return [by_page.get(n, "") for n in range(1, max(by_page) + 1)]


def pdf_similarity(extracted: list[str], truth: list[str]) -> float:
    ratios = []
    for number, expected in enumerate(truth):
        got = extracted[number] if number < len(extracted) else ""
        matcher = difflib.SequenceMatcher(None, normalise(got), normalise(expected), False)
        ratios.append(matcher.ratio())
    return sum(ratios) / len(ratios)


# ---------------------------------------------------------------- running


def best_seconds(fn: Callable[[], object], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        began = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - began)
    return best


def speed_row(name: str, n_docs: int, n_bytes: int, seconds: float) -> tuple[str, float, float]:
    return name, n_docs / seconds, n_bytes / 2**20 / seconds


def run_pdf(rng: random.Random, quick: bool, rounds: int) -> list[str]:
    cases = [
        PdfCase(
            doc_id,
            (KB / doc_id).read_bytes(),
            [make_sample_pdfs.page_text(doc_id, n + 1) for n in range(len(pages))],
        )
        for doc_id, (_, pages) in make_sample_pdfs.PDFS.items()
    ]
    cases += [synthetic_pdf(rng, 5 if quick else 50) for _ in range(1 if quick else 3)]
    n_bytes = sum(len(c.data) for c in cases)
    n_pages = sum(len(c.pages) for c in cases)
    lines = [f"PDF: {len(cases)} documents, {n_pages} pages, {n_bytes / 2**20:.2f} MB"]
    results = {}
    for name, parse in (("pypdfium2", pdfium_parse), ("pypdf", pypdf_parse)):
        seconds = best_seconds(lambda parse=parse: [parse(c.data) for c in cases], rounds)
        sample = [pdf_similarity(parse(c.data), c.pages) for c in cases if "/" in c.name]
        synthetic = [pdf_similarity(parse(c.data), c.pages) for c in cases if "/" not in c.name]
        results[name] = (seconds, sum(sample) / len(sample), sum(synthetic) / len(synthetic))
    header = (
        f"{'parser':<12}{'docs/s':>9}{'pages/s':>9}{'MB/s':>8}{'sim sample':>12}{'sim synth':>11}"
    )
    lines.append(header)
    for name, (seconds, sim_sample, sim_synth) in results.items():
        lines.append(
            f"{name:<12}{len(cases) / seconds:>9.1f}{n_pages / seconds:>9.0f}"
            f"{n_bytes / 2**20 / seconds:>8.2f}{sim_sample:>12.4f}{sim_synth:>11.4f}"
        )
    ratio = results["pypdf"][0] / results["pypdfium2"][0]
    lines.append(f"speed: pypdfium2 / pypdf = {ratio:.1f}x faster")
    return lines


def run_html(rng: random.Random, quick: bool, rounds: int) -> list[str]:
    cases = [sample_page(p) for p in sorted(KB.rglob("*.html"))]
    per_layout = 2 if quick else 10
    for layout in ("semantic", "named-divs", "no-hints"):
        for i in range(per_layout):
            cases.append(synthetic_page(rng, layout, 3 if quick else (8 if i % 5 else 80)))
    datas = [c.html.encode("utf-8") for c in cases]
    n_bytes = sum(len(d) for d in datas)
    lines = [f"HTML: {len(cases)} pages, {n_bytes / 2**20:.2f} MB"]
    parsers = {"selectolax": or_empty(parse_html), "trafilatura": or_empty(trafilatura_parse)}
    seconds = {
        name: best_seconds(lambda p=parse: [p(d, "bench.html") for d in datas], rounds)
        for name, parse in parsers.items()
    }
    header = f"{'parser':<12}{'set':<22}{'recall':>8}{'leak':>8}{'headings':>10}{'empty':>8}"
    lines.append(f"{'parser':<12}{'docs/s':>9}{'MB/s':>8}")
    for name in parsers:
        docs_s, mb_s = len(cases) / seconds[name], n_bytes / 2**20 / seconds[name]
        lines.append(f"{name:<12}{docs_s:>9.1f}{mb_s:>8.2f}")
    ratio = seconds["trafilatura"] / seconds["selectolax"]
    lines.append(f"speed: selectolax / trafilatura = {ratio:.1f}x faster")
    lines.append(header)
    groups = ["sample", "synthetic-semantic", "synthetic-named-divs", "synthetic-no-hints"]
    for name, parse in parsers.items():
        for group in groups:
            scores = [
                html_quality(parse(d, "bench.html"), c)
                for c, d in zip(cases, datas, strict=True)
                if c.name.startswith(group)
            ]
            recall, leak, heads, empty = (sum(s[i] for s in scores) / len(scores) for i in range(4))
            lines.append(
                f"{name:<12}{group:<22}{recall:>8.1%}{leak:>8.1%}{heads:>10.1%}{empty:>8.1%}"
            )
    return lines


def main() -> None:
    args = harness.parse_args(__doc__)
    harness.start("document parsers: pypdfium2 vs pypdf, selectolax vs trafilatura", args)
    libraries = ("pypdfium2", "pypdf", "selectolax", "trafilatura", "lxml", "fpdf2")
    print("# " + ", ".join(f"{name} {version(name)}" for name in libraries))
    rng = random.Random(args.seed)
    rounds = 1 if args.quick else 3
    for line in [*run_pdf(rng, args.quick, rounds), "", *run_html(rng, args.quick, rounds)]:
        print(line)


if __name__ == "__main__":
    main()
