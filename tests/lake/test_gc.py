"""`curata gc`: compaction, removal of unpublished Lance versions, pruning, and never losing a
published version. Real Lance files, on SQLite and PostgreSQL catalogs."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import lance
import pyarrow as pa
import pytest

import curata
from curata.errors import InvalidInput, NotFound, StorageError
from curata.lake import maintenance
from curata.lake.publish import PreparedAppend


def rows(ids: range | list[int], tag: str = "v") -> pa.Table:
    ids = list(ids)
    return pa.table({"id": ids, "text": [f"{tag}-{i}" for i in ids]})


def content(snapshot: curata.Snapshot) -> list[dict[str, Any]]:
    return snapshot.to_arrow().sort_by("id").to_pylist()


def storage_path(lake: curata.Lake, name: str) -> str:
    return f"{name}.lance"


def fragments(snapshot: curata.Snapshot) -> int:
    return len(snapshot.lance_dataset().get_fragments())


def files_on_disk(root: Path) -> dict[str, int]:
    return {
        os.path.relpath(os.path.join(folder, name), root): os.path.getsize(
            os.path.join(folder, name)
        )
        for folder, _, names in os.walk(root)
        for name in names
    }


def every_version(ds: curata.Dataset) -> dict[int, list[dict[str, Any]]]:
    """Content of every readable version."""
    return {c.version: content(ds.at(c.version)) for c in ds.log() if not c.pruned}


def crash_after_lance_commit(lake: curata.Lake, name: str, table: pa.Table) -> int:
    """A writer that committed to Lance and died before publishing: an orphan Lance version."""
    orphan = lance.write_dataset(table, lake.store.uri(storage_path(lake, name)), mode="append")
    return int(orphan.version)


def small_appends(lake: curata.Lake, name: str, n: int) -> curata.Dataset:
    ds = lake.create_dataset(name, key="id")
    for i in range(n):
        ds.append(rows(range(i * 10, i * 10 + 10)), message=f"batch {i}")
    return ds


def test_gc_compacts_small_fragments_and_keeps_content(lake: curata.Lake) -> None:
    ds = small_appends(lake, "events", 12)
    before = every_version(ds)
    head = ds.head
    assert fragments(head) == 12

    report = lake.gc()

    [entry] = report.datasets
    assert entry.compacted_versions == [12]
    assert (entry.fragments_before, entry.fragments_after) == (12, 1)
    assert fragments(ds.head) == 1
    assert ds.head.version == 12  # same curata version, new Lance files
    assert ds.head.commit.lance_version != head.commit.lance_version
    assert every_version(ds) == before
    assert entry.bytes_before > 0
    assert entry.bytes_after == lake.store.disk_usage(storage_path(lake, "events"))
    assert report.summary.startswith(("reclaimed ", "used "))
    assert "compacted 1 dataset," in report.summary
    assert report.to_dict()["datasets"][0]["compacted_versions"] == [12]


def test_gc_compacts_the_head_of_every_branch(lake: curata.Lake) -> None:
    ds = small_appends(lake, "events", 4)
    ds.branch("exp")
    for i in range(4):
        ds.append(rows([1000 + i]), branch="exp")
    ds.append(rows([2000]))
    before = every_version(ds)

    report = lake.gc()

    assert sorted(report.datasets[0].compacted_versions) == [
        ds.branches()["exp"],
        ds.branches()["main"],
    ]
    assert fragments(ds.at("branch:exp")) == 1
    assert fragments(ds.head) == 1
    assert every_version(ds) == before


def test_gc_skips_datasets_with_nothing_to_compact(lake: curata.Lake) -> None:
    ds = lake.create_dataset("one")  # no key: no key index, whose build leaves a Lance version
    ds.append(rows(range(100)))
    lance_version = ds.head.commit.lance_version

    report = lake.gc()

    assert report.datasets[0].compacted_versions == []
    assert ds.head.commit.lance_version == lance_version
    assert report.summary == (
        "reclaimed 0 B: compacted 0 datasets, removed 0 unpublished Lance versions, "
        "pruned 0 versions"
    )


def test_gc_removes_an_orphan_lance_version_and_its_rows(lake: curata.Lake) -> None:
    ds = lake.create_dataset("docs")  # no key: the orphan is the only unpublished version
    ds.append(rows(range(50)))
    orphan = crash_after_lance_commit(lake, "docs", rows([999], "orphan"))
    path = storage_path(lake, "docs")
    orphan_files = [
        f.path
        for frag in lake.store.open_at(path, orphan).get_fragments()
        for f in frag.metadata.files
    ]
    data_dir = Path(lake.store.uri(path)) / "data"
    assert all((data_dir / name).exists() for name in orphan_files)

    report = lake.gc()

    assert report.datasets[0].unpublished_removed == 1
    assert orphan not in lake.store.lance_versions(path)
    assert not (data_dir / orphan_files[-1]).exists()  # the orphan's own rows are gone
    assert content(ds.head) == rows(range(50)).to_pylist()

    commit = ds.append(rows([50, 51]))
    assert commit is not None and commit.rows == 52
    assert sorted(ds.head.to_arrow()["id"].to_pylist()) == list(range(52))


def test_gc_removes_leftovers_of_a_first_write_that_never_published(lake: curata.Lake) -> None:
    ds = lake.create_dataset("fresh", key="id")
    lance.write_dataset(rows([7], "orphan"), lake.store.uri(storage_path(lake, "fresh")))

    report = lake.gc()

    assert report.datasets[0].unpublished_removed == 1
    assert lake.store.lance_versions(storage_path(lake, "fresh")) == []
    ds.append(rows([1, 2]))
    assert content(ds.head) == rows([1, 2]).to_pylist()


def _age(folder: Path, seconds: float) -> None:
    """Make every file under ``folder`` look last written ``seconds`` ago."""
    then = time.time() - seconds
    for path in folder.rglob("*"):
        os.utime(path, (then, then))


def test_gc_removes_data_folders_no_dataset_owns_once_abandoned(lake: curata.Lake) -> None:
    # A run that died after writing the first rows of two new datasets, before publishing:
    # one staged (data files only), one committed to Lance (a version the catalog never got).
    lake.stage_overwrite("staged", rows(range(5)).to_reader())
    lance.write_dataset(rows([7], "orphan"), lake.store.uri("committed.lance"))
    kept = lake.create_dataset("kept", key="id")
    kept.append(rows([1]))
    data = Path(lake.uri.removeprefix("file://")) / "data"
    assert {p.name for p in data.iterdir()} == {"staged.lance", "committed.lance", "kept.lance"}

    # Written a day ago: a live run may be about to publish them.
    _age(data, 24 * 3600)
    assert lake.gc().abandoned == []
    assert {p.name for p in data.iterdir()} == {"staged.lance", "committed.lance", "kept.lance"}

    _age(data, 8 * 24 * 3600)
    dry = lake.gc(dry_run=True)
    assert sorted(a.path for a in dry.abandoned) == ["committed.lance", "staged.lance"]
    assert "2 abandoned data folders" in dry.summary
    assert (data / "staged.lance").exists()

    report = lake.gc()
    folders = report.to_dict()["abandoned_folders"]
    assert [f["path"] for f in folders] == ["committed.lance", "staged.lance"]
    assert all(f["bytes"] > 0 for f in folders)
    assert report.bytes_reclaimed is not None
    assert report.bytes_reclaimed >= sum(f["bytes"] for f in folders)
    assert {p.name for p in data.iterdir()} == {"kept.lance"}
    assert content(kept.head) == rows([1]).to_pylist()
    # The names are free for new datasets, which start from nothing.
    commit = lake.create_dataset("staged").append(rows([3]))
    assert commit is not None and (commit.version, commit.rows) == (1, 1)


def test_keep_versions_prunes_old_untagged_versions_only(lake: curata.Lake) -> None:
    ds = lake.create_dataset("labels", key="id")
    for i in range(6):  # versions 1..6 on main
        ds.upsert(rows(range(i, i + 3), f"r{i}"))
    ds.tag("prod", 2)
    ds.branch("exp", 3)
    ds.append(rows([100]), branch="exp")  # version 7, parent 3
    ds.append(rows([101]), branch="exp")  # version 8, parent 7
    before = every_version(ds)

    report = lake.gc(keep_versions=2)

    kept = {2, 5, 6, 7, 8}  # the tag, main's newest two, exp's newest two
    assert report.datasets[0].versions_pruned == [1, 3, 4]
    assert report.versions_pruned == 3
    for version in kept:
        snap = ds.at(version)
        assert snap.count_rows() == snap.commit.rows
        assert content(snap) == before[version]
    assert content(ds.at("prod")) == before[2]
    for version in (1, 3, 4):
        with pytest.raises(NotFound, match="removed by `curata gc`"):
            lake.ref(f"labels@{version}")
    log = {c.version: c.pruned for c in ds.log()}
    assert log == {v: v not in kept for v in range(1, 9)}
    assert [c.version for c in ds.log("exp")] == [8, 7, 3, 2, 1]
    with pytest.raises(NotFound):
        ds.revert(3)

    report = lake.gc(keep_versions=1)
    assert report.datasets[0].versions_pruned == [5, 7]
    assert {c.version for c in ds.log() if not c.pruned} == {2, 6, 8}


def test_keep_versions_must_be_positive(lake: curata.Lake) -> None:
    with pytest.raises(InvalidInput, match="at least 1"):
        lake.gc(keep_versions=0)


def test_dry_run_changes_nothing_and_predicts_the_real_run(lake: curata.Lake) -> None:
    ds = small_appends(lake, "events", 6)
    ds.tag("prod", 2)
    crash_after_lance_commit(lake, "events", rows([999], "orphan"))
    disk = files_on_disk(Path(lake.uri))
    log = [c.to_dict() for c in ds.log()]
    lance_versions = lake.store.lance_versions(storage_path(lake, "events"))

    plan = lake.gc(keep_versions=1, dry_run=True)

    assert files_on_disk(Path(lake.uri)) == disk
    assert [c.to_dict() for c in ds.log()] == log
    assert lake.store.lance_versions(storage_path(lake, "events")) == lance_versions
    assert plan.dry_run and plan.bytes_after is None and plan.bytes_reclaimed is None
    assert plan.summary.startswith("dry run, nothing changed: would compact 1 dataset, ")

    done = lake.gc(keep_versions=1)

    [want], [got] = plan.datasets, done.datasets
    assert got.compacted_versions == want.compacted_versions == [6]
    assert got.versions_pruned == want.versions_pruned == [1, 3, 4, 5]
    assert got.unpublished_removed == want.unpublished_removed
    assert got.lance_versions_removed == want.lance_versions_removed
    # The plan cannot foresee that indexing the appended keys first lets Lance merge every
    # fragment, so its estimate may be higher than what happens.
    assert got.fragments_after == 1 <= want.fragments_after


def test_gc_twice_finds_nothing_the_second_time(lake: curata.Lake) -> None:
    ds = small_appends(lake, "events", 5)
    crash_after_lance_commit(lake, "events", rows([999], "orphan"))
    lake.gc(keep_versions=1)

    again = lake.gc(keep_versions=1)

    assert again.to_dict()["datasets"][0] | {"bytes_before": 0, "bytes_after": 0} == {
        "dataset": "events",
        "fragments_before": 1,
        "fragments_after": 1,
        "compacted_versions": [],
        "lance_versions_removed": 0,
        "unpublished_lance_versions_removed": 0,
        "versions_pruned": [],
        "bytes_before": 0,
        "bytes_after": 0,
        "bytes_reclaimed": 0,
    }
    assert content(ds.head) == rows(range(50)).to_pylist()


def test_every_write_works_after_gc(lake: curata.Lake) -> None:
    ds = small_appends(lake, "events", 5)
    crash_after_lance_commit(lake, "events", rows([999], "orphan"))
    lake.gc(keep_versions=1)

    ds.append(rows([50]))
    ds.upsert(rows([0, 51], "new"))
    ds.delete("id = 1")
    expected = {r["id"]: r["text"] for r in rows(range(51)).to_pylist()}
    expected |= {0: "new-0", 51: "new-51"}
    del expected[1]
    assert {r["id"]: r["text"] for r in content(ds.head)} == expected
    assert ds.head.commit.rows == len(expected)
    ds.revert(6)
    assert content(ds.head) == rows(range(51)).to_pylist()


def test_gc_keeps_the_files_of_an_append_in_flight(lake: curata.Lake) -> None:
    """Appends write their data files before taking the lock; gc must not delete them."""
    ds = lake.create_dataset("logs", key="id")
    ds.append(rows(range(10)))
    head = ds.head
    table = rows([10, 11])
    prepared = PreparedAppend(
        table=table,
        fragments=lake.store.write_fragments(head.lance_dataset(), table),
        lance_version=head.commit.lance_version,
    )

    lake.gc(keep_versions=1)
    with lake.publish(message="late commit") as pub:
        pub.append_prepared("logs", prepared)

    assert content(ds.head) == rows(range(12)).to_pylist()


def test_a_failed_compaction_publishes_nothing(
    lake: curata.Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = small_appends(lake, "events", 4)
    before = every_version(ds)
    real_compact = lake.store.compact

    def lossy_compact(lance_ds: Any) -> Any:
        compacted = real_compact(lance_ds)
        compacted.delete("id = 0")
        return lake.store.open_at_latest(compacted)

    monkeypatch.setattr(lake.store, "compact", lossy_compact)
    with pytest.raises(StorageError, match="instead of 40"):
        lake.gc()
    monkeypatch.undo()

    assert every_version(ds) == before
    lake.gc()
    assert every_version(ds) == before
    assert fragments(ds.head) == 1


def test_a_gc_that_dies_before_removing_data_leaves_every_version_readable(
    lake: curata.Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = small_appends(lake, "events", 4)
    before = every_version(ds)

    def die(*_: Any) -> list[int]:
        raise StorageError("killed")

    monkeypatch.setattr(maintenance, "_remove_unreferenced", die)
    with pytest.raises(StorageError, match="killed"):
        lake.gc(keep_versions=1)
    monkeypatch.undo()

    assert every_version(ds) == {4: before[4]}
    bytes_before = lake.store.disk_usage(storage_path(lake, "events"))
    report = lake.gc(keep_versions=1)
    assert report.datasets[0].lance_versions_removed > 0
    assert lake.store.disk_usage(storage_path(lake, "events")) < bytes_before
    assert every_version(ds) == {4: before[4]}


def test_gc_on_an_empty_lake(lake: curata.Lake) -> None:
    lake.create_dataset("empty")
    report = lake.gc()
    assert report.bytes_reclaimed == 0
    assert report.to_dict()["datasets"][0]["lance_versions_removed"] == 0


def test_disk_after_many_small_upserts_and_gc_is_near_one_copy(
    lake: curata.Lake, tmp_path: Path
) -> None:
    n = 10_000
    ds = lake.create_dataset("big", key="id")
    ds.append(pa.table({"id": range(n), "text": [f"row {i} " + "x" * 40 for i in range(n)]}))
    for step in range(100):
        ids = list(range(step * 100, step * 100 + 100))  # 1% of the rows each time
        ds.upsert(pa.table({"id": ids, "text": [f"row {i} step {step}" for i in ids]}))
    final = ds.head.to_arrow()
    lance.write_dataset(final, str(tmp_path / "fresh.lance"))
    fresh = sum(files_on_disk(tmp_path / "fresh.lance").values())
    before = lake.store.disk_usage(storage_path(lake, "big"))

    report = lake.gc(keep_versions=1)

    after = lake.store.disk_usage(storage_path(lake, "big"))
    assert report.bytes_reclaimed == before - after
    assert after <= 2 * fresh, f"{after} bytes after gc for {fresh} bytes of data"
    assert content(ds.head) == final.sort_by("id").to_pylist()


def test_a_tag_moved_while_gc_runs_waits_and_cannot_land_on_a_pruned_version(
    lake: curata.Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Moving a tag takes the dataset lock, so it waits for gc; once gc has pruned the version
    it aimed at, the move is refused instead of leaving a tag on removed data."""
    import threading

    ds = small_appends(lake, "events", 3)
    ds.tag("late", 3)
    before = every_version(ds)
    real_compact_heads = maintenance._compact_heads
    outcome: dict[str, BaseException | None] = {}
    mover: list[threading.Thread] = []

    def move_tag() -> None:
        try:
            lake.dataset("events").tag("late", 1)
            outcome["error"] = None
        except BaseException as err:
            outcome["error"] = err

    def move_tag_meanwhile(*args: Any) -> None:
        mover.append(threading.Thread(target=move_tag))
        mover[0].start()
        mover[0].join(timeout=1.0)
        assert mover[0].is_alive(), "the tag moved while gc held the dataset lock"
        real_compact_heads(*args)

    monkeypatch.setattr(maintenance, "_compact_heads", move_tag_meanwhile)
    report = lake.gc(keep_versions=1)
    mover[0].join(timeout=30)

    assert report.datasets[0].versions_pruned == [1, 2]
    assert isinstance(outcome["error"], curata.NotFound)
    assert "removed by `curata gc`" in str(outcome["error"])
    assert content(ds.at("late")) == before[3]


