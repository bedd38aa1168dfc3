"""HTML: the page's main content as sections by heading, without the site around it.

selectolax (lexbor) parses the page; curata then drops what is not the page's content: the
``nav``, ``aside``, ``script``, ``style``, ``form`` and similar elements anywhere, ``header``
and ``footer`` outside the article, ARIA landmarks of the site (``navigation``, ``banner``,
``contentinfo``, ``complementary``), hidden elements, and elements whose class or id names
site furniture (``cookie-banner``, ``sidebar``, ``breadcrumbs``, ``newsletter``...). Of the
rest it reads ``<main>`` (or ``role="main"``, or the one ``<article>``), else the body.
``docs/rag.md`` has the benchmark against trafilatura that chose this.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from curata.parse.document import ParsedDocument, Section, build_document
from curata.parse.plain_text import decode_text

MIME = "text/html"
# fmt: off
_DROP_TAGS = frozenset({
    "script", "style", "noscript", "template", "svg", "canvas", "iframe", "object", "embed",
    "nav", "aside", "form", "button", "select", "input", "textarea", "dialog", "img", "picture",
    "video", "audio", "map", "head",
})
_SITE_ONLY_TAGS = frozenset({"header", "footer"})
_DROP_ROLES = frozenset({
    "navigation", "banner", "contentinfo", "complementary", "search", "dialog", "alertdialog",
    "menu", "menubar",
})
# fmt: on
_FURNITURE = re.compile(
    r"(?:^|[-_])(?:nav|navbar|navigation|menu|menubar|sidebar|breadcrumbs?|cookies?|consent|"
    r"gdpr|banner|footer|masthead|top-?bar|toolbar|logo|brand|share|sharing|social|related|"
    r"newsletter|subscribe|promo|advert|advertisement|ads?|sponsored|skip|skiplink|popup|"
    r"modal|meta|feedback|rating|comments?|discussion|replies|respond)(?:[-_]|$)"
)
# Lists and boxes made mostly of links are menus, link farms and "related" boxes, whatever
# their class names say (many sites' names say nothing).
_LINK_BOX_TAGS = frozenset({"ul", "ol", "div", "section", "table", "dl"})
_MAX_LINK_SHARE = 0.5
_SITE_HEADER = re.compile(r"(?:^|[-_])(?:header|site-header)(?:[-_]|$)")
# fmt: off
_BLOCK_TAGS = frozenset({
    "p", "div", "section", "article", "main", "li", "ul", "ol", "dl", "dt", "dd", "blockquote",
    "table", "thead", "tbody", "tfoot", "figure", "figcaption", "address", "details", "summary",
    "hr", "body", "center", "fieldset",
})
# fmt: on
_WHITESPACE = re.compile(r"\s+")
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_CONTENT_SELECTOR = "main, [role=main], article"
_META_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([\w-]+)""", re.IGNORECASE)


def _class_tokens(node: Any) -> list[str]:
    attrs = node.attributes
    values = f"{attrs.get('class') or ''} {attrs.get('id') or ''}".lower()
    return values.split()


def _is_furniture(node: Any, in_article: bool) -> bool:
    """Whether an element is site furniture rather than the page's content."""
    tag = node.tag
    if tag in _DROP_TAGS:
        return True
    attrs = node.attributes
    if "hidden" in attrs or attrs.get("aria-hidden") == "true":
        return True
    if (attrs.get("role") or "").lower() in _DROP_ROLES:
        return True
    tokens = _class_tokens(node)
    if not in_article and (tag in _SITE_ONLY_TAGS or any(_SITE_HEADER.search(t) for t in tokens)):
        return True
    return any(_FURNITURE.search(t) for t in tokens)


def _is_link_box(node: Any) -> bool:
    """Whether an element's text is mostly the text of two or more links."""
    links = node.css("a")
    if len(links) < 2:
        return False
    text_chars = _visible_chars(node.text(deep=True))
    link_chars = sum(_visible_chars(a.text(deep=True)) for a in links)
    return text_chars > 0 and link_chars / text_chars > _MAX_LINK_SHARE


def _visible_chars(text: str) -> int:
    # str.count runs in C: this is called on the text of large containers.
    return len(text) - sum(text.count(space) for space in " \n\t\r\xa0")


def _collapse(text: str) -> str:
    return " ".join(text.split())


@dataclass
class _Blocks:
    """Text blocks in page order: ``(kind, level, text)``; kind is heading, para, item or row."""

    blocks: list[tuple[str, int, str]] = field(default_factory=list)
    buffer: list[str] = field(default_factory=list)
    prefix: str = ""

    def flush(self) -> None:
        lines = [_collapse(line) for line in "".join(self.buffer).split("\n")]
        text = "\n".join(line for line in lines if line)
        if text:
            kind = "item" if self.prefix else "para"
            self.blocks.append((kind, 0, self.prefix + text))
            self.prefix = ""
        self.buffer = []


