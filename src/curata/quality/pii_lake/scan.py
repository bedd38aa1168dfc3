"""``scan_pii``: count the PII in one column of a dataset version, keep the result as a report.

The scan streams the version in batches (memory does not grow with its size), counts spans
and rows per entity, and keeps a few examples per entity as (row, entity, offsets) — never the
value. The result is stored as the report dataset ``NAME.pii_scan`` by a recorded run whose
input is the version scanned, and, when PII is found, the column is classified in the catalog.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from curata.errors import InvalidInput
from curata.quality.pii_lake.source import DetectOptions, parse_entities, text_batches
from curata.quality.reports import StoredReport, store_report

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    import pyarrow as pa

    from curata.lake import Lake

EXAMPLES_PER_ENTITY = 5
MIXED = "pii:mixed"
# Catalog classes of the built-in entities; a custom entity FOO_ID is classified pii:foo_id.
CLASSES = {
    "EMAIL_ADDRESS": "pii:email",
    "PHONE_NUMBER": "pii:phone",
    "CREDIT_CARD": "pii:credit_card",
    "IBAN_CODE": "pii:iban",
    "US_SSN": "pii:ssn",
    "IP_ADDRESS": "pii:ip_address",
    "MAC_ADDRESS": "pii:mac_address",
    "URL": "pii:url",
    "CRYPTO": "pii:crypto_address",
    "AWS_ACCESS_KEY": "pii:credential",
    "AWS_SECRET_KEY": "pii:credential",
    "PRIVATE_KEY": "pii:credential",
    "JWT": "pii:credential",
    "GENERIC_SECRET": "pii:credential",
    "PERSON": "pii:person",
    "LOCATION": "pii:location",
    "ORGANIZATION": "pii:organization",
}


def classification_for(entities: Sequence[str]) -> str | None:
    """The catalog class of a column holding ``entities``: ``pii:email`` for one kind,
    ``pii:mixed`` for several (None for none).

    Several kinds get ``pii:mixed`` rather than the most frequent: a free-text column
    classified ``pii:email`` would suggest that masking e-mail addresses makes it safe.

    >>> classification_for(["EMAIL_ADDRESS"]), classification_for(["JWT", "AWS_ACCESS_KEY"])
    ('pii:email', 'pii:credential')
    >>> classification_for(["EMAIL_ADDRESS", "PHONE_NUMBER"])
    'pii:mixed'
    """
    classes = {CLASSES.get(e, f"pii:{e.lower()}") for e in entities}
    if not classes:
        return None
    return classes.pop() if len(classes) == 1 else MIXED


@dataclass(frozen=True)
class PiiExample:
    """Where one piece of PII is: the row (key, or position in the version), the entity and
    its offsets in the text. The value itself is never kept."""

    row_key: str | None
    row_position: int
    entity: str
    start: int
    end: int
    score: float

    @property
    def row(self) -> str:
        """The row's key, else ``#position``."""
        return self.row_key if self.row_key is not None else f"#{self.row_position}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "row_key": self.row_key,
            "row_position": self.row_position,
            "entity": self.entity,
            "start": self.start,
            "end": self.end,
            "score": self.score,
        }


