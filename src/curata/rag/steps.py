"""Pipeline steps of knowledge bases: ``parse``, ``chunk`` and ``embed``.

They work in any pipeline (``step: embed`` in YAML), and a knowledge-base sync runs the same
steps through the same executors. ``embed`` is cached per row like every row-wise step: fed
one column of chunk texts, its cache key is (text hash, embedder), so an unchanged chunk is
never embedded twice, in whichever document or sync it turns up again.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from curata.pipeline.step import ROW_COLUMN, Step, register_step
from curata.rag.chunking import ChunkSettings, chunk_sections
from curata.rag.embedders import DEFAULT_EMBEDDER, Embedder, load_embedder

if TYPE_CHECKING:
    import pyarrow as pa

MAX_DOCUMENT_BYTES = 100 * 2**20


class ParseParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: binary column with the file's bytes
    data: str = "data"
    #: column with the MIME type
    mime: str = "mime"
    #: column naming the document in error messages
    name: str = "doc_id"
    #: files larger than this fail instead of being read
    max_bytes: int = Field(MAX_DOCUMENT_BYTES, gt=0)
    #: put the reason a file failed in an ``error`` column instead of failing the row
    errors_to_column: bool = False
    #: PII in the text: kept (``off``), or replaced by its entity name, masked or removed
    pii: Literal["off", "replace", "mask", "redact"] = "off"


@register_step
class ParseStep(Step[ParseParams]):
    """Bytes of a txt, md, html, pdf, docx or json file -> ``text``, ``title`` and
    ``sections`` (JSON: text, heading path and page of each section)."""

    name = "parse"
    version = "1"
    Params = ParseParams
    parallel = True

    def process(self, batch: pa.RecordBatch | pa.Table) -> pa.Table:
        import pyarrow as pa

        from curata.parse import parse_document

        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        p = self.params
        texts: list[str | None] = []
        titles: list[str | None] = []
        sections: list[str | None] = []
        errors: list[str | None] = []
        redacted: list[int] = []
        rows = zip(
            table.column(p.data).to_pylist(),
            table.column(p.mime).to_pylist(),
            table.column(p.name).to_pylist() if p.name in table.column_names else [""] * len(table),
            strict=True,
        )
        for data, mime, name in rows:
            try:
                doc = parse_document(data or b"", mime=mime, name=name, max_bytes=p.max_bytes)
            except Exception as err:  # any parser failure is this document's, not the run's
                if not p.errors_to_column:
                    raise DocumentFailed(_reason(err)) from err
                texts.append(None)
                titles.append(None)
                sections.append(None)
                errors.append(_reason(err))
                redacted.append(0)
                continue
            parts = [[s.text, list(s.heading_path), s.page] for s in doc.sections]
            text = doc.text
            if p.pii != "off":
                parts, text, found = _without_pii(parts, p.pii)
                redacted.append(found)
            texts.append(text)
            titles.append(doc.title)
            sections.append(json.dumps(parts, ensure_ascii=False))
            errors.append(None)
        out = table.drop_columns([p.data])
        out = out.append_column("text", pa.array(texts, pa.string()))
        out = out.append_column("title", pa.array(titles, pa.string()))
        out = out.append_column("sections", pa.array(sections, pa.string()))
        if p.pii != "off":
            out = out.append_column("pii_redacted", pa.array(redacted, pa.int32()))
        if p.errors_to_column:
            out = out.append_column("error", pa.array(errors, pa.string()))
        return out


def _without_pii(parts: list[list[Any]], operator: str) -> tuple[list[list[Any]], str, int]:
    """Sections with PII replaced, the document text made of them, and how many values."""
    from curata.quality.pii import detect_pii_batch, redact_text

    found = 0
    spans = detect_pii_batch([part[0] for part in parts])
    for part, part_spans in zip(parts, spans, strict=True):
        if part_spans:
            part[0], applied = redact_text(part[0], part_spans, operator)
            found += len(applied)
    return parts, "\n\n".join(part[0] for part in parts), found


def _reason(err: Exception) -> str:
    from curata.errors import CurataError
    from curata.parse import ParseError

    if isinstance(err, ParseError):  # the row names the document: the reason and what to do
        return err.reason if err.hint is None else f"{err.reason}. {err.hint}"
    if isinstance(err, CurataError):
        return f"{err.message} {err.hint or ''}".strip()
    return f"the parser failed: {type(err).__name__}: {err}"


class DocumentFailed(Exception):
    """A document could not be parsed (the row follows the step's ``on_error``)."""


class ChunkParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: the embedder whose tokenizer sizes the chunks
    embedder: str = DEFAULT_EMBEDDER
    size: int = 200
    overlap: int = 30


@register_step
class ChunkStep(Step[ChunkParams]):
    """Documents (``doc_id``, ``doc_version``, ``text``, optional ``sections``) -> one row per
    chunk: ``chunk_id`` (``{doc_id}#v{doc_version}#c{k}``), ``chunk_index``, ``text``,
    ``heading``, ``page``, ``n_tokens``, plus the document's other columns."""

    name = "chunk"
    version = "1"
    Params = ChunkParams
    parallel = True
    #: document columns not copied onto chunks (large, or replaced by the chunk's own)
    DROP: ClassVar[tuple[str, ...]] = ("text", "sections", "title", "data", "error")

    def prepare(self) -> None:
        self._embedder = load_embedder(self.params.embedder)
        ChunkSettings(self.params.size, self.params.overlap)  # fail early on bad sizes

    def process(self, batch: pa.RecordBatch | pa.Table) -> pa.Table:
        import pyarrow as pa

        if not hasattr(self, "_embedder"):
            self.prepare()
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        settings = ChunkSettings(self.params.size, self.params.overlap)
        keep = [c for c in table.column_names if c not in self.DROP]
        parents: list[int] = []
        columns: dict[str, list[Any]] = {
            n: [] for n in ("chunk_id", "chunk_index", "text", "heading", "page", "n_tokens")
        }
        docs = table.to_pylist()
        for position, doc in enumerate(docs):
            if doc.get("text") is None:
                continue
            chunks = chunk_sections(
                _sections(doc), settings, self._embedder.count_tokens, self._embedder.split_tokens
            )
            for k, chunk in enumerate(chunks):
                parents.append(position)
                columns["chunk_id"].append(f"{doc['doc_id']}#v{doc['doc_version']}#c{k}")
                columns["chunk_index"].append(k)
                columns["text"].append(chunk.text)
                columns["heading"].append(chunk.heading)
                columns["page"].append(chunk.page)
                columns["n_tokens"].append(chunk.n_tokens)
        indices = pa.array(parents, pa.int64())
        out = table.select(keep).take(indices)
        types = {"chunk_index": pa.int32(), "page": pa.int32(), "n_tokens": pa.int32()}
        for name, values in columns.items():
            out = out.append_column(name, pa.array(values, types.get(name, pa.string())))
        if ROW_COLUMN not in out.column_names:
            out = out.append_column(ROW_COLUMN, indices)
        return out


def _sections(doc: dict[str, Any]) -> list[tuple[str, list[str], int | None]]:
    raw = doc.get("sections")
    if raw:
        return [(text, list(path), page) for text, path, page in json.loads(raw)]
    return [(doc["text"], [], None)]


class EmbedParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    embedder: str = DEFAULT_EMBEDDER
    column: str = "text"
    output: str = "embedding"


@register_step
class EmbedStep(Step[EmbedParams]):
    """Adds ``output``: the embedding of ``column`` (fixed-size list of float32, unit
    length). Transient endpoint errors are retried with backoff by the executor."""

    name = "embed"
    version = "1"
    Params = EmbedParams

    def prepare(self) -> None:
        self._embedder: Embedder = load_embedder(self.params.embedder)

    @property
    def embedder(self) -> Embedder:
        if not hasattr(self, "_embedder"):
            self.prepare()
        return self._embedder

    def process(self, batch: pa.RecordBatch | pa.Table) -> pa.Table:
        import pyarrow as pa

        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        import numpy as np

        texts = [t or "" for t in table.column(self.params.column).to_pylist()]
        embedder = self.embedder
        # Batches of similar lengths: a model pads every text of a batch to its longest, so
        # batches cut in document order cost up to 1.5x the token positions (bench_kb.py).
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        parts = [
            embedder.embed([texts[j] for j in order[i : i + embedder.batch_size]])
            for i in range(0, len(texts), embedder.batch_size)
        ]
        stacked = np.concatenate(parts) if parts else np.zeros((0, embedder.dim), np.float32)
        restored = np.empty_like(stacked)
        restored[np.asarray(order, dtype=np.int64)] = stacked
        vectors = embedding_array([restored], embedder.dim)
        return table.append_column(self.params.output, vectors)


def embedding_array(parts: list[Any], dim: int) -> pa.FixedSizeListArray:
    """Stack (n, dim) float32 arrays into one fixed-size-list Arrow column."""
    import numpy as np
    import pyarrow as pa

    flat = np.concatenate([p.reshape(-1) for p in parts]) if parts else np.zeros(0, np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat.astype(np.float32)), dim)
