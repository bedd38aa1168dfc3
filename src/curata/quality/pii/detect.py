"""Find PII in texts: run the recognizers, weigh context, apply the threshold, resolve overlaps.

Speed comes from doing little per text: texts are joined (with :data:`SEPARATOR`) into chunks
of about a megabyte and each built-in expression runs once per chunk, so a batch of short chat
messages costs about what one long document does. Candidates are few; validating them in
Python (checksums, libphonenumber) is cheap next to scanning the text.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

from curata.errors import InvalidInput
from curata.quality.pii import credentials, recognizers
from curata.quality.pii.model import (
    CONTEXT_BOOST,
    CONTEXT_LOOKBACK,
    CONTEXT_WORDS,
    NER_ENTITIES,
    SEPARATOR,
    PiiSpan,
    Recognizer,
)
from curata.quality.pii.phone import DEFAULT_PHONE_REGIONS, PhoneRecognizer

CHUNK_CHARS = 1 << 20
_WORD = re.compile(r"\S+")


@lru_cache(maxsize=8)
def builtin_recognizers(
    phone_regions: tuple[str, ...] = DEFAULT_PHONE_REGIONS,
) -> tuple[Recognizer, ...]:
    """The built-in recognizers, built once per set of phone regions (they are read-only)."""
    return (
        recognizers.EMAIL,
        PhoneRecognizer(phone_regions),
        recognizers.CardRecognizer(),
        recognizers.IbanRecognizer(),
        recognizers.SsnRecognizer(),
        recognizers.IPV4,
        recognizers.IPV6,
        recognizers.MAC,
        recognizers.URL,
        recognizers.CRYPTO,
        credentials.AWS_ACCESS_KEY,
        credentials.AWS_SECRET_KEY,
        credentials.PrivateKeyRecognizer(),
        credentials.JWT,
        credentials.GenericSecretRecognizer(),
    )


_PATTERN_ENTITIES = (
    "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS",
    "MAC_ADDRESS", "URL", "CRYPTO", "AWS_ACCESS_KEY", "AWS_SECRET_KEY", "PRIVATE_KEY", "JWT",
    "GENERIC_SECRET",
)  # fmt: skip


def supported_entities() -> list[str]:
    """Every entity the built-in recognizers and the NER option can report.

    >>> "EMAIL_ADDRESS" in supported_entities()
    True
    """
    return [*_PATTERN_ENTITIES, *NER_ENTITIES]


def detect_pii(
    text: str,
    entities: Sequence[str] | None = None,
    *,
    threshold: float = 0.5,
    ner: str | None = None,
    recognizers: Sequence[Recognizer] | None = None,
    phone_regions: Sequence[str] = DEFAULT_PHONE_REGIONS,
) -> list[PiiSpan]:
    """Find PII in one text.

    Args:
        text: the text to search.
        entities: the entity names to report; None for every built-in one (and those of
            ``recognizers``). PERSON, LOCATION and ORGANIZATION need ``ner``; without it they
            are not detected.
        threshold: the lowest score reported, after context words raised scores.
        ner: ``"spacy:MODEL"`` (a package name or a model folder) to find names, places and
            organisations with that spaCy model.
        recognizers: more recognizers (e.g. from :func:`load_recognizers`), run alongside the
            built-in ones.
        phone_regions: countries whose national phone formats are recognized; numbers in
            international form (``+44 …``) are recognized for every country.

    Returns:
        The spans found, ordered by start, none overlapping another.

    Raises:
        InvalidInput: an unknown entity name, a threshold outside [0, 1], a bad ``ner``.
        MissingDependency: ``ner`` names spaCy or a model that is not installed.

    >>> [(s.entity, s.start, s.end) for s in detect_pii("mail ada@example.com")]
    [('EMAIL_ADDRESS', 5, 20)]
    """
    return detect_pii_batch(
        [text],
        entities,
        threshold=threshold,
        ner=ner,
        recognizers=recognizers,
        phone_regions=phone_regions,
    )[0]


def detect_pii_batch(
    texts: Sequence[str | None],
    entities: Sequence[str] | None = None,
    *,
    threshold: float = 0.5,
    ner: str | None = None,
    recognizers: Sequence[Recognizer] | None = None,
    phone_regions: Sequence[str] = DEFAULT_PHONE_REGIONS,
) -> list[list[PiiSpan]]:
    """Find PII in many texts at once; the same result as :func:`detect_pii` on each.

    Args:
        texts: the texts; None (a null cell) gives an empty list.
        entities: as for :func:`detect_pii`.
        threshold: as for :func:`detect_pii`.
        ner: as for :func:`detect_pii`.
        recognizers: as for :func:`detect_pii`.
        phone_regions: as for :func:`detect_pii`.

    Returns:
        One list of spans per text, in the order of ``texts``.

    Raises:
        InvalidInput: as for :func:`detect_pii`, or a text that is not a string.
        MissingDependency: as for :func:`detect_pii`.
    """
    if not 0.0 <= threshold <= 1.0:
        raise InvalidInput(f"threshold must be between 0 and 1, got {threshold}.")
    extra = tuple(recognizers or ())
    wanted = _wanted_entities(entities, extra, ner)
    active = [r for r in (*builtin_recognizers(tuple(phone_regions)), *extra) if r.entity in wanted]
    joined = [r for r in active if r.separator_safe]
    alone = [r for r in active if not r.separator_safe]

    results: list[list[PiiSpan]] = [[] for _ in texts]
    present = [(i, t) for i, t in enumerate(texts) if t]
    for i, text in present:
        if not isinstance(text, str):
            raise InvalidInput(f"texts[{i}] is a {type(text).__name__}, not a string.")
    for chunk in _chunks(present):
        _scan_joined(chunk, joined, threshold, results)
    if alone:
        for i, text in present:
            results[i].extend(_scan(text, [0], alone, threshold))
    guesses: list[list[PiiSpan]] = [[] for _ in texts]
    if ner is not None and wanted & set(NER_ENTITIES):
        from curata.quality.pii.ner import ner_spans

        named = ner_spans([t for _, t in present], ner, wanted)
        for (i, _), spans in zip(present, named, strict=True):
            guesses[i].extend(s for s in spans if s.score >= threshold)
    return [resolve_overlaps(s, g) for s, g in zip(results, guesses, strict=True)]


def _wanted_entities(
    entities: Sequence[str] | None, extra: tuple[Recognizer, ...], ner: str | None
) -> frozenset[str]:
    """The entity names to report, checked against what can be detected."""
    custom = {r.entity for r in extra}
    if ner is not None:
        from curata.quality.pii.ner import parse_ner

        parse_ner(ner)
    if entities is None:
        return frozenset({*_PATTERN_ENTITIES, *custom, *(NER_ENTITIES if ner else ())})
    if isinstance(entities, str):
        entities = [entities]
    known = {*supported_entities(), *custom}
    unknown = sorted(set(entities) - known)
    if unknown:
        raise InvalidInput(
            f"Unknown PII entit{'y' if len(unknown) == 1 else 'ies'}: {', '.join(unknown)}.",
            hint=f"Known entities: {', '.join(sorted(known))}.",
        )
    return frozenset(entities)


def _chunks(texts: list[tuple[int, str]]) -> Iterable[list[tuple[int, str]]]:
    """Consecutive groups of texts of about CHUNK_CHARS characters together."""
    chunk: list[tuple[int, str]] = []
    size = 0
    for item in texts:
        if chunk and size + len(item[1]) > CHUNK_CHARS:
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += len(item[1]) + 1
    if chunk:
        yield chunk


def _scan_joined(
    chunk: list[tuple[int, str]],
    active: Sequence[Recognizer],
    threshold: float,
    results: list[list[PiiSpan]],
) -> None:
    """Run ``active`` once over the texts of ``chunk`` joined, and file each span by text."""
    if not active:
        return
    starts, position = [], 0
    for _, text in chunk:
        starts.append(position)
        position += len(text) + 1
    spans = _scan(SEPARATOR.join(t for _, t in chunk), starts, active, threshold)
    for span in spans:
        k = bisect.bisect_right(starts, span.start) - 1
        offset = starts[k]
        end = min(span.end, offset + len(chunk[k][1]))
        results[chunk[k][0]].append(
            PiiSpan(span.entity, span.start - offset, end - offset, span.score)
        )


def _scan(
    text: str, starts: list[int], active: Sequence[Recognizer], threshold: float
) -> list[PiiSpan]:
    """Spans of ``text`` (one text, or texts joined at ``starts``) scoring ``threshold`` or more."""
    found = []
    for recognizer in active:
        context = recognizer.context_regex
        for candidate in recognizer.candidates(text):
            score = candidate.score
            if context is not None and (recognizer.requires_context or score < 1.0):
                text_start = starts[bisect.bisect_right(starts, candidate.start) - 1]
                if _has_context(text, text_start, candidate.start, context):
                    score = min(1.0, score + CONTEXT_BOOST)
                elif recognizer.requires_context:
                    continue
            if score >= threshold:
                found.append(
                    PiiSpan(recognizer.entity, candidate.start, candidate.end, round(score, 4))
                )
    return found


def _has_context(text: str, text_start: int, start: int, context: re.Pattern[str]) -> bool:
    """Whether a context word is among the CONTEXT_WORDS words before ``start``, in its text."""
    window = text[max(text_start, start - CONTEXT_LOOKBACK) : start]
    words = _WORD.findall(window)[-CONTEXT_WORDS:]
    return context.search(" ".join(words).lower().replace("_", " ")) is not None


def resolve_overlaps(spans: Iterable[PiiSpan], guesses: Iterable[PiiSpan] = ()) -> list[PiiSpan]:
    """Keep, of spans that overlap, the higher-scoring one, then the longer, then the earlier.

    The order is total (ties end on the entity name), so the result does not depend on the
    order recognizers ran in. ``guesses`` (a language model's names, places and organisations)
    come after all of ``spans``, whatever their scores: a pattern's match has a checked format,
    and a model that calls ``acme.com/help`` an organisation must not hide the URL.

    Returns:
        Non-overlapping spans ordered by start.
    """
    # Spans are kept greedily in rank order, each unless it overlaps one kept before. Only
    # spans of one run of overlapping spans can conflict, so each run is resolved alone: time
    # stays linear in the text however many spans a long text holds.
    ranked = [(0, s) for s in spans if s.end > s.start]
    ranked += [(1, g) for g in guesses if g.end > g.start]  # an empty span hides nothing
    ranked.sort(key=lambda t: t[1].start)
    kept: list[PiiSpan] = []
    group: list[tuple[int, PiiSpan]] = []
    group_end = -1
    for item in ranked:
        if group and item[1].start >= group_end:
            kept.extend(_resolve_group(group))
            group = []
        group.append(item)
        group_end = item[1].end if len(group) == 1 else max(group_end, item[1].end)
    kept.extend(_resolve_group(group))
    return kept


def _resolve_group(group: list[tuple[int, PiiSpan]]) -> list[PiiSpan]:
    """The spans kept of one run of overlapping spans (pattern matches before guesses)."""
    if len(group) <= 1:
        return [s for _, s in group]
    group.sort(key=lambda t: (t[0], -t[1].score, t[1].start - t[1].end, t[1].start, t[1].entity))
    origin = min(s.start for _, s in group)
    taken = bytearray(max(s.end for _, s in group) - origin)
    kept = []
    for _, span in group:
        start, end = span.start - origin, span.end - origin
        if taken.find(1, start, end) == -1:
            taken[start:end] = b"\x01" * (end - start)
            kept.append(span)
    return sorted(kept, key=lambda s: s.start)