@dataclass(frozen=True)
class PiiScan:
    """What :func:`scan_pii` found.

    Attributes:
        checked: the version scanned (``tickets@3``).
        column: the column scanned.
        rows: rows scanned.
        rows_with_pii: rows holding at least one span.
        counts: spans per entity, most frequent first.
        rows_by_entity: rows holding each entity.
        examples: up to a few per entity, in row order.
        entities: the entities looked for.
        ner: the NER model used, or None (names, places, organisations not looked for).
        threshold: the lowest score reported.
        classification: the column's class in the catalog after the scan, if any.
        report: where the report was stored (None when not stored).
    """

    checked: str
    column: str
    rows: int
    rows_with_pii: int
    counts: dict[str, int]
    rows_by_entity: dict[str, int]
    examples: list[PiiExample]
    entities: list[str]
    ner: str | None
    threshold: float
    classification: str | None = None
    report: StoredReport | None = None

    @property
    def share(self) -> float:
        """Share of rows holding PII."""
        return self.rows_with_pii / self.rows if self.rows else 0.0

    @property
    def spans(self) -> int:
        """Spans found, all entities together."""
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``curata pii scan --json`` prints)."""
        return {
            "checked": self.checked,
            "column": self.column,
            "rows": self.rows,
            "rows_with_pii": self.rows_with_pii,
            "share": round(self.share, 6),
            "spans": self.spans,
            "counts": self.counts,
            "rows_by_entity": self.rows_by_entity,
            "examples": [e.to_dict() for e in self.examples],
            "entities": self.entities,
            "ner": self.ner,
            "threshold": self.threshold,
            "classification": self.classification,
            "report": None if self.report is None else self.report.ref,
            "run_id": None if self.report is None else self.report.run_id,
            "report_created": None if self.report is None else self.report.created,
        }

    def report_rows(self) -> pa.Table:
        """One row per entity looked for (found or not): the report dataset's content."""
        import pyarrow as pa

        found = [e for e in self.counts if e not in self.entities]
        names = sorted({*self.entities, *found}, key=lambda e: (-self.counts.get(e, 0), e))
        example_type = pa.struct(
            [
                ("row_key", pa.string()),
                ("row_position", pa.int64()),
                ("start", pa.int64()),
                ("end", pa.int64()),
                ("score", pa.float64()),
            ]
        )
        examples = [
            [
                {k: v for k, v in x.to_dict().items() if k != "entity"}
                for x in self.examples
                if x.entity == name
            ]
            for name in names
        ]
        return pa.table(
            {
                "column": pa.array([self.column] * len(names), pa.string()),
                "entity": pa.array(names, pa.string()),
                "spans": pa.array([self.counts.get(n, 0) for n in names], pa.int64()),
                "rows": pa.array([self.rows_by_entity.get(n, 0) for n in names], pa.int64()),
                "examples": pa.array(examples, pa.list_(example_type)),
            }
        )


def scan_pii(
    lake: Lake,
    ref: str,
    column: str,
    *,
    entities: str | Sequence[str] | None = None,
    ner: str | None = None,
    threshold: float = 0.5,
    recognizers_file: str | Path | None = None,
    examples_per_entity: int = EXAMPLES_PER_ENTITY,
    store: bool = True,
    classify: bool = True,
) -> PiiScan:
    """Count the PII in ``column`` of the version ``ref``.

    Args:
        lake: the lake.
        ref: the version to scan (``tickets``, ``tickets@3``, ``tickets@prod``).
        column: a text column.
        entities: entity names to look for (a list, or ``"EMAIL_ADDRESS,PHONE_NUMBER"``);
            None for all.
        ner: ``spacy:MODEL`` to look for names, places and organisations too.
        threshold: the lowest score counted.
        recognizers_file: a YAML file of custom recognizers.
        examples_per_entity: how many examples to keep per entity.
        store: store the result as the report dataset ``NAME.pii_scan``.
        classify: when PII is found, classify the column in the catalog (``pii:email``, or
            ``pii:mixed`` for several kinds) unless a person classified it otherwise.

    Returns:
        The counts, the examples and where the report went.

    Raises:
        NotFound: ``ref`` or the recognizers file does not exist.
        InvalidInput: no such column, not a text column, a bad entity, threshold or option.
        MissingDependency: ``ner`` names a model (or spaCy) that is not installed.

    >>> scan = scan_pii(lake, "tickets", "body")  # doctest: +SKIP
    >>> scan.counts, scan.rows_with_pii, scan.report.ref  # doctest: +SKIP
    ({'EMAIL_ADDRESS': 9, 'PHONE_NUMBER': 5}, 11, 'tickets.pii_scan@1')
    """
    if examples_per_entity < 0:
        raise InvalidInput("examples_per_entity cannot be negative.")
    snapshot = lake.ref(ref)
    options = DetectOptions(
        parse_entities(entities),
        threshold,
        ner,
        None if recognizers_file is None else str(recognizers_file),
    )
    detect = options.detector()
    counts: Counter[str] = Counter()
    rows_by_entity: Counter[str] = Counter()
    examples: list[PiiExample] = []
    shown: Counter[str] = Counter()
    rows = rows_with_pii = 0
    for part in text_batches(snapshot, column):
        for i, spans in enumerate(detect(part.texts)):
            if not spans:
                continue
            rows_with_pii += 1
            counts.update(s.entity for s in spans)
            rows_by_entity.update({s.entity for s in spans})
            for s in spans:
                if shown[s.entity] < examples_per_entity:
                    shown[s.entity] += 1
                    key = None if part.keys is None else part.keys[i]
                    examples.append(
                        PiiExample(key, part.first + i, s.entity, s.start, s.end, s.score)
                    )
        rows += len(part.texts)
    scan = PiiScan(
        checked=snapshot.ref,
        column=column,
        rows=rows,
        rows_with_pii=rows_with_pii,
        counts=dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        rows_by_entity=dict(rows_by_entity),
        examples=examples,
        entities=detect.entities,
        ner=ner,
        threshold=threshold,
    )
    classification = None
    if classify:
        classification = classify_column(
            lake,
            snapshot.dataset,
            column,
            found=list(scan.counts),
            looked_for=scan.entities,
            restricted=entities is not None,
        )
    report = _store(lake, scan, options) if store else None
    return replace(scan, classification=classification, report=report)


