"""What PII detection produces and what finds it: spans, patterns and recognizers.

A recognizer proposes candidate spans with a base score; the engine (``detect.py``) raises the
score when context words precede a candidate, filters by threshold and resolves overlaps.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

# detect_pii_batch joins texts with this character so that one regex pass covers many texts.
# No built-in pattern can match it, so no match crosses from one text into the next.
SEPARATOR = "\x00"

# Presidio's defaults, so that scores mean the same thing to people who know Presidio.
CONTEXT_BOOST = 0.35
CONTEXT_WORDS = 5
# Characters looked at before a match to find its CONTEXT_WORDS previous words.
CONTEXT_LOOKBACK = 100

NER_ENTITIES = ("PERSON", "LOCATION", "ORGANIZATION")


@dataclass(frozen=True)
class PiiSpan:
    """One piece of PII found in a text: its kind, where it is, how sure the detector is.

    The value itself is not kept, so results can be stored in audits; slice the text with
    ``text[span.start:span.end]`` where the value is needed.

    Attributes:
        entity: the kind of PII, e.g. ``EMAIL_ADDRESS``.
        start: offset of the first character in the text.
        end: offset after the last character.
        score: confidence in [0, 1], after context words raised it.
    """

    entity: str
    start: int
    end: int
    score: float

    def to_dict(self) -> dict[str, object]:
        """The span as a JSON-ready dict."""
        return {"entity": self.entity, "start": self.start, "end": self.end, "score": self.score}


@dataclass(frozen=True)
class Candidate:
    """A span a recognizer proposes, before context and threshold are applied."""

    start: int
    end: int
    score: float


@dataclass(frozen=True)
class Pattern:
    """A regular expression and the base score of what it matches.

    Attributes:
        regex: the expression; group 0 is the span (or the ``value`` group when it has one).
        score: base score of a match, before context words raise it.
        name: a label for error messages and documentation.
        anchor: for speed, an expression that occurs in every match and is much cheaper to
            find than the pattern (``@`` for e-mail addresses). The pattern then runs only in
            windows around the anchors: ``reach`` characters before and after each. The
            windows must hold any match entirely, plus the characters its lookarounds read.
        reach: (before, after) for ``anchor``.
    """

    regex: str
    score: float
    name: str = ""
    anchor: str | None = None
    reach: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class CompiledPattern:
    """A :class:`Pattern` with its expressions compiled."""

    regex: re.Pattern[str]
    score: float
    anchor: re.Pattern[str] | None
    reach: tuple[int, int]

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        """The pattern's matches in ``text``, as ``regex.finditer(text)`` would find them."""
        if self.anchor is None:
            yield from self.regex.finditer(text)
            return
        before, after = self.reach
        window: list[int] = []  # [start, end] of the window being grown
        for anchor in self.anchor.finditer(text):
            start, end = max(anchor.start() - before, 0), min(anchor.end() + after, len(text))
            if window and start <= window[1]:
                window[1] = max(window[1], end)
                continue
            if window:
                yield from self.regex.finditer(text, window[0], window[1])
            window = [start, end]
        if window:
            yield from self.regex.finditer(text, window[0], window[1])


class Recognizer:
    """Finds one kind of PII with regular expressions, an optional validator and context words.

    Subclasses override :meth:`candidates` when a match needs more than a validator (trimming,
    a score that depends on the format, a search around an anchor).

    Args:
        entity: the entity name reported, e.g. ``EMPLOYEE_ID``.
        patterns: the expressions and their base scores.
        context: words that raise the score when they occur among the words before a match.
        validator: a check of the matched text; a match it rejects is dropped.
        requires_context: drop matches that no context word precedes (for shapes too common
            to report on their own, such as 40-character base64 strings).
        separator_safe: the patterns cannot match across :data:`SEPARATOR`, so the engine may
            run them over many texts joined together. Leave False for user patterns.
        flags: ``re`` flags for every pattern.
    """

    def __init__(
        self,
        entity: str,
        patterns: tuple[Pattern, ...],
        *,
        context: tuple[str, ...] = (),
        validator: Callable[[str], bool] | None = None,
        requires_context: bool = False,
        separator_safe: bool = False,
        flags: int = 0,
    ) -> None:
        self.entity = entity
        self.patterns = patterns
        self.context = context
        self.validator = validator
        self.requires_context = requires_context
        self.separator_safe = separator_safe
        self._compiled = tuple(
            CompiledPattern(
                re.compile(p.regex, flags),
                p.score,
                re.compile(p.anchor, flags) if p.anchor else None,
                p.reach,
            )
            for p in patterns
        )
        self.context_regex = context_regex(context)

    def candidates(self, text: str) -> Iterator[Candidate]:
        """Spans of ``text`` this recognizer proposes, with their base scores."""
        for pattern in self._compiled:
            value_group = pattern.regex.groupindex.get("value", 0)
            for match in pattern.finditer(text):
                start, end = match.span(value_group)
                if start == end:
                    continue
                if self.validator is not None and not self.validator(text[start:end]):
                    continue
                yield Candidate(start, end, pattern.score)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.entity!r})"


def context_regex(words: tuple[str, ...]) -> re.Pattern[str] | None:
    """A regex finding any of ``words`` at the start of a word, in lower-cased text.

    Words match as prefixes ("phone" matches "phones") and ``_`` counts as a space, so
    ``aws_secret_access_key`` holds the context words "aws", "secret" and "access".
    """
    cleaned = sorted({w.strip().lower().replace("_", " ") for w in words if w.strip()})
    if not cleaned:
        return None
    return re.compile(r"\b(?:" + "|".join(re.escape(w) for w in cleaned) + ")")


def lowered(text: str) -> str | None:
    """``text.lower()`` when it keeps every character at its offset, else None.

    Lower-casing changes the length only for a few characters (``İ`` becomes two); callers
    then fall back to case-insensitive expressions on the original text.
    """
    low = text.lower()
    return low if len(low) == len(text) else None
