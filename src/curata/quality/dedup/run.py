"""Deduplicate a dataset in the lake: one publication that deletes the duplicates, records the
clusters in ``NAME.dedup_clusters`` and keeps MinHash signatures in ``NAME.minhash``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from curata.errors import Conflict, InvalidInput
from curata.quality.dedup.clusters import check_keep
from curata.quality.dedup.find import (
    DedupResult,
    _rank,
    _same,
    build_result,
    check_method,
    exact_pairs,
    near_result,
    semantic_result,
)
from curata.quality.dedup.minhash import MinHashParams, signatures
from curata.quality.dedup.normalise import exact_groups
from curata.quality.dedup.semantic import vector_column

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from curata.lake import Lake, Publication, Snapshot

    Array = np.ndarray[Any, Any]

#: rows deleted by one delete predicate
DELETE_CHUNK = 4096


def clusters_dataset(name: str) -> str:
    """``tickets`` -> ``tickets.dedup_clusters``."""
    return f"{name}.dedup_clusters"


def signatures_dataset(name: str) -> str:
    """``tickets`` -> ``tickets.minhash``."""
    return f"{name}.minhash"


@dataclass(frozen=True)
class DedupReport:
    """What :func:`dedup_dataset` found and published.

    Attributes:
        dataset: the dataset deduplicated.
        input: the exact version read (``tickets@3``).
        rows_in: rows read.
        rows_out: rows left (``rows_in`` minus the duplicates removed).
        version: the new ``NAME@V``, or None when nothing was removed (or a dry run).
        clusters: per cluster, its members' key values (row positions without a key).
        canonical: the member kept from each cluster.
        similarity: per cluster, each member's similarity to the canonical member.
        clusters_version: the new ``NAME.dedup_clusters@V``, or None.
        signatures_computed: MinHash signatures computed (near only; the others were reused).
        signatures_reused: MinHash signatures read from ``NAME.minhash``.
        run_id: the recorded run, or None when nothing was published.
    """

    dataset: str
    input: str
    method: str
    threshold: float
    keep: str
    key: str | None
    rows_in: int
    rows_out: int
    version: str | None = None
    clusters: list[list[Any]] = field(default_factory=list)
    canonical: list[Any] = field(default_factory=list)
    similarity: list[list[float]] = field(default_factory=list)
    clusters_version: str | None = None
    signatures_computed: int = 0
    signatures_reused: int = 0
    run_id: str | None = None
    dry_run: bool = False

    @property
    def removed(self) -> int:
        """Rows removed (or, in a dry run, that would be)."""
        return self.rows_in - self.rows_out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``curata dedup --json``)."""
        return {
            "dataset": self.dataset,
            "input": self.input,
            "method": self.method,
            "threshold": self.threshold,
            "keep": self.keep,
            "key": self.key,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "removed": self.removed,
            "version": self.version,
            "clusters": self.clusters,
            "canonical": self.canonical,
            "similarity": self.similarity,
            "clusters_version": self.clusters_version,
            "signatures_computed": self.signatures_computed,
            "signatures_reused": self.signatures_reused,
            "run_id": self.run_id,
            "dry_run": self.dry_run,
        }


@dataclass
class _Signatures:
    """Signatures of the rows read, and what to write back to ``NAME.minhash``."""

    matrix: Array
    text_hashes: list[bytes]
    computed: Array  # bool per row
    stored_keys: pa.Array | None
    params_changed: bool


