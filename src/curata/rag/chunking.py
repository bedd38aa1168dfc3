"""Splitting a parsed document into chunks sized in the embedding model's tokens.

Chunks never cross a section (so each has one heading path and page), are filled with whole
paragraphs where they fit, then whole sentences, and only cut inside a sentence when one
sentence alone is longer than a chunk. Consecutive chunks of a section share up to
``overlap`` tokens of whole sentences, so a fact cut at a boundary is still found whole.
A chunk's text starts with its heading path, which both search and the embedder see.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from curata.errors import InvalidInput

HEADING_SEPARATOR = " > "
_PARAGRAPHS = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")


@dataclass(frozen=True)
class Chunk:
    """One piece of a document."""

    text: str
    heading: str
    page: int | None
    n_tokens: int


@dataclass(frozen=True)
class ChunkSettings:
    """How big chunks are, in tokens of the embedding model."""

    size: int = 200
    overlap: int = 30

    def __post_init__(self) -> None:
        if self.size < 16:
            raise InvalidInput(f"Chunk size {self.size} is too small; use at least 16 tokens.")
        if not 0 <= self.overlap < self.size // 2:
            raise InvalidInput(
                f"Chunk overlap {self.overlap} must be at least 0 and under half the chunk "
                f"size ({self.size})."
            )


@dataclass(frozen=True)
class _Unit:
    text: str
    tokens: int
    joiner: str  # what separates it from the unit before: a blank line or a space


Counter = Callable[[Sequence[str]], list[int]]
Splitter = Callable[[str, int], list[str]]


def chunk_sections(
    sections: Sequence[tuple[str, Sequence[str], int | None]],
    settings: ChunkSettings,
    count_tokens: Counter,
    split_tokens: Splitter,
) -> list[Chunk]:
    """Chunk a document given as ``(text, heading_path, page)`` sections, in order.

    Args:
        sections: the document's sections.
        settings: chunk size and overlap in tokens.
        count_tokens: the model's token counter (batch).
        split_tokens: cuts a text into pieces of at most N tokens.

    >>> from curata.rag.embedders import HashEmbedder
    >>> e = HashEmbedder(8)
    >>> [c.text for c in chunk_sections([("One. Two.", ["Intro"], None)], ChunkSettings(),
    ...                                 e.count_tokens, e.split_tokens)]
    ['Intro\\n\\nOne. Two.']
    """
    chunks: list[Chunk] = []
    for raw, path, page in sections:
        heading = HEADING_SEPARATOR.join(p for p in path if p)
        text = _without_heading_line(raw, path)
        prefix = f"{heading}\n\n" if heading else ""
        budget = settings.size - (count_tokens([prefix])[0] if prefix else 0)
        budget = max(budget, settings.size // 2)
        units = _units(text, budget, count_tokens, split_tokens)
        for body in _pack(units, budget, settings.overlap):
            chunks.append(Chunk(prefix + body, heading, page, 0))
    counts = count_tokens([c.text for c in chunks]) if chunks else []
    return [Chunk(c.text, c.heading, c.page, n) for c, n in zip(chunks, counts, strict=True)]


def _without_heading_line(text: str, path: Sequence[str]) -> str:
    """The section's text without its first line when that line is its own heading (the
    chunk's heading prefix says it already)."""
    if not path:
        return text
    first, _, rest = text.lstrip().partition("\n")
    return rest if first.strip().lstrip("#").strip() == path[-1].strip() else text


def _units(text: str, budget: int, count: Counter, split: Splitter) -> list[_Unit]:
    """Paragraphs that fit the budget, else their sentences, else token-sized pieces."""
    paragraphs = [p.strip() for p in _PARAGRAPHS.split(text) if p.strip()]
    units: list[_Unit] = []
    for paragraph, tokens in zip(paragraphs, count(paragraphs) if paragraphs else [], strict=True):
        if tokens <= budget:
            units.append(_Unit(paragraph, tokens, "\n\n"))
            continue
        sentences = [s for s in _SENTENCE_END.split(paragraph) if s.strip()]
        joiner = "\n\n"
        for sentence, n in zip(sentences, count(sentences), strict=True):
            pieces = [sentence] if n <= budget else split(sentence, budget)
            piece_counts = [n] if n <= budget else count(pieces)
            for piece, m in zip(pieces, piece_counts, strict=True):
                units.append(_Unit(piece, m, joiner))
                joiner = " "
    return units


def _pack(units: list[_Unit], budget: int, overlap: int) -> list[str]:
    """Greedy packing of units into chunks of at most ``budget`` tokens, with overlap."""
    out: list[str] = []
    current: list[_Unit] = []
    used = 0
    for unit in units:
        if current and used + unit.tokens > budget:
            out.append(_join(current))
            current = _tail(current, overlap, budget - unit.tokens)
            used = sum(u.tokens for u in current)
        current.append(unit)
        used += unit.tokens
    if current:
        out.append(_join(current))
    return out


def _tail(units: list[_Unit], overlap: int, room: int) -> list[_Unit]:
    """The last whole units of a chunk, at most ``overlap`` tokens, that leave ``room``."""
    kept: list[_Unit] = []
    total = 0
    for unit in reversed(units):
        if total + unit.tokens > min(overlap, room):
            break
        kept.insert(0, unit)
        total += unit.tokens
    return kept


def _join(units: list[_Unit]) -> str:
    text = units[0].text
    for unit in units[1:]:
        text += unit.joiner + unit.text
    return text
