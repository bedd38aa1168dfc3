"""Pipelines: the local executor against a plain Python loop, incremental re-runs, and memory.

* overhead: a 1,000,000-row dataset and a pipeline of one trivial ``python`` step
  (:func:`add_length`: one column, the length of ``text``), run with ``run_pipeline``,
  against a plain Python loop doing the same job: read the snapshot's batches (65,536 rows),
  call the same function on each, stream the results into a new Lance dataset. Each is timed
  3 times, alternating, each time into a new output (median). The target (1.10x) is for the
  local executor in this process with ``no_cache`` (the streaming, staging and publishing
  machinery). For information: with per-row caching (the default; each repeat gets a new
  step fingerprint, so it is a first run that hashes every row and fills the cache), in this
  process and with the default pool of worker processes.
* incremental: a first run (default settings) over the 1M rows, then 1% of the rows (10,000)
  get a new ``text`` and the pipeline runs again. The step function counts the rows it
  receives (in every worker process, through a file); target: the re-run's rows are at most
  3% of the first run's. For information: the re-run's wall time against the first run's.
* memory: 10,000,000 generated rows (ten appends of 1M) and a 4-step pipeline (``sql`` filter
  and lower-case, ``python`` :func:`add_length`, ``cast``, ``select``) run as ``curata run``
  runs it, in a subprocess with the default settings (per-row cache, a pool of worker
  processes): a first run into a new output, then, after 1% of the input rows changed, a
  re-run that replaces it. Peak RSS of each: the largest sum over the subprocess and its
  workers, sampled from /proc every 50 ms (target under 2 GiB), with the peaks of the run's
  own process and of its largest worker; for information, the largest single process of both
  runs, from the same samples (not ``getrusage(RUSAGE_CHILDREN).ru_maxrss``: a process spawned
  by this one inherits this one's peak, carried through its fork and exec).

With ``--profile``, one more in-process ``no_cache`` run and one cached first run are profiled
after the timings.

Run it from the repository root::

    python bench/bench_pipeline.py            # full size (about 10 minutes)
    python bench/bench_pipeline.py --quick    # 20k rows, 100k for memory: checks the script
    python bench/bench_pipeline.py --memory-only   # only the 10M-row memory part
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import harness

# Lance logs a warning for each dataset it creates; curata quiets it, but only if it is set
# before Lance is first imported (here, by this script).
os.environ.setdefault("LANCE_LOG", "error")

import lance
import pyarrow as pa
import pyarrow.compute as pc

import curata
from curata.pipeline.run import run_pipeline
from curata.pipeline.spec import parse_pipeline

OVERHEAD_TARGET = 1.10
RERUN_TARGET = 0.03
RSS_TARGET = 2 * 2**30
REPEATS = 3
BATCH_ROWS = 65_536
STEP_LOG = "CURATA_BENCH_STEP_LOG"
MEMORY_ONLY = "--memory-only"


def add_length(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The trivial step: a column ``n_chars`` with the length of ``text``."""
    return batch.append_column("n_chars", pc.utf8_length(batch.column("text")))


def add_length_counted(batch: pa.RecordBatch) -> pa.RecordBatch:
    """:func:`add_length`, appending the number of rows received to ``$CURATA_BENCH_STEP_LOG``."""
    with open(os.environ[STEP_LOG], "a", encoding="utf-8") as log:
        log.write(f"{batch.num_rows}\n")
    return add_length(batch)


def one_step(output: str, function: str = "add_length", version: str = "1") -> dict[str, Any]:
    """A pipeline of one python step over ``src``."""
    return {
        "name": "bench",
        "input": "src",
        "steps": [
            {
                "step": "python",
                "id": "length",
                "params": {"function": f"bench_pipeline:{function}", "version": version},
            }
        ],
        "output": output,
    }


# -- overhead ----------------------------------------------------------------------------------


def plain_loop(lake: curata.Lake, uri: str) -> None:
    """The peer: the same batches through the same function into a Lance dataset."""
    snapshot = lake.ref("src")
    schema = add_length(pa.RecordBatch.from_pylist([], snapshot.to_arrow().schema)).schema

    def results() -> Any:
        for batch in snapshot.to_batches(batch_size=BATCH_ROWS):
            yield add_length(batch)

    lance.write_dataset(pa.RecordBatchReader.from_batches(schema, results()), uri)