def dedup_dataset(
    lake: Lake,
    name: str,
    column: str,
    method: str = "exact",
    *,
    threshold: float | None = None,
    keep: str = "first",
    message: str = "",
    embedder: str = "minilm",
    params: MinHashParams | None = None,
    dry_run: bool = False,
    author: str | None = None,
) -> DedupReport:
    """Remove the duplicates of ``column`` from the head of ``name`` in one publication.

    The deduplicated version (a delete, so its change log says ``-N rows``), the clusters
    (``NAME.dedup_clusters``: ``cluster``, ``key``, ``canonical``, ``similarity``) and, for
    ``near`` on a keyed dataset, the MinHash signatures of the rows kept (``NAME.minhash``,
    reused by the next run for rows whose text did not change) are published together by one
    recorded run whose input is the version read. Nothing to remove publishes no new version
    of ``NAME`` or of its clusters.

    Args:
        lake: the lake.
        name: the dataset.
        column: the text column (for ``semantic`` also a vector column, e.g. a knowledge
            base's chunk embeddings).
        method: ``exact``, ``near`` or ``semantic``.
        threshold: Jaccard (near, default 0.8) or cosine (semantic, default 0.95) similarity.
        keep: ``first`` (lowest key, else first row) or ``longest``.
        message: the commit message (default: what was removed).
        embedder: embedder spec for ``semantic`` over text.
        params: MinHash parameters for ``near``.
        dry_run: find the clusters, write nothing.
        author: author of the commits.

    Raises:
        NotFound: no such dataset, or it has no versions yet.
        InvalidInput: unknown column (the columns are listed), a column that is not text, bad
            method, threshold or keep.
        Conflict: the dataset changed while the duplicates were being found.

    >>> dedup_dataset(lake, "tickets", "body", "near").version  # doctest: +SKIP
    'tickets@4'
    """
    import pyarrow as pa

    value = check_method(method, threshold)
    check_keep(keep)
    params = params or MinHashParams()
    snapshot = lake.dataset(name).at(None)
    key = snapshot.key
    text_kind = _check_column(snapshot, column, method)
    columns = [c for c in dict.fromkeys([key, column]) if c is not None]
    table = snapshot.lance_dataset().to_table(columns=columns, with_row_address=True)
    values = table.column(column)
    keys = table.column(key) if key else None
    n = table.num_rows
    report = DedupReport(name, snapshot.ref, method, value, keep, key, n, n, dry_run=dry_run)
    if table.num_rows == 0:
        return report
    texts = values.combine_chunks() if text_kind else None
    sigs: _Signatures | None = None
    if method == "near" and texts is not None:
        sigs = _signatures(lake, name, key=key, keys=keys, texts=texts, params=params)
        result = near_result(
            sigs.matrix,
            lambda rows: texts.take(pa.array(rows)),
            value,
            keep=keep,
            rank=_rank(keys, n),
            lengths=_lengths(texts),
            params=params,
        )
    else:
        result = _find(
            lake,
            method,
            texts,
            values,
            threshold=value,
            keep=keep,
            keys=keys,
            embedder=embedder,
        )
    member_ids = keys.combine_chunks() if keys is not None else None
    found = _report(report, result, member_ids, sigs, _rank(keys, n))
    if dry_run:
        return found
    write = _Write(found, result, table, sigs, params, column, message, author)
    return _publish(lake, snapshot, write)


def _check_column(snapshot: Snapshot, column: str, method: str) -> bool:
    """Whether the column is text (else, for semantic, vectors); refuse anything else."""
    import pyarrow as pa

    schema = snapshot.schema
    if column not in schema.names:
        raise InvalidInput(
            f"{snapshot.dataset!r} has no column {column!r}.",
            hint=f"Its columns are: {', '.join(schema.names)}.",
        )
    t = schema.field(column).type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return True
    is_list = pa.types.is_fixed_size_list(t) or pa.types.is_list(t)
    if method == "semantic" and is_list and pa.types.is_floating(t.value_type):
        return False
    wanted = "a text column or a vector column" if method == "semantic" else "a text column"
    raise InvalidInput(
        f"Column {column!r} of {snapshot.dataset!r} is {t}; {method} dedup needs {wanted}."
    )


def _lengths(texts: pa.Array) -> Array:
    import numpy as np
    import pyarrow.compute as pc

    return np.asarray(pc.fill_null(pc.utf8_length(texts), 0), dtype=np.int64)