def _walk(root: Any, protected: set[int]) -> list[tuple[str, int, str]]:
    out = _Blocks()
    # An element holding most of the page's text is its content, whatever its class says
    # (a wrapper named "page with-sidebar").
    most_text = len(root.text(deep=True)) // 2
    # ("enter", node, in_article) and ("exit", node, _): an explicit stack, as pages nest deeper
    # than Python's recursion limit allows.
    stack: list[tuple[str, Any, bool]] = [("enter", root, False)]
    while stack:
        action, node, in_article = stack.pop()
        tag = node.tag
        if action == "exit":
            if tag in _BLOCK_TAGS:
                out.flush()
            continue
        if tag == "-text":
            # Line breaks in the source are spaces in HTML; only <br> breaks a line.
            out.buffer.append(_WHITESPACE.sub(" ", node.text(deep=False)))
            continue
        if tag.startswith("-"):
            continue
        if (
            node.mem_id not in protected
            and _is_furniture(node, in_article)
            and (tag in _DROP_TAGS or len(node.text(deep=True)) <= most_text)
        ):
            continue
        if tag in _LINK_BOX_TAGS and node.mem_id not in protected and _is_link_box(node):
            continue
        if tag in _HEADINGS:
            out.flush()
            text = _collapse(node.text(deep=True, separator=" "))
            if text:
                out.blocks.append(("heading", _HEADINGS[tag], text))
            continue
        if tag == "pre":
            out.flush()
            out.blocks.append(("para", 0, node.text(deep=True).strip("\n")))
            continue
        if tag == "tr":
            out.flush()
            cells = [_collapse(c.text(deep=True, separator=" ")) for c in node.css("td, th")]
            if any(cells):
                out.blocks.append(("row", 0, " | ".join(cells)))
            continue
        if tag == "br":
            out.buffer.append("\n")
            continue
        if tag in _BLOCK_TAGS:
            out.flush()
        if tag == "li":
            out.prefix = "- "
        in_article = (
            in_article or tag in ("article", "main") or node.attributes.get("role") == "main"
        )
        stack.append(("exit", node, in_article))
        children = list(node.iter(include_text=True))
        stack.extend(("enter", child, in_article) for child in reversed(children))
    out.flush()
    return out.blocks


def _sections(blocks: list[tuple[str, int, str]]) -> list[Section]:
    sections: list[Section] = []
    headings: list[tuple[int, str]] = []
    parts: list[str] = []
    previous = ""

    def close() -> None:
        sections.append(Section("".join(parts), tuple(text for _, text in headings)))

    for kind, level, text in blocks:
        if kind == "heading":
            close()
            parts, previous = [], ""
            while headings and headings[-1][0] >= level:
                headings.pop()
            headings.append((level, text))
        # List items and table rows stay on consecutive lines; other blocks get a blank line.
        tight = kind in ("item", "row") and kind == previous
        parts.append(("\n" if tight else "\n\n") if parts else "")
        parts.append(text)
        previous = kind
    close()
    return sections


def _decode(data: bytes, name: str) -> str:
    declared = _META_CHARSET.search(data[:4096])
    if declared:
        try:
            return data.decode(declared.group(1).decode("ascii"))
        except (LookupError, UnicodeDecodeError):
            pass
    return decode_text(data, name=name)


def _content_root(tree: Any) -> Any:
    """``<main>`` (or ``role=main``), else the only ``<article>``, else the body."""
    mains = tree.css("main, [role=main]")
    if mains:
        return max(mains, key=lambda n: len(n.text(deep=True)))
    articles = tree.css("article")
    if len(articles) == 1:
        return articles[0]
    return tree.body or tree.root


def parse_html(data: bytes, name: str = "") -> ParsedDocument:
    """An HTML page's main content, as sections by heading (h1-h6).

    Raises:
        ParseError: binary data, or no text once the site's furniture is dropped.
    """
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(_decode(data, name))
    root = _content_root(tree)
    # Never drop what holds the content itself (a wrapper whose class says "with-sidebar").
    protected = {n.mem_id for n in tree.css(_CONTENT_SELECTOR)} | {root.mem_id}
    parent = root.parent
    while parent is not None:
        protected.add(parent.mem_id)
        parent = parent.parent
    blocks = _walk(root, protected)
    headings = [text for kind, level, text in blocks if kind == "heading" and level == 1]
    title_node = tree.css_first("title")
    title = headings[0] if headings else (title_node.text() if title_node else None)
    return build_document(_sections(blocks), title=title, mime=MIME, name=name)
