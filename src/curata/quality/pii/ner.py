"""Names, places and organisations by named-entity recognition with a spaCy model.

Patterns cannot find "Maria Keller" or "Lyon"; a statistical model can. spaCy and its models
are heavy and optional: they are imported only when ``ner="spacy:MODEL"`` is asked for, and a
model is never downloaded by curata (``python -m spacy download MODEL`` is the user's step).
"""

from __future__ import annotations

import importlib.util
import itertools
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from curata.errors import CurataError, InvalidInput, MissingDependency
from curata.quality.pii.model import PiiSpan

# spaCy does not score its entities; Presidio reports 0.85 for them and so do we.
NER_SCORE = 0.85
# spaCy's OntoNotes labels and what they are reported as.
LABELS = {
    "PERSON": "PERSON",
    "PER": "PERSON",
    "GPE": "LOCATION",
    "LOC": "LOCATION",
    "FAC": "LOCATION",
    "ORG": "ORGANIZATION",
}
# Longer texts are given to spaCy in pieces of at most this many characters (its limit is
# 1,000,000, and memory grows with the length of a piece).
MAX_PIECE_CHARS = 100_000
# Components the entity recognizer needs; the rest of a pipeline (parser, lemmatizer) is off.
_KEEP = {"tok2vec", "transformer", "ner", "entity_ruler", "span_ruler"}
# Texts given to the model at a time (larger batches were no faster on en_core_web_sm).
BATCH_SIZE = 64


def parse_ner(ner: str) -> str:
    """The model name or path in ``ner="spacy:MODEL"``.

    Raises:
        InvalidInput: ``ner`` is not of that form.
    """
    engine, _, model = ner.partition(":")
    if engine != "spacy" or not model:
        raise InvalidInput(
            f"Unknown NER engine {ner!r}.",
            hint='Use ner="spacy:MODEL", e.g. ner="spacy:en_core_web_sm" (or a model folder).',
        )
    return model


def ner_available(ner: str | None = None) -> bool:
    """Whether named-entity recognition can run, without loading a model.

    Args:
        ner: ``"spacy:MODEL"`` to ask about that model; None to ask about spaCy alone.

    Returns:
        True when spaCy (and the model, if named) is installed.

    >>> ner_available("spacy:no_such_model")
    False
    """
    if importlib.util.find_spec("spacy") is None:
        return False
    if ner is None:
        return True
    model = parse_ner(ner)
    if Path(model).is_dir():
        return True
    return importlib.util.find_spec(model.replace("-", "_")) is not None


@lru_cache(maxsize=4)
def load_model(model: str) -> Any:
    """The spaCy pipeline ``model`` (package name or folder), with only what NER needs enabled.

    Loaded once per process: a model takes seconds to load and is read-only afterwards.

    Raises:
        MissingDependency: spaCy or the model is not installed.
    """
    try:
        import spacy
    except ImportError as err:
        raise MissingDependency("spacy", "ner", "Named-entity PII detection") from err
    try:
        nlp = spacy.load(model)
    except OSError as err:
        error = MissingDependency(model, "ner", f"PII detection with ner='spacy:{model}'")
        # The model is not a pip extra of curata: spaCy installs it by its own command.
        CurataError.__init__(
            error,
            f"The spaCy model {model!r} is not installed (needed for ner='spacy:{model}').",
            hint=f"Install it with: python -m spacy download {model}",
        )
        raise error from err
    for name in nlp.pipe_names:
        if name not in _KEEP:
            nlp.disable_pipe(name)
    # A shared embedding layer is worth running only for the components that listen to it:
    # en_core_web_sm's ner has its own, so its tok2vec would take a third of the time for
    # nothing.
    for name in ("tok2vec", "transformer"):
        if name not in nlp.pipe_names:
            continue
        listeners = getattr(nlp.get_pipe(name), "listening_components", None)
        if listeners is not None and not set(listeners) & set(nlp.pipe_names):
            nlp.disable_pipe(name)
    return nlp