def _find(
    lake: Lake,
    method: str,
    texts: pa.Array | None,
    values: Any,
    *,
    threshold: float,
    keep: str,
    keys: Any,
    embedder: str,
) -> DedupResult:

    n = len(values)
    rank = _rank(keys, n)
    lengths = _lengths(texts) if texts is not None else None
    if method == "exact":
        a, b = exact_pairs(exact_groups(texts))
        return build_result(method, threshold, a, b, keep, rank, lengths, _same)
    if method == "semantic":
        vectors = vector_column(values) if texts is None else _embeddings(lake, texts, embedder)
        assert vectors is not None
        return semantic_result(vectors, threshold, keep, rank, lengths)
    raise InvalidInput("Near dedup needs a text column.")


def _embeddings(lake: Lake, texts: pa.Array, embedder: str) -> Array:
    """Vectors of ``texts`` through the lake's embedding cache, which knowledge bases share:
    a text embedded before by ``embedder`` is not embedded again. Null or blank texts get rows
    of zeros, which match nothing."""
    import numpy as np
    import pyarrow.compute as pc

    from curata.rag.embedding_cache import embed_cached

    present = pc.if_else(pc.equal(pc.utf8_trim_whitespace(texts), ""), None, texts)
    table = embed_cached(lake, present, embedder, again="run the dedup again")
    if table is None:
        return np.zeros((len(texts), 0), np.float32)
    found = table["embedding"].combine_chunks()
    dim = len(found[0])
    vectors = np.asarray(found.flatten(), np.float32).reshape(len(found), dim)
    where = np.asarray(pc.index_in(present, table["text"]).fill_null(-1), np.int64)
    out = np.zeros((len(texts), dim), np.float32)
    out[where >= 0] = vectors[where[where >= 0]]
    return out