def bench_overhead(lake: curata.Lake, root: Path, rows: int, profile: bool) -> list[harness.Check]:
    variants: dict[str, dict[str, Any]] = {
        "no_cache": {"no_cache": True, "workers": 1},
        "cached": {"workers": 1},
        "default": {},
    }
    times: dict[str, list[float]] = {name: [] for name in ["plain", *variants]}
    for repeat in range(REPEATS):
        order = ["plain", *variants]
        shift = repeat % len(order)
        for name in order[shift:] + order[:shift]:
            if name == "plain":
                uri = str(root / f"plain-{repeat}.lance")
                times[name].append(harness.seconds(lambda uri=uri: plain_loop(lake, uri)))
                continue
            # A new output and a new fingerprint each time: a first run, into a new dataset.
            spec = parse_pipeline(one_step(f"out_{name}_{repeat}", version=f"{name}-{repeat}"))
            options = variants[name]
            times[name].append(
                harness.seconds(lambda s=spec, o=options: run_pipeline(lake, s, **o))
            )
    with harness.profiled("run_pipeline, no_cache, in this process", profile):
        run_pipeline(lake, parse_pipeline(one_step("out_profiled")), no_cache=True, workers=1)
    with harness.profiled("run_pipeline, cached first run, in this process", profile):
        run_pipeline(lake, parse_pipeline(one_step("out_profiled_2", version="p")), workers=1)

    median = {name: statistics.median(ts) for name, ts in times.items()}
    peer = median["plain"]

    def versus(name: str, label: str, target: float | None) -> harness.Check:
        detail = f"{harness.format_seconds(median[name])} vs {harness.format_seconds(peer)}"
        return harness.Check(label, median[name] / peer, "x", target, detail)

    label = f"{rows:,} rows, 1 step, in process, no cache: run / loop"
    return [
        versus("no_cache", label, OVERHEAD_TARGET),
        versus("cached", "same, per-row cache on (first run): run / loop", None),
        versus("default", "same, defaults (cache, pool of workers): run / loop", None),
    ]


# -- incremental re-run ------------------------------------------------------------------------


