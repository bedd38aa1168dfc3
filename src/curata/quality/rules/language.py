"""Language identification for the ``Language`` rule, offline.

It uses py3langid (a maintained fork of langid.py: a naive Bayes model over byte n-grams for 97
languages, shipped inside the package, BSD licence, numpy only). It needs no download at run
time, gives the same answer every time (unlike langdetect, which samples), and classifies a
short text in well under a millisecond; the model (4.5 MB) loads on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from curata.errors import MissingDependency

UNDETERMINED = "und"
"""The code for text with no letters, or too short to tell (ISO 639-2 ``und``)."""

# Below this probability the guess is little better than noise: one or two short words
# ("Hello world" scores 0.14 for Fulfulde); such texts are reported as undetermined.
_MIN_CONFIDENCE = 0.15
_NO_LANGUAGE = "zxx"  # the model's own code for text that is not language


@lru_cache(maxsize=1)
def _classifier() -> Callable[[str], tuple[str, float]]:
    try:
        from py3langid.langid import (  # type: ignore[import-untyped]
            MODEL_FILE,
            LanguageIdentifier,
        )
    except ImportError as err:
        raise MissingDependency("py3langid", "quality", "The Language rule") from err
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    classify: Callable[[str], tuple[str, float]] = identifier.classify
    return classify


def detect_languages(texts: list[str | None]) -> list[str]:
    """The ISO 639-1 code of each text's language (``und`` when it cannot be told).

    Raises:
        MissingDependency: py3langid is not installed.
    """
    classify = _classifier()
    known: dict[str, str] = {}  # datasets repeat texts (templates, short answers)
    codes = []
    for text in texts:
        if not text or not any(ch.isalpha() for ch in text):
            codes.append(UNDETERMINED)
            continue
        if text not in known:
            code, confidence = classify(text)
            sure = confidence >= _MIN_CONFIDENCE and code != _NO_LANGUAGE
            known[text] = code if sure else UNDETERMINED
        codes.append(known[text])
    return codes