def _signatures(
    lake: Lake, name: str, *, key: str | None, keys: Any, texts: pa.Array, params: MinHashParams
) -> _Signatures:
    """Signatures of every row: reused from ``NAME.minhash`` where the text is unchanged."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    hashes = [_text_hash(t) for t in texts.to_pylist()]
    n = len(hashes)
    matrix = np.zeros((n, params.num_perm), np.uint32)
    computed = np.ones(n, bool)
    stored_keys = None
    params_changed = False
    stored = _stored_signatures(lake, name, key) if key is not None else None
    if stored is not None:
        stored_keys = stored.column(key).combine_chunks()
        same_params = pc.all(pc.equal(stored.column("params"), params.fingerprint)).as_py()
        params_changed = not (same_params is None or same_params)
        if not params_changed and stored.num_rows:
            where = np.asarray(pc.index_in(keys, stored_keys).fill_null(-1), dtype=np.int64)
            old_hash = stored.column("text_hash").to_pylist()
            pairs = zip(where.tolist(), hashes, strict=True)
            reuse = np.array([w >= 0 and old_hash[w] == h for w, h in pairs], bool)
            if reuse.any():
                flat = stored.column("signature").combine_chunks().flatten()
                old = np.asarray(flat, dtype=np.uint32).reshape(stored.num_rows, params.num_perm)
                matrix[reuse] = old[where[reuse]]
                computed = ~reuse
    todo = np.flatnonzero(computed)
    if len(todo):
        matrix[todo] = signatures(texts.take(pa.array(todo)), params)
    return _Signatures(matrix, hashes, computed, stored_keys, params_changed)


def _text_hash(text: str | None) -> bytes:
    return b"" if text is None else hashlib.blake2b(text.encode(), digest_size=16).digest()


def _stored_signatures(lake: Lake, name: str, key: str) -> pa.Table | None:
    from curata.errors import NotFound

    try:
        snap = lake.dataset(signatures_dataset(name)).at(None)
    except NotFound:
        return None
    if snap.count_rows() == 0 or key not in snap.schema.names:
        return None
    return snap.to_arrow(columns=[key, "text_hash", "signature", "params"])


def _report(
    report: DedupReport,
    result: DedupResult,
    ids: pa.Array | None,
    sigs: _Signatures | None,
    rank: Array,
) -> DedupReport:
    """The report, with clusters as key values (members in key order, then clusters in the
    order of their first member)."""
    from dataclasses import replace

    def ident(row: int) -> Any:
        return row if ids is None else ids[row].as_py()

    order = []
    for members, sims in zip(result.clusters, result.similarity, strict=True):
        by_key = sorted(range(len(members)), key=lambda i: rank[members[i]])
        order.append(([members[i] for i in by_key], [sims[i] for i in by_key]))
    order.sort(key=lambda c: rank[c[0][0]])

    computed = 0 if sigs is None else int(sigs.computed.sum())
    return replace(
        report,
        rows_out=report.rows_in - len(result.duplicates),
        clusters=[[ident(m) for m in members] for members, _ in order],
        canonical=[ident(c) for c in _canonical_in(order, result)],
        similarity=[sims for _, sims in order],
        signatures_computed=computed,
        signatures_reused=0 if sigs is None else len(sigs.computed) - computed,
    )


def _canonical_in(order: list[tuple[list[int], list[float]]], result: DedupResult) -> list[int]:
    """The canonical member of each cluster of ``order``."""
    canonical = set(result.canonical)
    return [next(m for m in members if m in canonical) for members, _ in order]


def _clusters_table(report: DedupReport, key_type: pa.DataType | None) -> pa.Table:
    """One row per cluster member, clusters numbered as in the report."""
    import pyarrow as pa

    cluster, members, canonical, sims = [], [], [], []
    for i, (keys, kept, similarity) in enumerate(
        zip(report.clusters, report.canonical, report.similarity, strict=True)
    ):
        cluster += [i] * len(keys)
        members += keys
        canonical += [k == kept for k in keys]
        sims += similarity
    return pa.table(
        {
            "cluster": pa.array(cluster, pa.int64()),
            "key": pa.array(members, key_type or pa.int64()),
            "canonical": pa.array(canonical, pa.bool_()),
            "similarity": pa.array(sims, pa.float64()),
            "method": pa.array([report.method] * len(members), pa.string()),
        }
    )


def _signature_writes(
    sigs: _Signatures, key: str, keys: pa.Array, keep_mask: Array, params: MinHashParams
) -> tuple[pa.Table | None, pa.Array | None, bool]:
    """(rows to upsert, keys to delete, overwrite instead) for ``NAME.minhash``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    write = keep_mask & (sigs.computed | sigs.params_changed)
    rows = np.flatnonzero(write)
    table = None
    if len(rows):
        flat = pa.array(sigs.matrix[rows].reshape(-1), pa.uint32())
        table = pa.table(
            {
                key: keys.take(pa.array(rows)),
                "text_hash": pa.array([sigs.text_hashes[r] for r in rows], pa.binary()),
                "signature": pa.FixedSizeListArray.from_arrays(flat, sigs.matrix.shape[1]),
                "params": pa.array([params.fingerprint] * len(rows), pa.string()),
            }
        )
    stale = None
    if sigs.stored_keys is not None and not sigs.params_changed:
        kept = keys.filter(pa.array(keep_mask))
        gone = sigs.stored_keys.filter(pc.invert(pc.is_in(sigs.stored_keys, kept)))
        stale = gone if len(gone) else None
    return table, stale, sigs.params_changed or sigs.stored_keys is None


@dataclass
class _Write:
    """What a run found and how to publish it."""

    report: DedupReport
    result: DedupResult
    table: pa.Table
    sigs: _Signatures | None
    params: MinHashParams
    column: str
    message: str
    author: str | None