def bench_rerun(lake: curata.Lake, root: Path, rng: Any, rows: int) -> list[harness.Check]:
    log = root / "step-rows.log"
    os.environ[STEP_LOG] = str(log)
    spec = parse_pipeline(one_step("incremental", function="add_length_counted"))
    first_s = harness.seconds(lambda: run_pipeline(lake, spec))
    first = _rows_logged(log)
    changed = max(1, rows // 100)
    ids = pa.array(sorted(rng.choice(rows, changed, replace=False)), pa.int64())
    edits = harness.make_rows(rng, 0, changed).set_column(0, "id", ids)
    lake.dataset("src").upsert(edits.select(["id", "text"]), message="1% new text")
    log.unlink()
    second_s = harness.seconds(lambda: run_pipeline(lake, spec))
    second = _rows_logged(log)
    return [
        harness.Check(
            f"re-run after {changed:,} of {rows:,} rows changed: step rows / first run's",
            second / first,
            "%",
            RERUN_TARGET,
            f"{second:,} vs {first:,} rows",
        ),
        harness.Check(
            "same, wall time: re-run / first run",
            second_s / first_s,
            "x",
            None,
            f"{harness.format_seconds(second_s)} vs {harness.format_seconds(first_s)}",
        ),
    ]


def _rows_logged(log: Path) -> int:
    return sum(int(n) for n in log.read_text().split())


# -- memory ------------------------------------------------------------------------------------

FOUR_STEPS = """\
name: bench-10m
input: src
steps:
  - step: sql
    id: english-lower
    params: {query: "SELECT id, lower(text) AS text, label, score FROM batch WHERE score < 0.9"}
  - step: python
    id: length
    params: {function: "bench_pipeline:add_length"}
  - step: cast
    id: narrow
    params: {columns: {score: float32, n_chars: int16}}
  - step: select
    id: columns
    params: {columns: [id, label, text, n_chars, score]}
output: out
"""


def bench_memory(root: Path, rng: Any, rows: int) -> list[harness.Check]:
    lake_path = root / "big"
    with curata.init(str(lake_path)) as lake:
        ds = lake.create_dataset("src", key="id")
        chunk = min(rows, 1_000_000)
        for first_id in range(0, rows, chunk):
            ds.append(harness.make_rows(rng, first_id, chunk), author="bench")
        lake_uri = lake.uri
    pipeline = root / "four-steps.yaml"
    pipeline.write_text(FOUR_STEPS)
    first_peak, first_s, first, first_parts = _run_measured(lake_uri, pipeline)
    # The usual next run: 1% of the input changed, the output exists and is replaced.
    with curata.open(lake_uri) as lake:
        changed = rows // 100
        ids = pa.array(sorted(rng.choice(rows, changed, replace=False)), pa.int64())
        edits = harness.make_rows(rng, 0, changed).set_column(0, "id", ids)
        lake.dataset("src").upsert(edits.select(["id", "text"]), message="1% new text")
    again_peak, again_s, again, again_parts = _run_measured(lake_uri, pipeline)
    largest = max(*first_parts, *again_parts)

    def detail(result: dict[str, Any], took: float, peak: int, parts: tuple[int, int]) -> str:
        hits = sum(s["cache_hits"] for s in result["steps"])
        rows_in = sum(s["rows_in"] for s in result["steps"])
        return (
            f"{result['steps'][-1]['rows_out']:,} rows out in {took:.0f} s, "
            f"{hits / rows_in:.0%} of step rows from the cache; peak {peak / 2**20:,.0f} MiB; "
            f"run alone {harness.format_bytes(parts[0])}, "
            f"largest worker {harness.format_bytes(parts[1])}"
        )

    return [
        harness.Check(
            f"{rows:,} rows, 4 steps, defaults, first run: peak RSS, run + workers",
            first_peak,
            "B",
            RSS_TARGET,
            detail(first, first_s, first_peak, first_parts),
        ),
        harness.Check(
            "same, re-run after 1% of the input changed",
            again_peak,
            "B",
            RSS_TARGET,
            detail(again, again_s, again_peak, again_parts),
        ),
        harness.Check("both runs: largest single process", largest, "B", None),
    ]


def _run_measured(
    lake_uri: str, pipeline: Path
) -> tuple[int, float, dict[str, Any], tuple[int, int]]:
    """Run the pipeline in a subprocess: its peak RSS (with its workers), seconds, result, and
    the peaks of the subprocess alone and of its largest worker."""
    child = subprocess.Popen(
        [sys.executable, __file__, "--child", lake_uri, str(pipeline)],
        stdout=subprocess.PIPE,
        text=True,
    )
    peak = _PeakRss(child.pid)
    began = time.perf_counter()
    out, _ = child.communicate()
    took = time.perf_counter() - began
    peak.stop()
    if child.returncode != 0:
        raise RuntimeError(f"the pipeline subprocess failed (exit {child.returncode})")
    result: dict[str, Any] = json.loads(out.splitlines()[-1])
    workers = [n for pid, n in peak.each.items() if pid != child.pid]
    return peak.bytes, took, result, (peak.each.get(child.pid, 0), max(workers, default=0))


class _PeakRss:
    """Samples the summed RSS of a process and its descendants until stopped (and the peak of
    each process)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.bytes = 0
        self.each: dict[int, int] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._done.wait(0.05):
            tree = _descendants(self.pid) | {self.pid}
            total = 0
            for pid in tree:
                try:
                    rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
                except (OSError, IndexError, ValueError):
                    continue
                total += rss
                self.each[pid] = max(self.each.get(pid, 0), rss)
            self.bytes = max(self.bytes, total)


def _descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def run_child(lake_uri: str, pipeline: str) -> None:
    """The memory benchmark's subprocess: run the pipeline as ``curata run`` would."""
    with curata.open(lake_uri) as lake:
        result = run_pipeline(lake, pipeline)
    print(json.dumps(result.to_dict()))


# -- main --------------------------------------------------------------------------------------


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        run_child(sys.argv[2], sys.argv[3])
        return
    memory_only = MEMORY_ONLY in sys.argv
    if memory_only:  # an option of this script only, which harness.parse_args does not know
        sys.argv.remove(MEMORY_ONLY)
    args = harness.parse_args(__doc__)
    rng = harness.start("curata pipelines vs a plain Python loop", args)
    rows, big = (20_000, 100_000) if args.quick else (1_000_000, 10_000_000)
    checks: list[harness.Check] = []
    if memory_only:
        print(f"# memory only: {big:,} rows")
    else:
        print(f"# overhead and re-run: {rows:,} rows; memory: {big:,} rows")
        checks += bench_small(rng, rows, args.profile)
    with harness.scratch_dir() as root:
        checks += bench_memory(root, rng, big)
    harness.print_report(checks)


def bench_small(rng: Any, rows: int, profile: bool) -> list[harness.Check]:
    """The overhead and incremental re-run checks, on one lake of ``rows`` rows."""
    with harness.scratch_dir() as root, curata.init(str(root / "project")) as lake:
        lake.create_dataset("src", key="id").append(
            harness.make_rows(rng, 0, rows), author="bench", message="rows"
        )
        return bench_overhead(lake, root, rows, profile) + bench_rerun(lake, root, rng, rows)


if __name__ == "__main__":
    main()
