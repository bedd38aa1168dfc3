"""History reads: ``ds.log()`` over 1,000 versions, and ``ds.diff(a, b)`` across 1M rows.

* log: a keyless dataset gets 1,000 versions from 1,000 one-row appends; ``ds.log()`` is
  timed (median of 5; target under 1 s). For reference, Lance's own listing of the same
  dataset's versions (``lance.dataset(uri).versions()``) is timed too.
* diff: a keyed 1,000,000-row dataset (version 1) gets an upsert that changes ``score`` and
  ``label`` of 10,000 random rows, 1% (version 2); ``ds.diff(1, 2)`` is timed (median of 3;
  target under 2 s) and must count exactly those 10,000 updated rows. For reference, reading
  both versions in full with Lance (no comparison) is timed too.

With ``--profile``, one more ``log()`` and one more ``diff()`` run under cProfile, after the
timings, and the profiles are printed.

Run it from the repository root::

    python bench/bench_log_diff.py            # full size (about 30 s)
    python bench/bench_log_diff.py --quick    # 50 versions, 20k rows: checks the script works
"""

from __future__ import annotations

import harness
import lance
import numpy as np

import curata

LOG_TARGET_S = 1.0
DIFF_TARGET_S = 2.0
LOG_REPEATS = 5
DIFF_REPEATS = 3


def bench_log(
    lake: curata.Lake, rng: np.random.Generator, versions: int, profile: bool
) -> list[harness.Check]:
    """Build a dataset with ``versions`` versions and time reading its log."""
    ds = lake.create_dataset("events", kind="logs")
    rows = harness.make_rows(rng, 0, versions)
    build = harness.seconds(
        lambda: [ds.append(rows.slice(i, 1), author="bench") for i in range(versions)]
    )
    if len(ds.log()) != versions:
        raise RuntimeError(f"expected {versions} commits, found {len(ds.log())}")
    took = harness.median_seconds(ds.log, LOG_REPEATS)
    with harness.profiled(f"log() of {versions:,} versions", profile):
        ds.log()
    lance_uri = ds.head.lance_dataset().uri
    peer = harness.median_seconds(lambda: lance.dataset(lance_uri).versions(), LOG_REPEATS)
    return [
        harness.Check(f"log() of {versions:,} versions", took, "s", LOG_TARGET_S),
        harness.Check(
            "  lance versions() of the same dataset",
            peer,
            "s",
            detail=f"curata log() takes {took / peer:.2f}x of it",
        ),
        harness.Check(
            f"  (setup: {versions:,} one-row appends, per append)", build / versions, "s"
        ),
    ]


def bench_diff(
    lake: curata.Lake, rng: np.random.Generator, n_rows: int, profile: bool
) -> list[harness.Check]:
    """Time diffing two versions of an ``n_rows`` keyed dataset that differ in 1% of rows."""
    ds = lake.create_dataset("tickets", kind="records", key="id")
    ds.append(harness.make_rows(rng, 0, n_rows), author="bench")
    n_updates = n_rows // 100
    commit = ds.upsert(harness.make_updates(rng, n_rows, n_updates), author="bench")
    assert commit is not None and commit.version == 2
    result = ds.diff(1, 2)
    counted = result.changes
    if (counted.rows_updated, counted.rows_added, counted.rows_deleted) != (n_updates, 0, 0):
        raise RuntimeError(f"diff miscounted the upsert: {counted.summary()}")
    took = harness.median_seconds(lambda: ds.diff(1, 2), DIFF_REPEATS)
    with harness.profiled(f"diff(1, 2) of {n_rows:,} rows", profile):
        ds.diff(1, 2)
    old, new = ds.at(1).lance_dataset(), ds.at(2).lance_dataset()
    peer = harness.median_seconds(lambda: (old.to_table(), new.to_table()), DIFF_REPEATS)
    return [
        harness.Check(
            f"diff(1, 2), {n_rows:,} rows, {n_updates:,} updated",
            took,
            "s",
            DIFF_TARGET_S,
            detail=counted.summary(),
        ),
        harness.Check(
            "  lance: read both versions in full",
            peer,
            "s",
            detail=f"curata diff() takes {took / peer:.2f}x of it",
        ),
    ]


def main() -> None:
    args = harness.parse_args(__doc__)
    rng = harness.start("curata log() and diff()", args)
    versions, n_rows = (50, 20_000) if args.quick else (1_000, 1_000_000)
    with harness.scratch_dir() as root, curata.init(str(root / "project")) as lake:
        checks = bench_log(lake, rng, versions, args.profile)
        checks += bench_diff(lake, rng, n_rows, args.profile)
    harness.print_report(checks)


if __name__ == "__main__":
    main()