def _publish(lake: Lake, snapshot: Snapshot, w: _Write) -> DedupReport:
    from dataclasses import replace

    report, result, table, sigs, params = w.report, w.result, w.table, w.sigs, w.params
    column, message, author = w.column, w.message, w.author

    name, key = report.dataset, report.key
    keep_mask = result.keep_mask(table.num_rows)
    rowaddr = table.column("_rowaddr").combine_chunks()
    removed = rowaddr.filter(_not(keep_mask)).to_pylist()
    ids = table.column(key).combine_chunks() if key else None
    upsert = stale = None
    overwrite = False
    if sigs is not None and key is not None and ids is not None:
        upsert, stale, overwrite = _signature_writes(sigs, key, ids, keep_mask, params)
    if not removed and upsert is None and stale is None:
        return report
    run_id = lake.start_run(
        f"dedup:{name}",
        params={
            "column": column,
            "method": report.method,
            "threshold": report.threshold,
            "keep": report.keep,
            "minhash": params.fingerprint,
        },
        code_version=params.fingerprint if report.method == "near" else None,
        executor="local",
        inputs=[snapshot.ref],
    )
    text = message or f"dedup {report.method} on {column}: {len(removed)} duplicate rows removed"
    try:
        with lake.publish(message=text, author=author, run_id=run_id) as pub:
            _check_unchanged(lake, pub, snapshot)
            if removed:
                about = f"Duplicate clusters found in {name} by curata dedup"
                pub.create_dataset(clusters_dataset(name), kind="report", description=about)
            if upsert is not None or stale is not None:
                about = f"MinHash signatures of {name}.{column} (curata dedup)"
                pub.create_dataset(
                    signatures_dataset(name), kind="records", key=key, description=about
                )
            for lo in range(0, len(removed), DELETE_CHUNK):
                chunk = ", ".join(str(a) for a in removed[lo : lo + DELETE_CHUNK])
                pub.delete(name, f"_rowaddr IN ({chunk})")
            if removed:
                key_type = None if ids is None else ids.type
                pub.overwrite(clusters_dataset(name), _clusters_table(report, key_type))
            store = signatures_dataset(name)
            if upsert is not None and overwrite:
                pub.overwrite(store, upsert)
            elif upsert is not None:
                pub.upsert(store, upsert)
            if stale is not None and key is not None:
                pub.delete(store, _in_predicate(key, stale))
    except BaseException as err:
        lake.finish_run(run_id, status="failed", metrics={}, outputs=[], error=str(err))
        raise
    refs = {c.dataset: c.ref for c in pub.commits}
    metrics = {
        "rows_in": report.rows_in,
        "rows_out": report.rows_out,
        "clusters": len(result.clusters),
        "signatures_computed": report.signatures_computed,
    }
    lake.finish_run(run_id, status="succeeded", metrics=metrics, outputs=[])
    return replace(
        report,
        version=refs.get(name),
        clusters_version=refs.get(clusters_dataset(name)),
        run_id=run_id,
    )


def _not(mask: Array) -> pa.Array:
    import pyarrow as pa

    return pa.array(~mask)


def _check_unchanged(lake: Lake, pub: Publication, snapshot: Snapshot) -> None:
    """The head is still the version read, with the same data files (gc may compact a head in
    place, which moves rows): the row addresses found are the rows to delete."""
    name = snapshot.dataset
    head = pub.base_version(name)
    same = head == snapshot.version and (
        lake.dataset(name).at(head).commit.lance_version == snapshot.commit.lance_version
    )
    if not same:
        raise Conflict(
            f"{name} changed while its duplicates were being found (read {snapshot.ref}, "
            f"now {name}@{head}); nothing was published.",
            hint="Run the dedup again.",
        )


def _in_predicate(column: str, values: pa.Array) -> str:
    """``"col" IN (...)`` for int or string keys."""
    import pyarrow as pa

    from curata.lake.changes import quote_ident

    if pa.types.is_integer(values.type):
        items = ", ".join(str(v) for v in values.to_pylist())
    elif pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        items = ", ".join("'" + str(v).replace("'", "''") + "'" for v in values.to_pylist())
    else:
        raise InvalidInput(f"Signatures are kept for int or string keys, not {values.type}.")
    return f"{quote_ident(column)} IN ({items})"