def ner_spans(texts: Sequence[str], ner: str, entities: frozenset[str]) -> list[list[PiiSpan]]:
    """PERSON, LOCATION and ORGANIZATION spans of each text, as far as ``entities`` asks."""
    nlp = load_model(parse_ner(ner))
    results: list[list[PiiSpan]] = [[] for _ in texts]
    owners: list[tuple[int, int]] = []  # (text, offset) of each piece, in the order run

    def pieces() -> Iterator[str]:
        for i, text in enumerate(texts):
            for offset, piece in _pieces(text, MAX_PIECE_CHARS):
                owners.append((i, offset))
                yield piece

    for n, doc in enumerate(run_pipeline(nlp, pieces(), BATCH_SIZE)):
        i, offset = owners[n]
        for ent in doc.ents:
            entity = LABELS.get(ent.label_)
            if entity in entities:
                start, end = offset + ent.start_char, offset + ent.end_char
                results[i].append(PiiSpan(entity, start, end, NER_SCORE))
    return results


def run_pipeline(nlp: Any, texts: Iterable[str], batch_size: int) -> Iterator[Any]:
    """``nlp.pipe(texts)``: the same documents, with greedy entity recognizers run faster.

    spaCy 3's greedy transition loop for ``ner`` runs in C without the GIL, but every state
    lookup in it takes the GIL back to check for a Python error: half of the recognizer's time
    went to locking (measured with ``perf`` on en_core_web_sm). Driving the same transitions
    from Python, a step for the whole batch at a time, with the GIL held, takes the same
    decisions (tests compare the entities with ``nlp.pipe``'s) in about half the time.
    """
    pipeline = [(proc, _steppable(proc)) for _, proc in nlp.pipeline]
    if not any(steppable for _, steppable in pipeline):
        yield from nlp.pipe(texts, batch_size=batch_size)
        return
    iterator = iter(texts)
    while batch := list(itertools.islice(iterator, batch_size)):
        docs = [nlp.make_doc(text) for text in batch]
        for proc, steppable in pipeline:
            if steppable:
                _recognize_entities(proc, docs)
            elif hasattr(proc, "pipe"):
                docs = list(proc.pipe(docs, batch_size=batch_size))
            else:
                docs = [proc(doc) for doc in docs]
        yield from docs


def _steppable(proc: Any) -> bool:
    """Whether ``proc`` is a spaCy 3 entity recognizer that decodes greedily (no beam)."""
    from spacy.about import __version__
    from spacy.pipeline import EntityRecognizer

    return (
        isinstance(proc, EntityRecognizer)
        and __version__.startswith("3.")
        and proc.cfg.get("beam_width", 1) == 1
        and hasattr(proc, "transition_states")
    )


def _recognize_entities(proc: Any, docs: list[Any]) -> None:
    """Set ``doc.ents`` as ``proc.predict`` + ``proc.set_annotations`` would, step by step."""
    if not any(len(doc) for doc in docs):
        proc.set_annotations(docs, proc.moves.init_batch(docs))
        return
    proc._ensure_labels_are_added(docs)
    model = proc.model.predict(docs)
    batch = proc.moves.init_batch(docs)
    states = [state for state in batch if not state.is_final()]
    while states:
        states = proc.transition_states(states, model.predict(states))
    model.clear_memory()
    proc.set_annotations(docs, batch)


def _pieces(text: str, size: int) -> Iterator[tuple[int, str]]:
    """``text`` cut into pieces of at most ``size`` characters, at a line break or a space in
    the second half of each piece where there is one, with the offset of each piece.

    spaCy refuses texts longer than its ``max_length`` (a million characters); a name that
    spans a cut may be missed, which only happens in texts longer than ``size``.
    """
    start = 0
    while len(text) - start > size:
        end = start + size
        cut = text.rfind("\n", start + size // 2, end)
        if cut < 0:
            cut = text.rfind(" ", start + size // 2, end)
        end = cut + 1 if cut >= 0 else end
        yield start, text[start:end]
        start = end
    yield start, text[start:]
