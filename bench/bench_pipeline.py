"""Pipelines: executor overhead, incremental re-runs, and memory on a large input.

* overhead: a pipeline with one trivial ``python`` step (cache off, one worker) over a
  1,000,000-row dataset into a new output, against a plain Python loop doing the same work by
  hand: read the same batches with Lance, call the same function, write the result with
  ``lance.write_dataset``. Median of 3 interleaved rounds; target ratio <= 1.10.
* re-run: the same step with its cache on; after the first run, 1% of the input rows change
  (an upsert of 10,000 rows); the second run must hand the step at most 3% of the rows the
  first run did (the rows the step's function receives are counted).
* memory: a 4-step pipeline (sql filter, python, rename, cast) over 10,000,000 generated rows
  runs in a separate ``curata run`` process; its peak RSS must stay under 2 GB.

Run it from the repository root::

    python bench/bench_pipeline.py            # full size (several minutes)
    python bench/bench_pipeline.py --quick    # small sizes: checks the script works
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import harness
import lance
import pyarrow as pa

import curata
from curata.pipeline import run_pipeline

OVERHEAD_TARGET = 1.10
RERUN_TARGET = 0.03
RSS_TARGET_BYTES = 2 * 10**9
ROUNDS = 3

STEP_MODULE = '''
"""Steps of the pipeline benchmark."""
import pyarrow.compute as pc

ROWS_SEEN = [0]


def trivial(batch):
    """Count the rows and hand the batch back with one cheap derived column replaced."""
    ROWS_SEEN[0] += batch.num_rows
    return batch


def score_up(batch):
    """A cheap per-row computation."""
    index = batch.schema.get_field_index("score")
    return batch.set_column(index, "score", pc.add(batch.column("score"), 1.0))
'''


def pipeline(input_ref: str, output: str, *, cache: bool) -> dict[str, object]:
    return {
        "name": f"bench-{output}",
        "input": input_ref,
        "steps": [
            {
                "step": "python",
                "id": "trivial",
                "cache": cache,
                "params": {"function": "bench_steps:trivial"},
            }
        ],
        "output": output,
    }


def bench_overhead(lake: curata.Lake, n_rows: int, rng: object) -> list[harness.Check]:
    import bench_steps

    from curata.pipeline import parse_pipeline

    source = lake.create_dataset("events")
    source.append(harness.make_rows(rng, 0, n_rows), author="bench")  # type: ignore[arg-type]
    snapshot = lake.ref("events")
    scratch = Path(lake.uri).parent / "peer"
    curata_times, peer_times = [], []
    for n in range(ROUNDS):
        spec = parse_pipeline(pipeline("events", f"out{n}", cache=False))
        curata_times.append(
            harness.seconds(lambda spec=spec: run_pipeline(lake, spec, workers=1, no_cache=True))
        )

        def by_hand(n: int = n) -> None:
            batches = (bench_steps.trivial(b) for b in snapshot.to_batches(batch_size=65_536))
            reader = pa.RecordBatchReader.from_batches(snapshot.schema, batches)
            lance.write_dataset(reader, str(scratch / f"out{n}.lance"))

        peer_times.append(harness.seconds(by_hand))
    ours, theirs = sorted(curata_times)[1], sorted(peer_times)[1]
    return [
        harness.Check(
            f"pipeline, trivial step, {n_rows:,} rows: curata / plain loop",
            ours / theirs,
            "x",
            OVERHEAD_TARGET,
            detail=f"{harness.format_seconds(ours)} vs {harness.format_seconds(theirs)}",
        )
    ]


def bench_rerun(lake: curata.Lake, n_rows: int, rng: object) -> list[harness.Check]:
    import bench_steps

    from curata.pipeline import parse_pipeline

    source = lake.create_dataset("tickets", key="id")
    source.append(harness.make_rows(rng, 0, n_rows), author="bench")  # type: ignore[arg-type]
    spec = parse_pipeline(pipeline("tickets", "tickets_out", cache=True))
    bench_steps.ROWS_SEEN[0] = 0
    run_pipeline(lake, spec, workers=1)
    first = bench_steps.ROWS_SEEN[0]
    changed = n_rows // 100
    source.upsert(harness.make_updates(rng, n_rows, changed), author="bench")  # type: ignore[arg-type]
    bench_steps.ROWS_SEEN[0] = 0
    second_run = harness.seconds(lambda: run_pipeline(lake, spec, workers=1))
    second = bench_steps.ROWS_SEEN[0]
    return [
        harness.Check(
            f"re-run after {changed:,} of {n_rows:,} rows changed: step rows, 2nd / 1st",
            second / first,
            "x",
            RERUN_TARGET,
            detail=f"{second:,} vs {first:,} rows; "
            f"2nd run took {harness.format_seconds(second_run)}",
        )
    ]


def bench_memory(root: Path, n_rows: int, rng: object, env: dict[str, str]) -> list[harness.Check]:
    lake_dir = root / "big"
    with curata.init(str(lake_dir)) as lake:
        ds = lake.create_dataset("events")
        chunk = 1_000_000 if n_rows >= 1_000_000 else n_rows
        for first in range(0, n_rows, chunk):
            ds.append(harness.make_rows(rng, first, chunk), author="bench")  # type: ignore[arg-type]
    spec = root / "four-steps.yaml"
    spec.write_text(
        textwrap.dedent(
            """\
            name: four-steps
            input: events
            steps:
              - step: sql
                params: {query: "SELECT id, text, label, score FROM batch WHERE label <> 'other'"}
              - step: python
                params: {function: "bench_steps:score_up"}
              - step: rename
                params: {columns: {text: body}}
              - step: cast
                params: {columns: {score: float32}}
            output: events_clean
            """
        )
    )
    command = [str(Path(sys.executable).parent / "curata"), "--lake", str(lake_dir), "run"]
    took = harness.seconds(
        lambda: subprocess.run(
            [*command, str(spec), "--workers", "1", "--json"],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
    )
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return [
        harness.Check(
            f"4-step pipeline over {n_rows:,} rows: peak RSS / 2 GB",
            peak / RSS_TARGET_BYTES,
            "x",
            1.0,
            detail=f"{harness.format_bytes(peak)} peak, run took {harness.format_seconds(took)}",
        )
    ]


def main() -> None:
    args = harness.parse_args(__doc__)
    rng = harness.start("curata pipelines", args)
    n_rows, big_rows = (20_000, 200_000) if args.quick else (1_000_000, 10_000_000)
    with harness.scratch_dir() as root:
        (root / "bench_steps.py").write_text(STEP_MODULE)
        sys.path.insert(0, str(root))
        env = dict(os.environ, PYTHONPATH=f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
        with curata.init(str(root / "project")) as lake:
            checks = bench_overhead(lake, n_rows, rng)
            checks += bench_rerun(lake, n_rows, rng)
        checks += bench_memory(root, big_rows, rng, env)
    harness.print_report(checks)


if __name__ == "__main__":
    main()
