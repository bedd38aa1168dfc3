"""What to put where PII was: replace, mask, redact, hash, pseudonymize or encrypt.

Pure functions over a text and its spans. Each change is recorded as an
:class:`AppliedRedaction` (entity, where it was, where its replacement is, the operator) and
never with the original value, so the records can go into audit logs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from curata.errors import InvalidInput
from curata.quality.pii.encryption import KeySource, encrypt_value, resolve_key
from curata.quality.pii.pseudonyms import keyed_digest, normalized, pseudonym

OPERATORS = ("replace", "mask", "redact", "hash", "pseudonymize", "encrypt")
# Entities shown with their last four digits when masked, as receipts and banks print them.
MASK_KEEP_LAST_FOUR = frozenset({"CREDIT_CARD", "PHONE_NUMBER"})
HASH_HEX_CHARS = 16


class SpanLike(Protocol):
    """What an operator needs of a span (:class:`PiiSpan` has it)."""

    @property
    def entity(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def score(self) -> float: ...


@dataclass(frozen=True)
class AppliedRedaction:
    """One replacement made in a text; the original value is deliberately not kept.

    Attributes:
        entity: the kind of PII replaced.
        start: offset of the replaced value in the original text.
        end: offset after it in the original text.
        new_start: offset of the replacement in the new text.
        new_end: offset after the replacement in the new text (``new_start`` for ``redact``).
        operator: the operator applied.
    """

    entity: str
    start: int
    end: int
    new_start: int
    new_end: int
    operator: str

    def to_dict(self) -> dict[str, object]:
        """The record as a JSON-ready dict."""
        return {
            "entity": self.entity,
            "start": self.start,
            "end": self.end,
            "new_start": self.new_start,
            "new_end": self.new_end,
            "operator": self.operator,
        }


def redact_text(
    text: str,
    spans: Sequence[SpanLike],
    operator: str | Mapping[str, str] = "replace",
    *,
    salt: str | bytes | None = None,
    key: KeySource | None = None,
) -> tuple[str, list[AppliedRedaction]]:
    """Replace the spans of ``text`` by what ``operator`` makes of them.

    Operators:
        - ``replace``: the entity name, ``<EMAIL_ADDRESS>``.
        - ``mask``: ``*`` for every character (whitespace kept), the same length; cards and
          phone numbers keep their last four digits and their separators.
        - ``redact``: nothing; the value is removed.
        - ``hash``: ``<ENTITY:hex>``, the first 16 hex digits of HMAC-SHA256(salt, value); the
          same value and salt give the same hash (cards, SSNs, IBANs and MAC addresses are
          hashed without their separators, e-mail addresses in lower case).
        - ``pseudonymize``: a realistic, consistent fake value (see ``pseudonyms.py``).
        - ``encrypt``: ``⟦enc:ENTITY:token⟧`` (AES-256-GCM); :func:`reveal_text` with the same
          key restores the value.

    Spans that overlap are merged into one replacement covering them all, labelled with the
    entity of the highest-scoring one, so no part of any value survives.

    Args:
        text: the original text.
        spans: what to replace, e.g. from :func:`detect_pii`.
        operator: an operator name, or a mapping from entity name to operator name, where
            ``"*"`` is the default for entities not listed (``replace`` if there is none).
        salt: the secret for ``hash`` and ``pseudonymize``; keep it to get the same outputs
            later, keep it private so values cannot be guessed and checked against outputs.
        key: for ``encrypt``: bytes from :func:`load_key` or the key file's path.

    Returns:
        The new text and one record per replacement, in text order.

    Raises:
        InvalidInput: an unknown operator, a span outside the text, a missing salt or key.

    >>> from curata.quality.pii import PiiSpan
    >>> redact_text("mail ada@example.com", [PiiSpan("EMAIL_ADDRESS", 5, 20, 1.0)])[0]
    'mail <EMAIL_ADDRESS>'
    """
    choose = _operator_chooser(operator)
    merged = merge_overlapping(spans, len(text))
    used = {choose(entity) for entity, _, _ in merged}
    secret = _salt_bytes(salt) if used & {"hash", "pseudonymize"} else b""
    cipher_key = resolve_key(key) if "encrypt" in used else b""

    pieces: list[str] = []
    applied: list[AppliedRedaction] = []
    position = length = 0
    for entity, start, end in merged:
        pieces.append(text[position:start])
        length += start - position
        name = choose(entity)
        replacement = _apply(name, entity, text[start:end], secret, cipher_key)
        pieces.append(replacement)
        applied.append(
            AppliedRedaction(entity, start, end, length, length + len(replacement), name)
        )
        length += len(replacement)
        position = end
    pieces.append(text[position:])
    return "".join(pieces), applied


def merge_overlapping(spans: Sequence[SpanLike], text_length: int) -> list[tuple[str, int, int]]:
    """``(entity, start, end)`` of each group of overlapping spans, in text order.

    Raises:
        InvalidInput: a span is empty or reaches outside the text.
    """
    for span in spans:
        if not 0 <= span.start < span.end <= text_length:
            raise InvalidInput(
                f"Span {span.entity} [{span.start}, {span.end}) is not inside the text "
                f"of {text_length} characters.",
                hint="Spans must come from detect_pii on this same text.",
            )
    merged: list[tuple[str, int, int]] = []
    group: list[SpanLike] = []
    group_end = -1
    for span in sorted(spans, key=lambda s: (s.start, s.end)):
        if group and span.start >= group_end:
            merged.append(_label(group, group_end))
            group = []
        group.append(span)
        group_end = max(group_end, span.end) if len(group) > 1 else span.end
    if group:
        merged.append(_label(group, group_end))
    return merged


def _label(group: list[SpanLike], end: int) -> tuple[str, int, int]:
    """The merged span of an overlapping group, named after its best span."""
    best = min(group, key=lambda s: (-s.score, s.start - s.end, s.start, s.entity))
    return best.entity, group[0].start, end


@dataclass(frozen=True)
class _Chooser:
    """The operator for each entity: its own, else the default."""

    by_entity: dict[str, str]
    default: str

    def __call__(self, entity: str) -> str:
        return self.by_entity.get(entity, self.default)


def _operator_chooser(operator: str | Mapping[str, str]) -> _Chooser:
    if isinstance(operator, str):
        _check_operator(operator)
        return _Chooser({}, operator)
    for name in operator.values():
        _check_operator(name)
    return _Chooser(dict(operator), operator.get("*", "replace"))


def _check_operator(name: str) -> None:
    if name not in OPERATORS:
        raise InvalidInput(
            f"Unknown redaction operator {name!r}.", hint=f"Use one of: {', '.join(OPERATORS)}."
        )


def _salt_bytes(salt: str | bytes | None) -> bytes:
    if not salt:
        raise InvalidInput(
            "The hash and pseudonymize operators need a salt.",
            hint=(
                "Pass salt=... (a secret string kept with the pipeline's settings). Without "
                "one, hashes of phone numbers or SSNs could be reversed by trying every value."
            ),
        )
    return salt.encode("utf-8") if isinstance(salt, str) else salt


def _apply(operator: str, entity: str, value: str, salt: bytes, key: bytes) -> str:
    """The replacement ``operator`` makes of ``value``."""
    if operator == "replace":
        return f"<{entity}>"
    if operator == "redact":
        return ""
    if operator == "mask":
        return mask_value(entity, value)
    if operator == "hash":
        digest = keyed_digest(normalized(entity, value), salt, "hash")
        return f"<{entity}:{digest.hex()[:HASH_HEX_CHARS]}>"
    if operator == "pseudonymize":
        return pseudonym(entity, value, salt)
    return encrypt_value(value, entity, key)


def mask_value(entity: str, value: str) -> str:
    """``value`` with ``*`` for each character but whitespace (and, for cards and phones,
    the last four digits and the separators).

    >>> mask_value("CREDIT_CARD", "4111 1111 1111 1111")
    '**** **** **** 1111'
    """
    if entity not in MASK_KEEP_LAST_FOUR:
        return "".join(c if c.isspace() else "*" for c in value)
    keep_from = len(value)
    seen = 0
    for i in range(len(value) - 1, -1, -1):
        if value[i].isdigit():
            seen += 1
            if seen == 4:
                keep_from = i
                break
    return "".join(c if i >= keep_from or not c.isalnum() else "*" for i, c in enumerate(value))
