"""Pipeline steps for PII: ``pii.detect`` finds it, ``pii.redact`` replaces it.

Both are row-wise maps, so the executor caches their results per row like any other step::

    steps:
      - step: pii.detect            # adds `pii`: [{entity, start, end, score}, ...] per row
        params: {column: body}
      - step: pii.redact            # replaces the values in `body`, using the spans above
        params: {column: body, operator: mask, spans: pii}
    gates:                          # PII as a gate: plain SQL over the `pii` column
      - name: no credentials
        after: pii.detect
        where: "list_has_any([p.entity FOR p IN pii], ['PRIVATE_KEY', 'AWS_SECRET_KEY'])"
        action: quarantine

``hash`` and ``pseudonymize`` take their salt from ``salt_file``, or else from the lake the
pipeline runs on (``<lake>/secrets/pii_salt``, the salt ``curata pii redact`` uses, so a
pipeline and a redaction of the same lake hash values alike), in worker processes too, wherever
the command runs from. A step used outside a pipeline finds its lake from the environment
(``CURATA_LAKE``, or the nearest ``.curata``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from curata.pipeline.step import Step, register_step
from curata.quality.pii import OPERATORS, PiiSpan, load_key, redact_text
from curata.quality.pii_lake.salt import lake_salt, read_salt_file
from curata.quality.pii_lake.source import DetectOptions, Detector, check_text_column

if TYPE_CHECKING:
    import pyarrow as pa

    from curata.quality.pii import AppliedRedaction


class _DetectionParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    column: str = Field(description="the text column")
    entities: list[str] | None = Field(None, description="entities to look for (default: all)")
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="lowest score reported")
    ner: str | None = Field(None, description="spacy:MODEL for names, places, organisations")
    recognizers: str | None = Field(None, description="YAML file of custom recognizers")

    def options(self) -> DetectOptions:
        entities = None if self.entities is None else tuple(self.entities)
        return DetectOptions(entities, self.threshold, self.ner, self.recognizers)


class DetectParams(_DetectionParams):
    """Parameters of the ``pii.detect`` step."""

    into: str = Field("pii", description="the column added")
    count: bool = Field(False, description="add the number of spans instead of the spans")


def _file_digest(path: str | None) -> str:
    """What a file the step reads contributes to its fingerprint (editing it invalidates)."""
    if path is None:
        return "-"
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError:
        return "missing"  # the step fails with a clear error when it runs


class _PiiStep(Step[Any]):
    """What both steps share: a detector built once per process, never pickled."""

    parallel = True

    def __getstate__(self) -> dict[str, Any]:
        # Workers build their own detector in prepare(); the secrets read here travel along.
        return {k: v for k, v in self.__dict__.items() if k != "_loaded_detector"}

    def _detector(self) -> Detector:
        if not hasattr(self, "_loaded_detector"):
            self._loaded_detector = self.params.options().detector()
        detector: Detector = self._loaded_detector
        return detector

    def _texts(self, batch: pa.RecordBatch | pa.Table) -> list[str | None]:
        check_text_column(batch.schema, self.params.column, f"the input of step {self.id!r}")
        texts: list[str | None] = batch.column(self.params.column).to_pylist()
        return texts


@register_step
class DetectStep(_PiiStep):
    """Find PII in a text column: adds ``pii``, the spans of each row
    (``[{entity, start, end, score}]``, offsets in the text; never the values), or with
    ``count: true`` their number."""

    name = "pii.detect"
    version = "1"
    Params = DetectParams

    def code_version(self) -> str:
        return f"{self.version}:{_file_digest(self.params.recognizers)}"

    def prepare(self) -> None:
        self._detector()

    def column_lineage(self, input_columns: list[str]) -> dict[str, list[str]]:
        lineage = {c: [c] for c in input_columns if c != self.params.into}
        lineage[self.params.into] = [self.params.column]
        return lineage

    def process(self, batch: pa.RecordBatch | pa.Table) -> pa.Table:
        import pyarrow as pa

        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        spans = self._detector()(self._texts(table))
        if self.params.count:
            column = pa.array([len(s) for s in spans], pa.int32())
        else:
            column = pa.array([[s.to_dict() for s in row] for row in spans], _spans_type())
        return _put(table, self.params.into, column)


def _spans_type() -> Any:
    import pyarrow as pa

    return pa.list_(
        pa.struct(
            [
                ("entity", pa.string()),
                ("start", pa.int64()),
                ("end", pa.int64()),
                ("score", pa.float64()),
            ]
        )
    )


def _audit_type() -> Any:
    import pyarrow as pa

    return pa.list_(
        pa.struct(
            [
                ("entity", pa.string()),
                ("start", pa.int64()),
                ("end", pa.int64()),
                ("new_start", pa.int64()),
                ("new_end", pa.int64()),
                ("operator", pa.string()),
            ]
        )
    )


def _put(table: pa.Table, name: str, column: pa.Array) -> pa.Table:
    """``table`` with ``column`` as ``name``, replacing a column of that name."""
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, column)
    return table.append_column(name, column)


class RedactParams(_DetectionParams):
    """Parameters of the ``pii.redact`` step."""

    operator: str | dict[str, str] = Field(
        "replace",
        description="replace, mask, redact, hash, pseudonymize or encrypt; or entity -> "
        "operator with '*' as the default",
    )
    spans: str | None = Field(
        None,
        description="a column from pii.detect on the same text: its spans are used "
        "instead of detecting again",
    )
    key_file: str | None = Field(None, description="key file for encrypt")
    salt_file: str | None = Field(
        None, description="salt for hash and pseudonymize (default: the lake's salt)"
    )
    audit: str | None = Field(
        None, description="a column to add with the redactions made in each row (no values)"
    )

    @field_validator("operator")
    @classmethod
    def _known(cls, value: str | dict[str, str]) -> str | dict[str, str]:
        names = [value] if isinstance(value, str) else list(value.values())
        for name in names:
            if name not in OPERATORS:
                raise ValueError(f"unknown operator {name!r}; use one of {', '.join(OPERATORS)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> RedactParams:
        if "encrypt" in self.operators and self.key_file is None:
            raise ValueError(
                "the encrypt operator needs key_file (create one with `curata pii keygen FILE`)"
            )
        detection = (self.entities, self.ner, self.recognizers, self.threshold)
        if self.spans is not None and detection != (None, None, None, 0.5):
            raise ValueError(
                "with spans, detection options (entities, threshold, ner, recognizers) "
                "belong to the pii.detect step that made the spans"
            )
        return self

    @property
    def operators(self) -> set[str]:
        """Every operator the step may apply."""
        if isinstance(self.operator, str):
            return {self.operator}
        names = set(self.operator.values())
        if "*" not in self.operator:
            names.add("replace")  # redact_text's default for entities not listed
        return names


@register_step
class RedactStep(_PiiStep):
    """Replace the PII of a text column (row by row) with the chosen operator; with ``audit``,
    add a column recording each replacement (entity, offsets, operator; never the value)."""

    name = "pii.redact"
    version = "1"
    Params = RedactParams

    def code_version(self) -> str:
        from curata.quality.pii_lake.redact import fingerprint

        key, salt = self._secrets()
        return ":".join(
            [
                self.version,
                _file_digest(self.params.recognizers),
                "-" if key is None else fingerprint(key),
                "-" if salt is None else fingerprint(salt),
            ]
        )

    def _secrets(self) -> tuple[bytes | None, bytes | None]:
        """The key and the salt, loaded once (the fingerprint needs them before prepare)."""
        if not hasattr(self, "_secrets_loaded"):
            used = self.params.operators
            key = load_key(self.params.key_file) if "encrypt" in used else None
            salt = None
            if used & {"hash", "pseudonymize"}:
                salt = (
                    read_salt_file(self.params.salt_file)
                    if self.params.salt_file
                    else lake_salt(self.lake_uri or _lake_uri())
                )
            self._secrets_loaded = (key, salt)
        secrets: tuple[bytes | None, bytes | None] = self._secrets_loaded
        return secrets

    def prepare(self) -> None:
        self._secrets()
        if self.params.spans is None:
            self._detector()

    def column_lineage(self, input_columns: list[str]) -> dict[str, list[str]]:
        lineage = {c: [c] for c in input_columns}
        if self.params.spans is not None:
            lineage[self.params.column] = [self.params.column, self.params.spans]
        if self.params.audit is not None:
            lineage[self.params.audit] = lineage[self.params.column]
        return lineage

    def process(self, batch: pa.RecordBatch | pa.Table) -> pa.Table:
        import pyarrow as pa

        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        texts = self._texts(table)
        key, salt = self._secrets()
        new: list[str | None] = []
        records: list[list[AppliedRedaction]] = []
        for text, spans in zip(texts, self._spans(table, texts), strict=True):
            if text is None or not spans:
                new.append(text)
                records.append([])
                continue
            clean, applied = redact_text(text, spans, self.params.operator, salt=salt, key=key)
            new.append(clean)
            records.append(applied)
        column = self.params.column
        out = _put(table, column, pa.array(new, table.schema.field(column).type))
        if self.params.audit is not None:
            audit = [[a.to_dict() for a in row] for row in records]
            out = _put(out, self.params.audit, pa.array(audit, _audit_type()))
        return out

    def _spans(self, table: pa.Table, texts: list[str | None]) -> list[list[PiiSpan]]:
        if self.params.spans is None:
            return self._detector()(texts)
        from curata.errors import InvalidInput

        if self.params.spans not in table.column_names:
            raise InvalidInput(
                f"Step {self.id!r}: no column {self.params.spans!r} with spans in its input.",
                hint="Run pii.detect on the same column before it, or drop `spans` to detect here.",
            )
        rows = table.column(self.params.spans).to_pylist()
        return [
            [PiiSpan(s["entity"], s["start"], s["end"], s.get("score", 1.0)) for s in row or []]
            for row in rows
        ]


def _lake_uri() -> str:
    from curata.config import resolve_lake_uri

    return resolve_lake_uri()
