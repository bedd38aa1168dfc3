"""Running a pipeline: input, steps, gates, outputs published at once, and a recorded run."""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curata.errors import InvalidInput, NotFound
from curata.pipeline.executor import (
    BatchResult,
    PlannedStep,
    RejectedRow,
    Segment,
    StepStats,
    format_exception,
)
from curata.pipeline.spec import LoadedPipeline, OutputSpec, PipelineSpec, load_pipeline
from curata.pipeline.step import make_step

if TYPE_CHECKING:
    import pyarrow as pa

    from curata.lake import Lake
    from curata.lake.publish import StagedOverwrite

BATCH_ROWS = 65_536
STAGE_ROWS = 262_144
EXECUTORS = ("local", "ray")
Progress = Callable[[str, int, int | None], None]


@dataclass
class RunResult:
    """What a run did: ``curata run --json`` prints :meth:`to_dict`."""

    id: str
    pipeline: str
    status: str
    executor: str
    outputs: list[str]
    steps: list[StepStats]
    rows_in: int
    quarantined: int
    warned: int
    seconds: float
    dry_run: bool = False
    plan: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.id,
            "pipeline": self.pipeline,
            "status": self.status,
            "executor": self.executor,
            "outputs": self.outputs,
            "steps": [s.to_dict() for s in self.steps],
            "rows_in": self.rows_in,
            "quarantined": self.quarantined,
            "warned": self.warned,
            "seconds": round(self.seconds, 3),
            "dry_run": self.dry_run,
            "plan": self.plan,
        }


