"""Data quality for GenAI datasets: PII detection and redaction, rules, bias checks.

The PII names below are loaded on first use, so ``import curata.quality`` stays light::

    from curata.quality import detect_pii, redact_text

    spans = detect_pii("Call me on +1 415-555-2671")
    clean, applied = redact_text("Call me on +1 415-555-2671", spans, "mask")

The full PII API (custom recognizers, keys, NER) is in :mod:`curata.quality.pii`; rules in
:mod:`curata.quality.rules`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from curata.quality.pii import PiiSpan, detect_pii, detect_pii_batch, redact_text, reveal_text

__all__ = ["PiiSpan", "detect_pii", "detect_pii_batch", "redact_text", "reveal_text"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from curata.quality import pii

        return getattr(pii, name)
    raise AttributeError(f"module 'curata.quality' has no attribute {name!r}")
