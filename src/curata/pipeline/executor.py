"""Running steps over batches: per-row caching, retries, and what a failing row does.

:func:`apply_steps` runs the steps of a pipeline over one batch. The local executor calls it
in-process, or in a pool of worker processes when a step is CPU-heavy; the Ray executor calls
it in a pool of Ray actors. Either way the same code decides the output.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from curata.duck import error_text
from curata.errors import CurataError, InvalidInput
from curata.lake.query import duckdb_cursor
from curata.pipeline.rows import positions, row_hashes
from curata.pipeline.step import ROW_COLUMN, Step

if TYPE_CHECKING:
    import pyarrow as pa

    from curata.lake.cache import StepCache

RETRIES = 3
BACKOFF_SECONDS = 0.2


class StepFailed(CurataError):
    """A step raised on the data and its ``on_error`` is ``fail``."""


@dataclass
class PlannedStep:
    """A step with its pipeline settings and, when it is cached, its cache."""

    step: Step[Any]
    on_error: str = "fail"
    cache: StepCache | None = None

    @property
    def id(self) -> str:
        return self.step.id


@dataclass
class StepStats:
    """What one step did (summed over batches)."""

    id: str
    name: str
    rows_in: int = 0
    rows_out: int = 0
    cache_hits: int = 0
    computed: int = 0
    calls: int = 0
    errors: int = 0
    retries: int = 0
    seconds: float = 0.0

    def merge(self, other: StepStats) -> None:
        """Add another batch's numbers."""
        for name in ("rows_in", "rows_out", "cache_hits", "computed", "calls", "errors", "retries"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.seconds += other.seconds

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, as in ``curata run --json``."""
        return {
            "id": self.id,
            "name": self.name,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "cache_hits": self.cache_hits,
            "computed": self.computed,
            "calls": self.calls,
            "errors": self.errors,
            "retries": self.retries,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class RejectedRow:
    """A row a step could not process (quarantined or dropped with a warning)."""

    step: str
    action: str
    error: str
    row: dict[str, Any]
    position: int | None = None


@dataclass
class BatchResult:
    """The outputs of one batch: the table after each step that feeds an output."""

    tables: dict[str, pa.Table]
    stats: list[StepStats]
    rejected: list[RejectedRow] = field(default_factory=list)


def _is_transient(err: BaseException) -> bool:
    if isinstance(err, CurataError):
        return err.transient
    return isinstance(err, ConnectionError | TimeoutError)


def _call(step: Step[Any], table: pa.Table, stats: StepStats) -> pa.Table:
    """``step.process`` with retries (and backoff) for transient errors."""
    import pyarrow as pa

    for attempt in range(RETRIES + 1):
        try:
            stats.calls += 1
            out = step.process(table)
            return out if isinstance(out, pa.Table) else pa.Table.from_batches([out])
        except Exception as err:
            if attempt == RETRIES or not _is_transient(err):
                raise
            stats.retries += 1
            time.sleep(BACKOFF_SECONDS * 4**attempt)
    raise AssertionError("unreachable")


def _with_provenance(step: Step[Any], table: pa.Table, out: pa.Table) -> pa.Table:
    """Make sure a row-wise step's output says which input row each output row came from."""
    if ROW_COLUMN in out.column_names:
        return out
    if out.num_rows == table.num_rows:
        return out.append_column(ROW_COLUMN, table.column(ROW_COLUMN))
    raise InvalidInput(
        f"Step {step.id!r} is row-wise but returned {out.num_rows} rows for {table.num_rows} "
        f"without the {ROW_COLUMN!r} column.",
        hint=f"Keep the {ROW_COLUMN!r} column of the input on every output row, or declare the "
        "step not row-wise (python step: row_wise: false).",
    )


def _describe(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}"
    return text if len(text) < 2000 else text[:2000] + "..."


def _run_row_wise(
    planned: PlannedStep, table: pa.Table, stats: StepStats, rejected: list[RejectedRow]
) -> pa.Table:
    """Process rows (``table`` carries ``_row``); isolate failing rows when allowed."""
    try:
        return _with_provenance(planned.step, table, _call(planned.step, table, stats))
    except InvalidInput:
        raise
    except Exception as err:
        if planned.on_error == "fail":
            raise StepFailed(
                f"Step {planned.id!r} failed: {_describe(err)}",
                hint="Fix the data or the step, or set `on_error: quarantine` on the step.",
            ) from err
        if table.num_rows == 1:
            stats.errors += 1
            row = table.drop_columns([ROW_COLUMN]).to_pylist()[0]
            position = table.column(ROW_COLUMN)[0].as_py()
            rejected.append(
                RejectedRow(planned.id, planned.on_error, _describe(err), row, position)
            )
            return planned_empty(table, err)
        half = table.num_rows // 2
        left = _run_row_wise(planned, table.slice(0, half), stats, rejected)
        right = _run_row_wise(planned, table.slice(half), stats, rejected)
        return _concat([left, right])


def _call_whole(planned: PlannedStep, table: pa.Table, stats: StepStats) -> pa.Table:
    """A step over the whole input: no rows can be set aside, whatever ``on_error`` says."""
    try:
        return _call(planned.step, table, stats)
    except CurataError:
        raise
    except Exception as err:
        raise StepFailed(
            f"Step {planned.id!r} failed: {_describe(err)}",
            hint="The step takes the whole input at once, so no rows can be set aside: fix "
            "the data or the step.",
        ) from err


def _process_rows(
    planned: PlannedStep, table: pa.Table, stats: StepStats, rejected: list[RejectedRow]
) -> pa.Table:
    """:func:`_run_row_wise`; when every row failed, an empty output with the step's columns
    (asked of the step with no rows), so later steps and outputs see the right schema."""
    import pyarrow as pa

    out = _run_row_wise(planned, table, stats, rejected)
    if out.column_names != [ROW_COLUMN] or table.num_rows == 0:
        return out
    empty = table.slice(0, 0)
    try:
        shape = planned.step.process(empty)
    except Exception:  # the step cannot take no rows either: its columns stay unknown
        return out
    shape = shape if isinstance(shape, pa.Table) else pa.Table.from_batches([shape])
    return _with_provenance(planned.step, empty, shape)


def planned_empty(table: pa.Table, err: BaseException) -> pa.Table:
    """Marker for "no output for these rows" while the real schema is not known yet."""
    del err
    return table.slice(0, 0).select([ROW_COLUMN])


def _concat(tables: list[pa.Table]) -> pa.Table:
    import pyarrow as pa

    full = [t for t in tables if t.num_columns > 1]
    if not full:
        return tables[0]
    return pa.concat_tables([t for t in full], promote_options="permissive")


def _apply_cached(
    planned: PlannedStep, table: pa.Table, stats: StepStats, rejected: list[RejectedRow]
) -> pa.Table:
    """Run a row-wise step over the rows whose results are not cached yet, then put cached and
    new results together in input order."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from curata.lake.cache import HASH, KIND

    cache = planned.cache
    assert cache is not None
    if table.num_rows == 0:  # nothing to look up; the step says what its output looks like
        out = _process_rows(planned, table.append_column(ROW_COLUMN, positions(0)), stats, [])
        return out.drop_columns([ROW_COLUMN]) if ROW_COLUMN in out.column_names else out
    hashes = row_hashes(table)
    unique_hashes = pc.unique(hashes)
    cached = cache.lookup(unique_hashes)
    hit = pc.is_in(hashes, value_set=cached.column(HASH)) if cached is not None else None
    miss_mask = pc.invert(hit) if hit is not None else pa.array([True] * table.num_rows)
    # Each distinct missing row is computed once, however often it repeats.
    distinct = len(unique_hashes) == table.num_rows
    con = duckdb_cursor()
    con.register("h", pa.table({"h": hashes, "pos": positions(table.num_rows), "miss": miss_mask}))
    if distinct:
        first = pa.array(np.flatnonzero(miss_mask.to_numpy(zero_copy_only=False)))
    else:
        first = (
            con.sql("SELECT min(pos) AS pos FROM h WHERE miss GROUP BY h ORDER BY 1")
            .to_arrow_table()
            .column("pos")
        )
    todo = table.take(first).append_column(ROW_COLUMN, first)
    fresh = out = None
    if todo.num_rows:
        seen = len(rejected)
        out = _process_rows(planned, todo, stats, rejected)
        stats.computed += todo.num_rows
        failed = {r.position for r in rejected[seen:] if r.position is not None}
        fresh = _cache_rows(out, hashes, todo, cached.schema if cached is not None else None)
        # Rows the step failed on are not results: they are tried again (and quarantined
        # again) on the next run, and never served from the cache.
        cache.add(_without_parents(fresh, hashes, failed))
    stats.cache_hits += table.num_rows - int(pc.sum(miss_mask.cast(pa.int64())).as_py() or 0)
    if out is not None and cached is None and distinct and _in_order(out.column(ROW_COLUMN)):
        return out.drop_columns([ROW_COLUMN])  # every row computed here, output in input order
    known = _concat_known(cached, fresh)
    if known is None:
        return table.slice(0, 0)
    outputs = [c for c in known.column_names if c not in (HASH, KIND, "__i", "__w")]
    if len(pc.unique(known.column(HASH))) == known.num_rows:
        # At most one known row per hash (no expansion): look each input row's up directly.
        at = pc.index_in(hashes, value_set=known.column(HASH))
        rows = known.take(at.drop_null() if at.null_count else at)
        return rows.filter(pc.equal(rows.column(KIND), 1)).select(outputs)
    index = known.select([HASH, KIND, "__i"]).append_column("k", positions(known.num_rows))
    con.register("known", index)
    order = con.sql(
        "SELECT k FROM h JOIN known ON h.h = known.__h WHERE known.__k = 1 "
        "ORDER BY h.pos, known.__i"
    ).to_arrow_table()
    return known.take(order.column("k")).select(outputs)


def _in_order(parents: pa.ChunkedArray | pa.Array, *, strictly: bool = False) -> bool:
    """Whether the ``_row`` values never go down (or always go up, ``strictly``)."""
    import numpy as np

    values = parents.to_numpy()
    steps = np.diff(values)
    return bool((steps > 0).all() if strictly else (steps >= 0).all())


def _cache_rows(
    out: pa.Table, hashes: pa.ChunkedArray, todo: pa.Table, schema: pa.Schema | None
) -> pa.Table:
    """Output rows keyed by their input row's hash, plus markers for rows with no output."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from curata.lake.cache import HASH, KIND

    parents = out.column(ROW_COLUMN)
    body = out.drop_columns([ROW_COLUMN])
    if _in_order(parents, strictly=True):  # one output row per input row (a map or filter)
        rank = pa.nulls(out.num_rows, pa.int32()).fill_null(0)
    else:
        con = duckdb_cursor()
        con.register("p", pa.table({"parent": parents, "n": positions(out.num_rows)}))
        rank = (
            con.sql(
                "SELECT row_number() OVER (PARTITION BY parent ORDER BY n) - 1 AS i "
                "FROM p ORDER BY n"
            )
            .to_arrow_table()
            .column("i")
            .cast(pa.int32())
        )
    rows = (
        body.append_column(HASH, hashes.take(parents))
        .append_column(KIND, pa.array(np.ones(out.num_rows, np.int8)))
        .append_column("__i", rank)
    )
    silent = pc.invert(pc.is_in(todo.column(ROW_COLUMN), value_set=parents))
    idle = todo.filter(silent).column(ROW_COLUMN)
    if len(idle):
        markers = pa.table(
            {
                HASH: hashes.take(idle),
                KIND: pa.array([0] * len(idle), pa.int8()),
                "__i": pa.array([0] * len(idle), pa.int32()),
            }
        )
        rows = pa.concat_tables([rows, markers], promote_options="permissive")
    if schema is not None:
        target = pa.schema([f for f in schema if f.name != "__w"])
        if body.num_columns == 0:
            # Every row failed (quarantined or warned): only markers, which carry no columns.
            for f in target:
                if f.name not in rows.column_names:
                    rows = rows.append_column(f, pa.nulls(rows.num_rows, f.type))
        rows = rows.select(target.names).cast(target)
    return rows


def _without_parents(rows: pa.Table, hashes: pa.ChunkedArray, failed: set[int]) -> pa.Table:
    """Cache rows except those keyed by the hashes of failed input rows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from curata.lake.cache import HASH

    if not failed:
        return rows
    bad = hashes.take(pa.array(sorted(failed), pa.int64()))
    return rows.filter(pc.invert(pc.is_in(rows.column(HASH), value_set=bad)))


def _concat_known(cached: pa.Table | None, fresh: pa.Table | None) -> pa.Table | None:
    import pyarrow as pa

    if cached is not None:
        cached = cached.drop_columns(["__w"])
    parts = [t for t in (cached, fresh) if t is not None]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else pa.concat_tables(parts, promote_options="permissive")


def apply_steps(
    steps: list[PlannedStep],
    batch: pa.Table | pa.RecordBatch,
    taps: dict[str, int],
    gates: list[Any] | None = None,
    offset: int = 0,
) -> BatchResult:
    """Run ``steps`` over one batch.

    Args:
        steps: consecutive steps of the pipeline, in order.
        batch: input rows.
        taps: output key -> index of the step after which to capture the rows (-1: the input).
        gates: row gates to check, as ``(gate, step_index)`` pairs.
        offset: pipeline index of ``steps[0]`` (taps and gates use pipeline indices).

    Returns:
        The captured tables, per-step stats, and the rows rejected by ``on_error``/gates.
    """
    import pyarrow as pa

    table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
    stats: list[StepStats] = []
    rejected: list[RejectedRow] = []
    tables: dict[str, pa.Table] = {k: table for k, i in taps.items() if i == offset - 1}
    if offset == 0:
        table = _check_gates(gates, -1, table, rejected)
    for index, planned in enumerate(steps, start=offset):
        s = StepStats(planned.id, planned.step.name, rows_in=table.num_rows)
        started = time.perf_counter()
        if planned.cache is not None:
            table = _apply_cached(planned, table, s, rejected)
        elif planned.step.is_row_wise:
            with_row = table.append_column(ROW_COLUMN, positions(table.num_rows))
            out = _process_rows(planned, with_row, s, rejected)
            s.computed += table.num_rows
            table = out.drop_columns([ROW_COLUMN]) if ROW_COLUMN in out.column_names else out
        else:
            table = _call_whole(planned, table, s)
            s.computed += s.rows_in
        s.seconds = time.perf_counter() - started
        s.rows_out = table.num_rows
        stats.append(s)
        table = _check_gates(gates, index, table, rejected)
        for key, tap in taps.items():
            if tap == index:
                tables[key] = table
    return BatchResult(tables=tables, stats=stats, rejected=rejected)


@dataclass
class Segment:
    """Consecutive steps that stream batch by batch, with the outputs and gates among them."""

    steps: list[PlannedStep]
    taps: dict[str, int]
    gates: list[Any]
    offset: int

    def apply(self, batch: pa.Table | pa.RecordBatch) -> BatchResult:
        """Run the segment over one batch."""
        return apply_steps(self.steps, batch, self.taps, self.gates, self.offset)

    def prepare(self) -> None:
        """Let every step load what it needs (once per process)."""
        for p in self.steps:
            p.step.prepare()


def _check_gates(
    gates: list[Any] | None, index: int, table: pa.Table, rejected: list[RejectedRow]
) -> pa.Table:
    """Apply row gates placed after step ``index``: fail the run, or quarantine, or warn."""
    import duckdb
    import pyarrow.compute as pc

    from curata.errors import QualityGateFailed

    for gate, at in gates or []:
        if at != index or table.num_rows == 0:
            continue
        con = duckdb_cursor()
        con.register("batch", table.append_column("__pos", positions(table.num_rows)))
        try:
            bad = con.sql(f"SELECT __pos FROM batch WHERE ({gate.where})").to_arrow_table()
        except duckdb.Error as err:
            raise InvalidInput(
                f"Gate {gate.name!r}: the predicate failed: {error_text(err)}"
            ) from err
        if bad.num_rows == 0:
            continue
        sample = table.take(bad.column("__pos").slice(0, 1)).to_pylist()[0]
        if gate.action == "fail":
            raise QualityGateFailed(
                f"Gate {gate.name!r} failed: {bad.num_rows} row(s) match {gate.where!r}; "
                f"e.g. {sample}",
                hint="Fix the data, or set the gate's action to quarantine or warn.",
            )
        for row in table.take(bad.column("__pos")).to_pylist():
            rejected.append(RejectedRow(f"gate:{gate.name}", gate.action, gate.where, row))
        if gate.action == "quarantine":
            keep = pc.invert(pc.is_in(positions(table.num_rows), value_set=bad.column("__pos")))
            table = table.filter(keep)
    return table


def format_exception(err: BaseException) -> str:
    """Short traceback text for a run's error field."""
    return "".join(traceback.format_exception_only(type(err), err)).strip()


BatchFunction = Callable[[Any], BatchResult]
