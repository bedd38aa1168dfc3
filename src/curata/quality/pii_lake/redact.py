"""``redact_pii``: replace the PII of one column and publish the result with its audit trail.

One publication, by one recorded run whose input is the version read, holds both writes: the
new version of the dataset (an upsert of the changed rows when the dataset has a key, else an
overwrite staged batch by batch) and the rows appended to its audit dataset ``NAME.pii_audit``.
Readers see both or neither: a redaction that fails midway publishes nothing. The column is
then classified in the catalog by what was replaced (``pii:email``; ``pii:mixed`` once it held
several kinds).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from curata.errors import Conflict, CurataError, InvalidInput
from curata.quality.pii import OPERATORS, load_key, redact_text
from curata.quality.pii_lake.salt import lake_salt
from curata.quality.pii_lake.scan import classify_column
from curata.quality.pii_lake.source import (
    DetectOptions,
    Detector,
    TextBatch,
    check_text_column,
    parse_entities,
    text_batches,
)

if TYPE_CHECKING:
    from pathlib import Path

    import pyarrow as pa

    from curata.lake import Commit, Lake, Snapshot
    from curata.lake.publish import Publication, StagedOverwrite

AUDIT_KIND = "pii_audit"


def audit_dataset(name: str) -> str:
    """``tickets`` -> ``tickets.pii_audit``."""
    return f"{name}.{AUDIT_KIND}"


@dataclass(frozen=True)
class Redaction:
    """What :func:`redact_pii` did.

    Attributes:
        read: the version redacted (``tickets@3``).
        version: the version published (``tickets@4``), None when there was nothing to redact.
        audit: the audit version published (``tickets.pii_audit@2``), or None.
        run_id: the recorded run.
        column: the column redacted.
        operator: the operator, or the entity -> operator mapping.
        rows: rows read.
        rows_redacted: rows whose text changed.
        counts: values replaced per entity.
        summary: the change summary of the new version.
        classification: the column's class in the catalog after the redaction, if any.
    """

    read: str
    version: str | None
    audit: str | None
    run_id: str
    column: str
    operator: str | dict[str, str]
    rows: int
    rows_redacted: int
    counts: dict[str, int]
    summary: str = ""
    classification: str | None = None

    @property
    def redactions(self) -> int:
        """Values replaced, all entities together."""
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``curata pii redact --json`` prints)."""
        return {
            "read": self.read,
            "version": self.version,
            "audit": self.audit,
            "run_id": self.run_id,
            "column": self.column,
            "operator": self.operator,
            "rows": self.rows,
            "rows_redacted": self.rows_redacted,
            "redactions": self.redactions,
            "counts": self.counts,
            "summary": self.summary,
            "classification": self.classification,
        }


