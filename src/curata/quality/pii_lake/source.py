"""Reading one text column of a dataset version in bounded batches, and detecting PII in it.

Every lake operation (scan, redact, reveal) and the pipeline steps check the column the same
way — it must exist and hold text — and say which row a finding belongs to the same way: by
the dataset's key when it has one, else by the row's position in the version.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from curata.errors import InvalidInput
from curata.quality.pii import detect_pii_batch, load_recognizers, supported_entities
from curata.quality.pii.model import NER_ENTITIES, PiiSpan, Recognizer

if TYPE_CHECKING:
    import pyarrow as pa

    from curata.lake import Snapshot

# Rows per batch read from Lance. Detection joins texts into ~1 MB chunks anyway, so larger
# batches gain nothing and would hold more long documents in memory at once.
BATCH_ROWS = 2048


def check_text_column(schema: pa.Schema, column: str, where: str) -> pa.Field:
    """The field of ``column``, which must exist and hold text.

    Args:
        schema: the columns available.
        column: the column asked for.
        where: what holds the columns, for messages (``tickets@3``, ``step 'find-pii'``).

    Raises:
        InvalidInput: no such column (the columns are listed), or it is not a string column.
    """
    import pyarrow as pa

    names = [n for n in schema.names if not n.startswith("_")]
    if column not in schema.names:
        raise InvalidInput(
            f"{where} has no column {column!r}.", hint=f"Its columns are: {', '.join(names)}."
        )
    field = schema.field(column)
    if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
        texts = [f.name for f in schema if _is_text(f.type) and not f.name.startswith("_")]
        raise InvalidInput(
            f"Column {column!r} of {where} is {field.type}, not text: PII is looked for in "
            "string columns.",
            hint=f"Text columns: {', '.join(texts)}." if texts else f"{where} has no text column.",
        )
    return field


def _is_text(type_: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(type_) or pa.types.is_large_string(type_))


@dataclass(frozen=True)
class TextBatch:
    """Some consecutive rows of a version: their texts and how to name each row.

    Attributes:
        first: position of the first row in the version (0-based).
        texts: the column's values; None for NULL.
        keys: the key of each row as text, or None when the dataset has no key.
        batch: the rows as read (the columns asked for).
    """

    first: int
    texts: list[str | None]
    keys: list[str] | None
    batch: pa.RecordBatch


def text_batches(
    snapshot: Snapshot, column: str, *, all_columns: bool = False, batch_rows: int = BATCH_ROWS
) -> Iterator[TextBatch]:
    """Stream ``column`` of ``snapshot`` (and its key, or every column) in batches.

    Raises:
        InvalidInput: as :func:`check_text_column`.
    """
    check_text_column(snapshot.schema, column, snapshot.ref)
    key = snapshot.key
    columns = None if all_columns else list(dict.fromkeys([c for c in (key, column) if c]))
    position = 0
    for batch in snapshot.to_batches(columns=columns, batch_size=batch_rows):
        texts = batch.column(column).to_pylist()
        keys = key_texts(batch.column(key)) if key else None
        yield TextBatch(position, texts, keys, batch)
        position += batch.num_rows


def key_texts(values: pa.Array | pa.ChunkedArray) -> list[str]:
    """Key values as text (how audits and examples name rows)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return [str(v) for v in pc.cast(values, pa.string()).to_pylist()]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return [str(v) for v in values.to_pylist()]


@dataclass(frozen=True)
class DetectOptions:
    """What to look for: the arguments of :func:`~curata.quality.pii.detect_pii_batch`.

    Attributes:
        entities: entity names to report (None: every built-in one, the file's custom ones,
            and the NER ones when ``ner`` is set).
        threshold: the lowest score reported.
        ner: ``spacy:MODEL`` to find names, places and organisations.
        recognizers_file: a YAML file of custom recognizers.
    """

    entities: tuple[str, ...] | None = None
    threshold: float = 0.5
    ner: str | None = None
    recognizers_file: str | None = None

    def detector(self) -> Detector:
        """A detector with the custom recognizers loaded and every option checked.

        Raises:
            InvalidInput: an unknown entity, a bad threshold or NER engine, a bad YAML file.
            NotFound: the recognizers file does not exist.
            MissingDependency: the NER model or spaCy is not installed.
        """
        custom = load_recognizers(self.recognizers_file) if self.recognizers_file else []
        detector = Detector(self, tuple(custom))
        detector([])  # checks entities, threshold and the NER model before any data is read
        return detector


@dataclass(frozen=True)
class Detector:
    """Finds PII in texts with fixed options (see :class:`DetectOptions`)."""

    options: DetectOptions
    recognizers: tuple[Recognizer, ...]

    def __call__(self, texts: Sequence[str | None]) -> list[list[PiiSpan]]:
        """One list of spans per text."""
        o = self.options
        return detect_pii_batch(
            texts, o.entities, threshold=o.threshold, ner=o.ner, recognizers=self.recognizers
        )

    @property
    def entities(self) -> list[str]:
        """Every entity this detector can report."""
        if self.options.entities is not None:
            return list(self.options.entities)
        ner = () if self.options.ner else NER_ENTITIES
        custom = [r.entity for r in self.recognizers]
        return [e for e in supported_entities() if e not in ner] + sorted(set(custom))


def parse_entities(text: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``"EMAIL_ADDRESS, PHONE_NUMBER"`` (or a list) as a tuple of names; None stays None.

    Raises:
        InvalidInput: the list is empty.
    """
    if text is None:
        return None
    items = text.split(",") if isinstance(text, str) else list(text)
    names = tuple(dict.fromkeys(i.strip().upper() for i in items if i.strip()))
    if not names:
        raise InvalidInput("The list of entities is empty.", hint="Omit it to look for all.")
    return names