def test_sizes_read_like_people_write_them() -> None:
    assert maintenance.format_bytes(0) == "0 B"
    assert maintenance.format_bytes(999) == "999 B"
    assert maintenance.format_bytes(12_345_678) == "12.3 MB"
    assert maintenance.format_bytes(-1_500) == "-1.5 kB"


def _append_one_by_one(lake_uri: str, ids: list[int]) -> None:
    with curata.open(lake_uri) as lake:
        ds = lake.dataset("events")
        for i in ids:
            ds.append(rows([i]))


@pytest.mark.slow
def test_gc_racing_writers_loses_nothing(lake: curata.Lake) -> None:
    """Writers in other processes append (files first, then lock and publish) while gc runs
    again and again: every append lands, and every kept version reads back exactly."""
    ds = lake.create_dataset("events", key="id")
    ds.append(rows([-1]))
    batches = [list(range(k * 1000, k * 1000 + 40)) for k in range(2)]
    spawn = multiprocessing.get_context("spawn")
    writers = [spawn.Process(target=_append_one_by_one, args=(lake.uri, b)) for b in batches]
    for writer in writers:
        writer.start()
    runs = 0
    while any(w.is_alive() for w in writers) or runs < 3:
        lake.gc(keep_versions=3)
        runs += 1
    for writer in writers:
        writer.join()
        assert writer.exitcode == 0
    lake.gc(keep_versions=3)

    assert sorted(ds.head.to_arrow()["id"].to_pylist()) == [-1, *batches[0], *batches[1]]
    for commit in ds.log():
        if not commit.pruned:
            assert ds.at(commit.version).count_rows() == commit.rows


def test_a_version_with_a_recorded_usage_is_kept_like_a_tagged_one(lake: curata.Lake) -> None:
    ds = small_appends(lake, "events", 4)
    lake.record_usage("events@2", consumer="model:support-bot@1", purpose="training")
    trained_on = content(ds.at(2))

    report = lake.gc(keep_versions=1)

    assert report.datasets[0].versions_pruned == [1, 3]
    assert content(ds.at(2)) == trained_on