class _OutputWriter:
    """Collects one output's rows: streamed to uncommitted data files for overwrites, kept in
    memory for appends and upserts. A new output dataset is created in the transaction that
    publishes it, so a run that fails or is killed before leaves no empty dataset behind."""

    def __init__(self, lake: Lake, output: OutputSpec) -> None:
        self.lake, self.dataset, self.mode = lake, output.dataset, output.mode
        self.key, self.kind = output.key, output.kind
        self.checked = False
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.staged: StagedOverwrite | None = None
        self.schema: pa.Schema | None = None

    def add(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            # An empty batch adds nothing, and may not know every column (when all of its
            # rows failed a step); its schema serves only if no rows come at all.
            self.schema = self.schema or table.schema
            return
        if self.schema is None or (not self.pending_rows and self.staged is None):
            self.schema = table.schema
        elif table.schema != self.schema:
            table = table.cast(self.schema)
        self.pending.append(table)
        self.pending_rows += table.num_rows
        if self.mode == "overwrite" and self.pending_rows >= STAGE_ROWS:
            self._stage()

    def _stage(self) -> None:
        import pyarrow as pa

        from curata.lake.publish import StagedOverwrite

        if not self.pending or self.schema is None:
            return
        self.check_key()
        reader = pa.Table.from_batches(
            [b for t in self.pending for b in t.to_batches()], schema=self.schema
        ).to_reader()
        staged = self.lake.stage_overwrite(self.dataset, reader)
        if self.staged is not None:
            staged = StagedOverwrite(
                self.dataset,
                staged.schema,
                self.staged.fragments + staged.fragments,
                self.staged.rows + staged.rows,
            )
        self.staged = staged
        self.pending, self.pending_rows = [], 0

    def check_key(self) -> None:
        """Refuse a key that is not among the output's columns, before writing any data."""
        if self.checked or self.schema is None:
            return
        missing = self.key is not None and self.key not in self.schema.names
        if missing and not self.lake.has_dataset(self.dataset):
            raise InvalidInput(
                f"Output {self.dataset!r}: key column {self.key!r} is not among its columns.",
                hint=f"Columns: {', '.join(self.schema.names)}. Fix the output's `key:`.",
            )
        self.checked = True

    def table(self) -> pa.Table:
        import pyarrow as pa

        assert self.schema is not None
        return pa.Table.from_batches(
            [b for t in self.pending for b in t.to_batches()], schema=self.schema
        )

    def publish(self, pub: Any) -> None:
        if self.schema is None:
            return
        pub.create_dataset(self.dataset, kind=self.kind, key=self.key)
        if self.mode == "overwrite":
            self._stage()
            if self.staged is None:  # no rows at all: overwrite with an empty table
                pub.overwrite(self.dataset, self.schema.empty_table())
            else:
                pub.overwrite_staged(self.staged)
        elif self.mode == "append":
            pub.append(self.dataset, self.table())
        else:
            pub.upsert(self.dataset, self.table(), key=self.key)


def _check_existing_outputs(lake: Lake, spec: PipelineSpec) -> None:
    """Refuse, before any work, an output whose ``key:`` disagrees with the primary key of the
    dataset it writes to: the key cannot change once a dataset exists."""
    for out in spec.outputs:
        if out.key is None or not lake.has_dataset(out.dataset):
            continue
        existing = lake.dataset(out.dataset).info().key
        if existing == out.key or (existing is None and out.mode == "upsert"):
            continue  # an upsert into a dataset without a key matches rows by `key:`
        has = "no primary key" if existing is None else f"primary key {existing!r}"
        raise InvalidInput(
            f"Output {out.dataset!r} has {has}, but the pipeline gives it key {out.key!r}.",
            hint=(
                "A dataset's key is set when it is created. "
                + ("Remove `key:` from the output" if existing is None else f"Use key: {existing}")
                + " or write to a new dataset."
            ),
        )


def _input_batches(
    lake: Lake, spec: PipelineSpec, batch_rows: int
) -> tuple[Iterator[pa.Table], list[str], int | None]:
    """Batches of the input, the input references, and the row count when known."""
    import pyarrow as pa

    from curata.pipeline.spec import DatasetInput

    if isinstance(spec.input, DatasetInput):
        snapshot = lake.ref(spec.input.dataset)

        batches = _rebatch(snapshot.to_batches(batch_size=batch_rows), batch_rows)
        return batches, [snapshot.ref], snapshot.commit.rows
    files = _expand_files(spec.input.files)

    def from_files() -> Iterator[pa.Table]:
        from curata.formats import read_table

        for path in files:
            table = read_table(path, spec.input.format)  # type: ignore[union-attr]
            for batch in table.to_batches(max_chunksize=batch_rows):
                yield pa.Table.from_batches([batch], schema=table.schema)

    return from_files(), [Path(f).resolve().as_uri() for f in files], None


def _rebatch(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """Tables of ``rows`` rows (the last one smaller), whatever sizes come in: Lance yields
    at least one batch per fragment, and the small fragments upserts leave behind would
    otherwise make many small batches, each paying the per-batch costs."""
    import pyarrow as pa

    pending: list[pa.RecordBatch] = []
    size = 0
    for batch in batches:
        pending.append(batch)
        size += batch.num_rows
        if size < rows:
            continue
        table = pa.Table.from_batches(pending)
        start = 0
        while size - start >= rows:
            yield table.slice(start, rows).combine_chunks()
            start += rows
        pending = table.slice(start).to_batches()
        size -= start
    if size:
        yield pa.Table.from_batches(pending).combine_chunks()


def _expand_files(pattern: str) -> list[str]:
    path = Path(pattern).expanduser()
    if path.is_dir():
        files = sorted(
            str(p) for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")
        )
    else:
        files = sorted(glob.glob(os.path.expanduser(pattern), recursive=True))
    if not files:
        raise NotFound(f"The pipeline input {pattern!r} matches no file.")
    return files


def plan_steps(
    lake: Lake, spec: PipelineSpec, *, no_cache: bool, recompute: Sequence[str]
) -> list[PlannedStep]:
    """Instantiate the steps and open their caches (``recompute`` is only checked here: the
    caches are dropped once the run starts, never by a dry run or a run that cannot start)."""
    ids = [s.id for s in spec.steps]
    unknown = [r for r in recompute if r not in ids]
    if unknown:
        raise InvalidInput(
            f"--recompute names no step of this pipeline: {', '.join(unknown)}.",
            hint=f"Step ids: {', '.join(str(i) for i in ids)}.",
        )
    planned = []
    for s in spec.steps:
        step = make_step(s.step, s.params, id=s.id)
        step.lake_uri = lake.uri  # before the fingerprint, which may read the lake's secrets
        cache = None
        if step.is_row_wise and s.cache and not no_cache:
            cache = lake.step_cache(step.fingerprint)
        planned.append(PlannedStep(step=step, on_error=s.on_error, cache=cache))
    return planned


def _segments(planned: list[PlannedStep]) -> list[tuple[int, list[PlannedStep]]]:
    """Split the steps at those that need the whole input: (offset, steps) pieces."""
    pieces: list[tuple[int, list[PlannedStep]]] = []
    start = 0
    for i, p in enumerate(planned):
        if not p.step.is_row_wise:
            if i > start:
                pieces.append((start, planned[start:i]))
            pieces.append((i, [p]))
            start = i + 1
    if start < len(planned) or not pieces:
        pieces.append((start, planned[start:]))
    return pieces


def run_pipeline(
    lake: Lake,
    pipeline: LoadedPipeline | PipelineSpec | str | Path,
    *,
    executor: str = "local",
    no_cache: bool = False,
    recompute: Sequence[str] = (),
    dry_run: bool = False,
    workers: int | None = None,
    batch_rows: int = BATCH_ROWS,
    progress: Progress | None = None,
) -> RunResult:
    """Run a pipeline and publish its outputs in one catalog transaction.

    Args:
        lake: where the input is read and the outputs are published.
        pipeline: a pipeline file, or one already loaded.
        executor: ``local`` (default) or ``ray``.
        no_cache: compute every row, ignoring (and not filling) the step caches.
        recompute: ids of steps whose cached results are dropped first.
        dry_run: validate and describe the plan; read and write nothing.
        workers: processes for CPU-heavy steps (default: the number of cores when a step is
            CPU-heavy, else 1).
        batch_rows: rows per batch.
        progress: called as ``progress(step_id, rows_done, rows_total)``.

    Raises:
        InvalidInput: a bad pipeline, input or option (before any work starts).
        StepFailed: a step raised on the data and its ``on_error`` is ``fail``.
        QualityGateFailed: a gate with action ``fail`` matched rows.
    """
    if executor not in EXECUTORS:
        raise InvalidInput(f"Unknown executor {executor!r}.", hint="Use local or ray.")
    if executor == "ray" and not dry_run:
        from curata.pipeline.ray_executor import require_ray

        require_ray()  # before any work: no run is recorded for a missing extra
    loaded = _load(pipeline)
    spec = loaded.spec
    planned = plan_steps(lake, spec, no_cache=no_cache, recompute=recompute)
    ids = [p.id for p in planned]
    taps = {o.dataset: (ids.index(o.after) if o.after else len(ids) - 1) for o in spec.outputs}
    gates = [(g, ids.index(g.after) if g.after else len(ids) - 1) for g in spec.gates]
    _check_existing_outputs(lake, spec)
    if dry_run:
        return _dry_run(lake, spec, planned, executor)
    batches, inputs, total = _input_batches(lake, spec, batch_rows)
    for p in planned:
        if p.id in recompute and p.cache is not None:
            p.cache.clear()
    started = time.perf_counter()
    run_id = lake.start_run(
        spec.name,
        params={
            "pipeline": spec.model_dump(mode="json"),
            "digest": loaded.digest,
            "file": loaded.path,
        },
        code_version=_curata_version(),
        executor=executor,
        inputs=inputs,
    )
    try:
        writers = {o.dataset: _OutputWriter(lake, o) for o in spec.outputs}
        stats = {p.id: StepStats(p.id, p.step.name) for p in planned}
        rejected: list[RejectedRow] = []
        counted = _Counted(batches)
        for result in _execute(
            planned, iter(counted), taps=taps, gates=gates, executor=executor, workers=workers
        ):
            for s in result.stats:
                stats[s.id].merge(s)
                if progress:
                    progress(s.id, stats[s.id].rows_in, total)
            rejected.extend(result.rejected)
            for name, table in result.tables.items():
                writers[name].add(table)
        commits = _publish(lake, spec, writers, rejected, run_id)
        for p in planned:
            if p.cache is not None:
                p.cache.finish()
        outputs = [c.ref for c in commits]
        rows_in = counted.rows
        quarantined = sum(r.action == "quarantine" for r in rejected)
        warned = sum(r.action == "warn" for r in rejected)
        seconds = time.perf_counter() - started
        lake.finish_run(
            run_id,
            status="succeeded",
            metrics={
                "steps": [s.to_dict() for s in stats.values()],
                "rows_in": rows_in,
                "quarantined": quarantined,
                "warned": warned,
                "seconds": round(seconds, 3),
                "column_lineage": _column_lineage(spec, planned, counted.columns, inputs, outputs),
            },
            outputs=outputs,
        )
    except BaseException as err:
        lake.finish_run(
            run_id, status="failed", metrics={}, outputs=[], error=format_exception(err)
        )
        raise
    return RunResult(
        id=run_id,
        pipeline=spec.name,
        status="succeeded",
        executor=executor,
        outputs=outputs,
        steps=list(stats.values()),
        rows_in=rows_in,
        quarantined=quarantined,
        warned=warned,
        seconds=seconds,
    )


def _load(pipeline: LoadedPipeline | PipelineSpec | str | Path) -> LoadedPipeline:
    if isinstance(pipeline, LoadedPipeline):
        return pipeline
    if isinstance(pipeline, PipelineSpec):
        import hashlib

        digest = hashlib.sha256(pipeline.model_dump_json().encode()).hexdigest()
        return LoadedPipeline(spec=pipeline, path=None, digest=digest)
    return load_pipeline(pipeline)


def _curata_version() -> str:
    from curata import __version__

    return __version__


def _execute(
    planned: list[PlannedStep],
    batches: Iterator[pa.Table],
    *,
    taps: dict[str, int],
    gates: list[Any],
    executor: str,
    workers: int | None,
) -> Iterator[BatchResult]:
    """Stream the batches through the steps, segment by segment.

    A step that needs the whole input (not row-wise) starts a new segment that receives all
    rows of the previous one at once. Results of every segment are yielded (their stats,
    rejected rows and captured outputs), as soon as they are known.
    """
    from curata.pipeline.local import map_batches

    side: list[BatchResult] = []
    source: Iterator[pa.Table] = batches
    segments = _segments(planned)
    for n, (offset, steps) in enumerate(segments):
        # A segment captures after its own steps (and the first one, the input: tap -1); the
        # rows a segment starts from were captured by the segment before.
        first = -1 if offset == 0 else offset
        seg_taps = {k: v for k, v in taps.items() if first <= v < offset + len(steps)}
        if n < len(segments) - 1:
            seg_taps[_FORWARD] = offset + len(steps) - 1
        if steps and not steps[0].step.is_row_wise:
            source = _whole(source)
        results = map_batches(Segment(steps, seg_taps, gates, offset), source, executor, workers)
        if n < len(segments) - 1:
            source = _forward(results, side)
            continue
        for result in results:
            yield from side
            side.clear()
            yield result
    yield from side


def _whole(source: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """All batches as one table, for a step that needs the whole input."""
    import pyarrow as pa

    tables = list(source)
    if tables:
        yield pa.concat_tables(tables, promote_options="permissive")


_FORWARD = "__next_segment__"


def _forward(results: Iterator[BatchResult], side: list[BatchResult]) -> Iterator[pa.Table]:
    """Hand a segment's final rows to the next segment; keep the rest of each result."""
    for result in results:
        table = result.tables.pop(_FORWARD)
        side.append(result)
        yield table


class _Counted:
    """An input iterator that counts rows and remembers the first schema."""

    def __init__(self, source: Iterator[pa.Table]) -> None:
        self._source = source
        self.rows = 0
        self.columns: list[str] | None = None

    def __iter__(self) -> Iterator[pa.Table]:
        for table in self._source:
            self.rows += table.num_rows
            if self.columns is None:
                self.columns = list(table.column_names)
            yield table


def _publish(
    lake: Lake,
    spec: PipelineSpec,
    writers: dict[str, _OutputWriter],
    rejected: list[RejectedRow],
    run_id: str,
) -> list[Any]:
    quarantine = [r for r in rejected if r.action == "quarantine"]
    for writer in writers.values():
        writer.check_key()
    with lake.publish(message=f"run {spec.name} ({run_id[:8]})", run_id=run_id) as pub:
        for out in spec.outputs:
            writers[out.dataset].publish(pub)
        if quarantine:
            pub.create_dataset(spec.quarantine_dataset, kind="records")
        if quarantine or lake.has_dataset(spec.quarantine_dataset):
            # The quarantine holds the rows this run set aside (its history, the earlier runs').
            pub.overwrite(spec.quarantine_dataset, _quarantine_table(quarantine, run_id))
    return pub.commits


def _quarantine_table(rows: list[RejectedRow], run_id: str) -> pa.Table:
    import json

    import pyarrow as pa

    del run_id  # the commit records the run; keeping it out lets an unchanged set publish nothing
    return pa.table(
        {
            "step": pa.array([r.step for r in rows], pa.string()),
            "error": pa.array([r.error for r in rows], pa.string()),
            "row": pa.array(
                [json.dumps(r.row, default=str, ensure_ascii=False) for r in rows], pa.string()
            ),
        }
    )


def _column_lineage(
    spec: PipelineSpec,
    planned: list[PlannedStep],
    columns: list[str] | None,
    inputs: list[str],
    outputs: list[str],
) -> dict[str, dict[str, list[list[str]]]]:
    """Output dataset -> column -> the ``[input dataset, column]`` pairs it derives from.

    Known only when the input is a dataset and every step up to the output says how its
    columns derive (``Step.column_lineage``); otherwise empty.
    """
    if len(inputs) != 1 or "://" in inputs[0] or columns is None:  # files: no columns to name
        return {}
    ids = [p.id for p in planned]
    mapping: dict[str, list[str]] = {c: [c] for c in columns}
    after: dict[int, dict[str, list[str]]] = {-1: mapping}
    for index, p in enumerate(planned):
        step_map = p.step.column_lineage(list(mapping))
        if step_map is None:
            break
        mapping = {
            out: sorted({src for col in ins for src in mapping.get(col, [])})
            for out, ins in step_map.items()
        }
        after[index] = mapping
    result: dict[str, dict[str, list[list[str]]]] = {}
    published = {ref.split("@", 1)[0] for ref in outputs}
    for out in spec.outputs:
        at = ids.index(out.after) if out.after else len(ids) - 1
        if out.dataset in published and at in after:
            result[out.dataset] = {
                col: [[inputs[0], src] for src in srcs] for col, srcs in after[at].items()
            }
    return result


def _dry_run(
    lake: Lake, spec: PipelineSpec, planned: list[PlannedStep], executor: str
) -> RunResult:
    from curata.pipeline.spec import DatasetInput

    if isinstance(spec.input, DatasetInput):
        lake.ref(spec.input.dataset)  # the input must exist
    else:
        _expand_files(spec.input.files)
    plan = [
        {
            "id": p.id,
            "step": p.step.name,
            "row_wise": p.step.is_row_wise,
            "cached": p.cache is not None,
            "cached_rows": None if p.cache is None or p.cache.is_empty else "some",
            "on_error": p.on_error,
            "fingerprint": p.step.fingerprint[:16],
        }
        for p in planned
    ]
    return RunResult(
        id="",
        pipeline=spec.name,
        status="planned",
        executor=executor,
        outputs=[o.dataset for o in spec.outputs],
        steps=[],
        rows_in=0,
        quarantined=0,
        warned=0,
        seconds=0.0,
        dry_run=True,
        plan=plan,
    )
