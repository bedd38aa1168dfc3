"""PII detection and redaction for texts, at library level.

Find PII, then replace it::

    from curata.quality.pii import detect_pii, redact_text

    text = "Reach me at ada@example.org or +44 20 7946 0958."
    spans = detect_pii(text)                      # [PiiSpan('EMAIL_ADDRESS', 12, 27, 1.0), ...]
    clean, applied = redact_text(text, spans, "replace")
    # 'Reach me at <EMAIL_ADDRESS> or <PHONE_NUMBER>.'

Detection is pattern-based (with checksums and libphonenumber to reject look-alikes) and runs
offline; names, places and organisations need ``ner="spacy:MODEL"`` and an installed spaCy
model. ``detect_pii_batch`` handles many texts in one pass. Teams add their own identifiers
with :func:`load_recognizers`. Operators: ``replace``, ``mask``, ``redact``, ``hash``,
``pseudonymize`` and ``encrypt`` (reversible with :func:`reveal_text` and the key file from
:func:`generate_key_file`). See docs/quality.md.
"""

from __future__ import annotations

from curata.quality.pii.custom import load_recognizers, parse_recognizers
from curata.quality.pii.detect import detect_pii, detect_pii_batch, supported_entities
from curata.quality.pii.encryption import generate_key_file, load_key, reveal_text
from curata.quality.pii.model import Pattern, PiiSpan, Recognizer
from curata.quality.pii.ner import ner_available
from curata.quality.pii.operators import OPERATORS, AppliedRedaction, redact_text
from curata.quality.pii.phone import DEFAULT_PHONE_REGIONS

__all__ = [
    "DEFAULT_PHONE_REGIONS",
    "OPERATORS",
    "AppliedRedaction",
    "Pattern",
    "PiiSpan",
    "Recognizer",
    "detect_pii",
    "detect_pii_batch",
    "generate_key_file",
    "load_key",
    "load_recognizers",
    "ner_available",
    "parse_recognizers",
    "redact_text",
    "reveal_text",
    "supported_entities",
]