@dataclass
class _Audit:
    """Audit rows gathered while redacting, column by column (they hold no values)."""

    row_key: list[str | None] = field(default_factory=list)
    row_position: list[int] = field(default_factory=list)
    entity: list[str] = field(default_factory=list)
    start: list[int] = field(default_factory=list)
    end: list[int] = field(default_factory=list)
    new_start: list[int] = field(default_factory=list)
    new_end: list[int] = field(default_factory=list)
    operator: list[str] = field(default_factory=list)
    rows_read: int = 0
    rows_redacted: int = 0

    def table(self, *, run_id: str, read: str, published: str, column: str) -> pa.Table:
        import pyarrow as pa

        n = len(self.entity)
        return pa.table(
            {
                "run_id": pa.array([run_id] * n, pa.string()),
                "read": pa.array([read] * n, pa.string()),
                "published": pa.array([published] * n, pa.string()),
                "row_key": pa.array(self.row_key, pa.string()),
                "row_position": pa.array(self.row_position, pa.int64()),
                "column": pa.array([column] * n, pa.string()),
                "entity": pa.array(self.entity, pa.string()),
                "start": pa.array(self.start, pa.int64()),
                "end": pa.array(self.end, pa.int64()),
                "new_start": pa.array(self.new_start, pa.int64()),
                "new_end": pa.array(self.new_end, pa.int64()),
                "operator": pa.array(self.operator, pa.string()),
            }
        )

    def counts(self) -> dict[str, int]:
        found = Counter(self.entity)
        return dict(sorted(found.items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass(frozen=True)
class _Redactor:
    """Detects and replaces PII in the texts of one batch, recording each replacement."""

    detect: Detector
    operator: str | Mapping[str, str]
    salt: bytes | None
    key: bytes | None

    def texts(self, part: TextBatch, audit: _Audit) -> tuple[list[str | None], list[int]]:
        """The batch's texts after redaction, and the indices of those that changed."""
        out: list[str | None] = list(part.texts)
        changed: list[int] = []
        for i, spans in enumerate(self.detect(part.texts)):
            text = part.texts[i]
            if not spans or text is None:
                continue
            out[i], applied = redact_text(text, spans, self.operator, salt=self.salt, key=self.key)
            changed.append(i)
            for a in applied:
                audit.row_key.append(None if part.keys is None else part.keys[i])
                audit.row_position.append(part.first + i)
                audit.entity.append(a.entity)
                audit.start.append(a.start)
                audit.end.append(a.end)
                audit.new_start.append(a.new_start)
                audit.new_end.append(a.new_end)
                audit.operator.append(a.operator)
        audit.rows_read += len(part.texts)
        audit.rows_redacted += len(changed)
        return out, changed


def redact_pii(
    lake: Lake,
    name: str,
    column: str,
    operator: str | Mapping[str, str] = "replace",
    *,
    key_file: str | Path | None = None,
    salt: str | bytes | None = None,
    entities: str | Sequence[str] | None = None,
    message: str = "",
    threshold: float = 0.5,
    ner: str | None = None,
    recognizers_file: str | Path | None = None,
    author: str | None = None,
) -> Redaction:
    """Redact the PII in ``column`` of the head of ``name`` and publish the new version.

    Args:
        lake: the lake.
        name: the dataset (its head of main is read).
        column: a text column.
        operator: ``replace``, ``mask``, ``redact``, ``hash``, ``pseudonymize`` or
            ``encrypt``, or a mapping from entity to operator with ``"*"`` as the default.
        key_file: the key file for ``encrypt`` (see ``generate_key_file``).
        salt: the secret for ``hash`` and ``pseudonymize``; default: the lake's salt,
            ``<lake>/secrets/pii_salt``, created on first use, so outputs are consistent
            across redactions of this lake.
        entities: entity names to redact (a list or ``"EMAIL_ADDRESS,PHONE_NUMBER"``); None
            for all.
        message: the message of the new versions.
        threshold: the lowest score redacted.
        ner: ``spacy:MODEL`` to redact names, places and organisations too.
        recognizers_file: a YAML file of custom recognizers.
        author: author of the new versions (default: the lake's).

    Returns:
        The versions published and what was replaced.

    Raises:
        NotFound: no such dataset, key, salt or recognizers file.
        InvalidInput: no such column, not a text column, the key column, a bad operator or
            option; ``encrypt`` without a key file; a damaged key.
        Conflict: the dataset got a new version while it was being redacted (run it again).

    >>> r = redact_pii(lake, "tickets", "body", "mask", message="mask PII")  # doctest: +SKIP
    >>> r.version, r.audit, r.counts  # doctest: +SKIP
    ('tickets@2', 'tickets.pii_audit@1', {'EMAIL_ADDRESS': 9, 'PHONE_NUMBER': 5})
    """
    from curata.pipeline.executor import format_exception

    snapshot = lake.dataset(name).head
    check_text_column(snapshot.schema, column, snapshot.ref)
    if column == snapshot.key:
        raise InvalidInput(
            f"{column!r} is the key of {name!r}: redacting it would change which row is which.",
            hint="Redact the other text columns; to hide keys, publish a copy with a new key.",
        )
    options = DetectOptions(
        parse_entities(entities),
        threshold,
        ner,
        None if recognizers_file is None else str(recognizers_file),
    )
    redactor, run_params = _redactor(lake, operator, key_file, salt, options)
    run_id = lake.start_run(
        f"pii_redact:{name}",
        params={"column": column, **run_params},
        code_version=_curata_version(),
        executor="local",
        inputs=[snapshot.ref],
    )
    job = _Job(lake, snapshot, column, redactor, run_id)
    try:
        result = job.run(message or f"pii redact {column} ({_describe(operator)})", author)
    except BaseException as err:
        error = format_exception(err)
        lake.finish_run(run_id, status="failed", metrics={}, outputs=[], error=error)
        raise
    lake.finish_run(
        run_id,
        status="succeeded",
        metrics={
            "rows": result.rows,
            "rows_redacted": result.rows_redacted,
            "redactions": result.redactions,
            "counts": result.counts,
        },
        outputs=[],
    )
    if result.version is None:
        return result
    # What was replaced says what the column held, and earlier versions still hold it: a
    # redaction only widens the column's class.
    classification = classify_column(
        lake, name, column, found=list(result.counts), looked_for=(), restricted=True
    )
    return replace(result, classification=classification)


def _curata_version() -> str:
    from curata import __version__

    return __version__


def _redactor(
    lake: Lake,
    operator: str | Mapping[str, str],
    key_file: str | Path | None,
    salt: str | bytes | None,
    options: DetectOptions,
) -> tuple[_Redactor, dict[str, Any]]:
    """The redactor for these options, checked before any data is read, and the run params
    that describe it (no secret: the key and the salt are named by their fingerprints)."""
    used = _operators(operator)
    key = secret = None
    if "encrypt" in used:
        if key_file is None:
            raise InvalidInput(
                "The encrypt operator needs a key file.",
                hint="Create one with `curata pii keygen FILE` (generate_key_file in Python) "
                "and pass --key-file FILE (key_file=...). Keep it apart from the data.",
            )
        key = load_key(key_file)
    if used & {"hash", "pseudonymize"}:
        secret = salt.encode("utf-8") if isinstance(salt, str) else salt
        secret = secret or lake_salt(lake)
    params: dict[str, Any] = {
        "operator": operator if isinstance(operator, str) else dict(operator),
        "entities": None if options.entities is None else list(options.entities),
        "threshold": options.threshold,
        "ner": options.ner,
        "recognizers_file": options.recognizers_file,
        "key_id": None if key is None else fingerprint(key),
        "salt_id": None if secret is None else fingerprint(secret),
    }
    return _Redactor(options.detector(), operator, secret, key), params


def fingerprint(secret: bytes) -> str:
    """A short, one-way name for a key or salt, to tell which one was used without showing it."""
    return hashlib.sha256(b"curata-pii-id:" + secret).hexdigest()[:16]


def _operators(operator: str | Mapping[str, str]) -> set[str]:
    names = {operator} if isinstance(operator, str) else set(operator.values())
    if not isinstance(operator, str) and "*" not in operator:
        names.add("replace")
    unknown = sorted(names - set(OPERATORS))
    if unknown:
        raise InvalidInput(
            f"Unknown redaction operator {unknown[0]!r}.",
            hint=f"Use one of: {', '.join(OPERATORS)}.",
        )
    return names


def _describe(operator: str | Mapping[str, str]) -> str:
    if isinstance(operator, str):
        return operator
    return ", ".join(f"{k}: {v}" for k, v in operator.items())


@dataclass
class _Job:
    """One redaction: read the snapshot, redact, publish the new version and the audit."""

    lake: Lake
    snapshot: Snapshot
    column: str
    redactor: _Redactor
    run_id: str
    audit: _Audit = field(default_factory=_Audit)

    def run(self, message: str, author: str | None) -> Redaction:
        name = self.snapshot.dataset
        if self.snapshot.key is not None:
            changed = self._changed_rows()

            def write(pub: Publication) -> None:
                pub.upsert(name, changed)
        else:
            staged = self._stage()

            def write(pub: Publication) -> None:
                pub.overwrite_staged(staged)

        if not self.audit.entity:
            return self._result()
        audit_name = audit_dataset(name)
        with self.lake.publish(message=message, author=author, run_id=self.run_id) as pub:
            pub.create_dataset(
                audit_name,
                kind="logs",
                description=f"PII redactions of {name}: one row per value replaced (never the "
                "value), appended by each redaction run",
            )
            base = pub.base_version(name)
            if base != self.snapshot.version:
                raise Conflict(
                    f"{name} changed while it was being redacted: it was read at "
                    f"{self.snapshot.ref}, its head is now {name}@{base}.",
                    hint="Run the redaction again, on the new head.",
                )
            write(pub)
            published = f"{name}@{pub.resulting_version(name)}"
            pub.append(
                audit_name,
                self.audit.table(
                    run_id=self.run_id,
                    read=self.snapshot.ref,
                    published=published,
                    column=self.column,
                ),
            )
        commits = {c.dataset: c for c in pub.commits}
        return self._result(commits.get(name), commits.get(audit_name))

    def _result(self, commit: Commit | None = None, audit: Commit | None = None) -> Redaction:
        operator = self.redactor.operator
        return Redaction(
            read=self.snapshot.ref,
            version=None if commit is None else commit.ref,
            audit=None if audit is None else audit.ref,
            run_id=self.run_id,
            column=self.column,
            operator=operator if isinstance(operator, str) else dict(operator),
            rows=self.audit.rows_read,
            rows_redacted=self.audit.rows_redacted,
            counts=self.audit.counts(),
            summary="" if commit is None else commit.summary,
        )

    def _changed_rows(self) -> pa.Table:
        """Key and new text of every row the redaction changes (a keyed dataset)."""
        import pyarrow as pa

        key, column, schema = self.snapshot.key, self.column, self.snapshot.schema
        assert key is not None
        text_type = schema.field(column).type
        parts: list[pa.Table] = []
        for part in text_batches(self.snapshot, column):
            texts, changed = self.redactor.texts(part, self.audit)
            if changed:
                keys = part.batch.column(key).take(pa.array(changed, pa.int64()))
                new = pa.array([texts[i] for i in changed], text_type)
                parts.append(pa.table({key: keys, column: new}))
        if not parts:
            return pa.table({key: pa.array([], schema.field(key).type), column: []})
        return pa.concat_tables(parts)

    def _stage(self) -> StagedOverwrite:
        """Write the whole redacted content as unpublished files (there is no key to upsert
        by); publishing commits them, a failure leaves them for ``gc``."""
        import pyarrow as pa

        schema = self.snapshot.schema
        index = schema.get_field_index(self.column)
        text_type = schema.field(self.column).type

        failed: list[BaseException] = []

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                for part in text_batches(self.snapshot, self.column, all_columns=True):
                    texts, changed = self.redactor.texts(part, self.audit)
                    batch = part.batch
                    if changed:
                        arrays = list(batch.columns)
                        arrays[index] = pa.array(texts, text_type)
                        batch = pa.RecordBatch.from_arrays(arrays, schema=batch.schema)
                    yield batch
            except BaseException as err:
                failed.append(err)
                raise

        reader = pa.RecordBatchReader.from_batches(schema, batches())
        try:
            return self.lake.stage_overwrite(self.snapshot.dataset, reader)
        except CurataError:
            if failed:  # Lance wrapped the error raised while redacting: raise that one
                raise failed[0] from None
            raise