def classify_column(
    lake: Lake,
    name: str,
    column: str,
    *,
    found: Sequence[str],
    looked_for: Sequence[str],
    restricted: bool,
) -> str | None:
    """Classify ``column`` of dataset ``name`` by the entities ``found`` in it (nothing when
    none was); a class a person set (not ``pii:``) stays. Returns the column's class.

    A search replaces a ``pii:`` class only when it ``looked_for`` every entity the class
    stands for (for ``pii:mixed``: when it was not ``restricted`` to some entities); otherwise
    what it found widens the class, since it says nothing of the entities it did not look for.
    """
    dataset = lake.dataset(name)
    current = dataset.info().classifications.get(column)
    wanted = classification_for(found)
    if wanted is None or (current is not None and not current.startswith("pii:")):
        return current
    if current is not None and current != wanted:
        covered = (
            not restricted if current == MIXED else set(_entities_of(current)) <= set(looked_for)
        )
        if not covered:
            wanted = MIXED
    if current == wanted:
        return current
    try:
        info = dataset.set(classifications={column: wanted})
    except InvalidInput:  # the column is gone from the head: older versions keep their PII
        return current
    return info.classifications.get(column)


def _entities_of(classification: str) -> list[str]:
    """The entities a ``pii:`` class stands for (``pii:foo_id`` is the custom FOO_ID)."""
    named = [e for e, c in CLASSES.items() if c == classification]
    return named or [classification.removeprefix("pii:").upper()]


def _store(lake: Lake, scan: PiiScan, options: DetectOptions) -> StoredReport:
    params = {
        "column": scan.column,
        "entities": None if options.entities is None else list(options.entities),
        "ner": options.ner,
        "threshold": options.threshold,
        "recognizers_file": options.recognizers_file,
    }
    metrics = {
        "rows": scan.rows,
        "rows_with_pii": scan.rows_with_pii,
        "spans": scan.spans,
        "counts": scan.counts,
    }
    found = ", ".join(f"{n} {e}" for e, n in scan.counts.items()) or "no PII"
    return store_report(
        lake,
        kind="pii_scan",
        checked=scan.checked,
        rows=scan.report_rows(),
        params=params,
        metrics=metrics,
        message=f"pii scan of {scan.checked} ({scan.column}): {found}",
    )


def scan_html_blocks(scan: PiiScan) -> list[Any]:
    """The blocks of the HTML report of a scan: figures, entities found, examples."""
    from curata.quality.html import Bars, Summary, Table, Text

    blocks: list[Any] = [
        Summary(
            [
                ("rows scanned", f"{scan.rows:,}"),
                ("rows with PII", f"{scan.rows_with_pii:,}"),
                ("share of rows", f"{scan.share:.1%}"),
                ("values found", f"{scan.spans:,}"),
            ],
            status="WARN" if scan.rows_with_pii else "PASS",
        ),
        Bars("Entities found", list(scan.counts), [float(n) for n in scan.counts.values()]),
        Table(
            "Examples",
            ["row", "entity", "start", "end", "score"],
            [[x.row, x.entity, x.start, x.end, x.score] for x in scan.examples],
            note="Values are never shown: each example says where a value is (offsets in "
            f"{scan.column!r}), not what it is.",
        ),
    ]
    if scan.ner is None:
        blocks.append(Text(NER_OFF_NOTE))
    return blocks


NER_OFF_NOTE = (
    "Names, places and organisations (PERSON, LOCATION, ORGANIZATION) were not looked for. "
    'Turn it on with --ner spacy:en_core_web_sm (pip install "curata[ner]", then '
    "python -m spacy download en_core_web_sm)."
)
