"""Storage after churn: 100 upserts of 1% of a 100k-row dataset, then ``lake.gc()``.

A keyed 100,000-row dataset gets 100 upserts, each changing ``score`` and ``label`` of 1,000
random rows (1%). The dataset's folder is measured before and after
``lake.gc(keep_versions=1)`` and compared with one fresh copy: the head's rows alone, written
to a new Lance dataset. The target is at most 2x the fresh copy after gc.

For reference, Lance's own maintenance (``optimize.compact_files()`` then
``cleanup_old_versions``, keeping only the latest version) is run on a copy of the folder
taken before gc. If ``Lake.gc`` is not available yet (``curata.lake.maintenance`` missing),
the gc line says SKIP and the rest still runs. With ``--profile``, gc runs under cProfile (so
its time includes the profiler's overhead) and the profile is printed.

Run it from the repository root::

    python bench/bench_storage.py            # full size (about 20 s)
    python bench/bench_storage.py --quick    # 10k rows, 10 upserts: checks the script works
"""

from __future__ import annotations

import importlib.util
import shutil
import time
from datetime import timedelta

import harness
import lance
import numpy as np

import curata

TARGET_RATIO = 2.0


def lance_maintenance(uri: str) -> None:
    """Compact, then drop every version but the latest: what Lance alone can reclaim."""
    ds = lance.dataset(uri)
    ds.optimize.compact_files()
    lance.dataset(uri).cleanup_old_versions(older_than=timedelta(0), delete_unverified=True)


def churned_dataset(
    lake: curata.Lake, rng: np.random.Generator, n_rows: int, n_upserts: int
) -> curata.Dataset:
    """A keyed ``n_rows`` dataset after ``n_upserts`` upserts of 1% of its rows each."""
    ds = lake.create_dataset("tickets", kind="records", key="id")
    ds.append(harness.make_rows(rng, 0, n_rows), author="bench")
    for _ in range(n_upserts):
        ds.upsert(harness.make_updates(rng, n_rows, n_rows // 100), author="bench")
    return ds


def main() -> None:
    args = harness.parse_args(__doc__)
    rng = harness.start("curata storage after 1% upserts and gc, vs a fresh copy", args)
    n_rows, n_upserts = (10_000, 10) if args.quick else (100_000, 100)
    print(f"# {n_rows:,} rows, {n_upserts} upserts of {n_rows // 100:,} rows each")
    has_gc = importlib.util.find_spec("curata.lake.maintenance") is not None
    gc_note = "Lake.gc is not available yet (no curata.lake.maintenance)"

    with harness.scratch_dir() as root, curata.init(str(root / "project")) as lake:
        ds = churned_dataset(lake, rng, n_rows, n_upserts)
        folder = ds.head.lance_dataset().uri
        head_rows = ds.head.to_arrow()
        lance.write_dataset(head_rows, str(root / "fresh.lance"))
        fresh = harness.folder_bytes(root / "fresh.lance")
        before = harness.folder_bytes(folder)

        peer_uri = str(root / "lance-maintained.lance")
        shutil.copytree(folder, peer_uri)
        peer_seconds = harness.seconds(lambda: lance_maintenance(peer_uri))
        peer = harness.folder_bytes(peer_uri)

        after: int | None = None
        if has_gc:
            began = time.perf_counter()
            with harness.profiled("gc(keep_versions=1)", args.profile):
                report = lake.gc(keep_versions=1)
            gc_note = f", gc took {harness.format_seconds(time.perf_counter() - began)}"
            print(f"# gc: {report}")
            after = harness.folder_bytes(folder)
            if not ds.head.to_arrow().sort_by("id").equals(head_rows.sort_by("id")):
                raise RuntimeError("gc changed the head's rows")

    def versus(label: str, size: int | None, target: float | None, note: str) -> harness.Check:
        if size is None:
            return harness.Check(label, None, "x", target, note)
        detail = f"{harness.format_bytes(size)} vs {harness.format_bytes(fresh)}{note}"
        return harness.Check(label, size / fresh, "x", target, detail)

    harness.print_report(
        [
            versus("after gc(keep_versions=1): folder / fresh copy", after, TARGET_RATIO, gc_note),
            versus("before gc: folder / fresh copy", before, None, ""),
            versus(
                "  lance compact + cleanup: folder / fresh copy",
                peer,
                None,
                f", took {harness.format_seconds(peer_seconds)}",
            ),
        ]
    )


if __name__ == "__main__":
    main()
