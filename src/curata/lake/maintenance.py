"""Garbage collection (``curata gc``): give disk space back without losing a published version.

Per dataset, under its write lock:

- branch heads with many small fragments are compacted; the head's commit then points at the
  compacted Lance version (same rows, same curata version number);
- Lance versions that no commit references are removed: orphans of writers that died before
  publishing, restore steps, heads from before compaction;
- with ``keep_versions=N``, versions other than the newest N of each branch, the branch heads and
  the tagged versions are pruned: they stay in the log, marked pruned, and their data goes;
- data folders that no dataset owns and that nobody wrote to for ``ABANDONED_AFTER`` (7 days)
  are removed: the first rows of a new dataset, staged or committed to Lance by a writer that
  died before its catalog transaction created the dataset. A younger folder may belong to a
  writer that is about to publish.

Each dataset takes two transactions. The first compacts and records the catalog changes; the
second removes data only the catalog no longer references. A crash at any point therefore
leaves every published version readable, and at worst garbage for the next run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from curata.errors import InvalidInput, StorageError
from curata.lake import history
from curata.lake import schema as t
from curata.lake.catalog import utcnow
from curata.lake.refs import MAIN
from curata.lake.registry import lock_name

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from curata.lake.lake import Lake
    from curata.lake.storage import LanceStore


ABANDONED_AFTER = 7 * 24 * 3600  # seconds; Lance waits as long before removing unverified files


@dataclass
class AbandonedFolder:
    """A data folder no dataset owns, removed by gc (or that would be, in a dry run)."""

    path: str
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"path": self.path, "bytes": self.bytes}


@dataclass
class DatasetGc:
    """What gc did to one dataset, or would do in a dry run.

    Attributes:
        fragments_before: fragments of the branch heads' data before compaction.
        fragments_after: the same after compaction (Lance's estimate in a dry run).
        compacted_versions: curata versions (branch heads) whose data was compacted.
        lance_versions_removed: Lance versions removed, including those of pruned versions.
        unpublished_removed: of those, versions no curata version needed (orphans of crashed
            writers, restore steps, heads from before compaction).
        versions_pruned: curata versions whose data was removed (they stay in the log).
        bytes_before: bytes stored for the dataset before gc.
        bytes_after: bytes stored after gc; None in a dry run.
    """

    name: str
    fragments_before: int = 0
    fragments_after: int = 0
    compacted_versions: list[int] = field(default_factory=list)
    lance_versions_removed: int = 0
    unpublished_removed: int = 0
    versions_pruned: list[int] = field(default_factory=list)
    bytes_before: int = 0
    bytes_after: int | None = None

    @property
    def bytes_reclaimed(self) -> int | None:
        """Bytes given back (negative when compaction wrote more than it freed); None in a dry
        run."""
        return None if self.bytes_after is None else self.bytes_before - self.bytes_after

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "dataset": self.name,
            "fragments_before": self.fragments_before,
            "fragments_after": self.fragments_after,
            "compacted_versions": self.compacted_versions,
            "lance_versions_removed": self.lance_versions_removed,
            "unpublished_lance_versions_removed": self.unpublished_removed,
            "versions_pruned": self.versions_pruned,
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
            "bytes_reclaimed": self.bytes_reclaimed,
        }


@dataclass
class GcReport:
    """What :func:`collect_garbage` did (or would do, with ``dry_run``) to every dataset.

    ``str(report)`` is a one-line summary; :meth:`to_dict` is what ``--json`` prints.
    """

    dry_run: bool
    keep_versions: int | None
    datasets: list[DatasetGc] = field(default_factory=list)
    abandoned: list[AbandonedFolder] = field(default_factory=list)

    @property
    def bytes_before(self) -> int:
        """Bytes stored for all datasets (and abandoned folders) before gc."""
        return sum(d.bytes_before for d in self.datasets) + sum(a.bytes for a in self.abandoned)

    @property
    def bytes_after(self) -> int | None:
        """Bytes stored after gc; None in a dry run."""
        return None if self.dry_run else sum(d.bytes_after or 0 for d in self.datasets)

    @property
    def bytes_reclaimed(self) -> int | None:
        """Bytes given back (negative when compaction wrote more than it freed); None in a dry
        run."""
        after = self.bytes_after
        return None if after is None else self.bytes_before - after

    @property
    def datasets_compacted(self) -> int:
        """Datasets with at least one compacted branch head."""
        return sum(1 for d in self.datasets if d.compacted_versions)

    @property
    def lance_versions_removed(self) -> int:
        """Lance versions removed, including those of pruned versions."""
        return sum(d.lance_versions_removed for d in self.datasets)

    @property
    def unpublished_removed(self) -> int:
        """Lance versions removed that no curata version needed."""
        return sum(d.unpublished_removed for d in self.datasets)

    @property
    def versions_pruned(self) -> int:
        """curata versions whose data was removed."""
        return sum(len(d.versions_pruned) for d in self.datasets)

    @property
    def summary(self) -> str:
        """One line for people, e.g. ``reclaimed 12.3 MB: compacted 3 datasets, removed 41
        unpublished Lance versions, pruned 0 versions``."""
        compacted = _count(self.datasets_compacted, "dataset")
        removed = _count(self.unpublished_removed, "unpublished Lance version")
        if self.abandoned:
            removed += " and " + _count(len(self.abandoned), "abandoned data folder")
        pruned = _count(self.versions_pruned, "version")
        if self.dry_run:
            return (
                f"dry run, nothing changed: would compact {compacted}, remove {removed}, "
                f"prune {pruned} ({format_bytes(self.bytes_before)} stored now)"
            )
        work = f"compacted {compacted}, removed {removed}, pruned {pruned}"
        reclaimed = self.bytes_reclaimed or 0
        if reclaimed >= 0:
            return f"reclaimed {format_bytes(reclaimed)}: {work}"
        return (
            f"used {format_bytes(-reclaimed)} more: {work} "
            "(older versions still need the files that compaction replaced)"
        )

    def __str__(self) -> str:
        return self.summary

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``curata gc --json`` prints)."""
        return {
            "dry_run": self.dry_run,
            "keep_versions": self.keep_versions,
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
            "bytes_reclaimed": self.bytes_reclaimed,
            "datasets_compacted": self.datasets_compacted,
            "lance_versions_removed": self.lance_versions_removed,
            "unpublished_lance_versions_removed": self.unpublished_removed,
            "versions_pruned": self.versions_pruned,
            "summary": self.summary,
            "datasets": [d.to_dict() for d in self.datasets],
            "abandoned_folders": [a.to_dict() for a in self.abandoned],
        }


def format_bytes(n: int) -> str:
    """``12.3 MB``-style size (decimal units)."""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(size) < 1000 or unit == "TB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def collect_garbage(
    lake: Lake, *, keep_versions: int | None = None, dry_run: bool = False
) -> GcReport:
    """Compact small fragments, remove Lance versions no commit references and, with
    ``keep_versions=N``, prune all but the newest N versions of each branch.

    Tagged versions and branch heads are never pruned. Every version that is not pruned stays
    readable with exactly its rows.

    Args:
        lake: the lake to clean.
        keep_versions: keep the newest N versions of each branch (N >= 1); None keeps all.
        dry_run: only report what would happen.

    Raises:
        InvalidInput: ``keep_versions`` is below 1.
        StorageError: Lance failed; what was done before stays consistent.

    >>> print(lake.gc(keep_versions=5))  # doctest: +SKIP
    reclaimed 12.3 MB: compacted 3 datasets, removed 41 unpublished Lance versions, pruned 7 ...
    """
    if keep_versions is not None and keep_versions < 1:
        raise InvalidInput(
            f"keep_versions must be at least 1, not {keep_versions}.",
            hint="Branch heads, tagged versions and versions with recorded usages are always kept; "
            "omit it to keep every version.",
        )
    with lake.catalog.read() as conn:
        query = sa.select(t.datasets.c.name).order_by(t.datasets.c.name)
        names = list(conn.execute(query).scalars())
    report = GcReport(dry_run=dry_run, keep_versions=keep_versions)
    for name in names:
        result = (
            _plan_dataset(lake, name, keep_versions)
            if dry_run
            else _collect_dataset(lake, name, keep_versions)
        )
        if result is not None:
            report.datasets.append(result)
    report.abandoned = _abandoned_folders(lake, dry_run)
    return report


def _abandoned_folders(lake: Lake, dry_run: bool) -> list[AbandonedFolder]:
    """Remove (unless ``dry_run``) the data folders that no dataset owns and that nobody wrote
    to for :data:`ABANDONED_AFTER` seconds."""
    owned = sa.select(t.datasets.c.storage_path)
    with lake.catalog.read() as conn:
        known = set(conn.execute(owned).scalars())
    cutoff = time.time() - ABANDONED_AFTER
    found = []
    for folder in lake.store.folders():
        if folder in known:
            continue
        size, newest = lake.store.last_change(folder)
        if newest is not None and newest > cutoff:
            continue
        if not dry_run:
            with lake.catalog.write() as conn:
                # Under the lock that creating the dataset takes: one created since the
                # listing keeps its folder.
                lock_name(conn, folder.removesuffix(".lance"))
                if conn.execute(owned.where(t.datasets.c.storage_path == folder)).first():
                    continue
                lake.store.remove_all(folder)
        found.append(AbandonedFolder(folder, size))
    return found


# -- planning -------------------------------------------------------------------------------------


@dataclass
class _State:
    """The catalog's view of one dataset and the versions gc keeps."""

    path: str
    live: dict[int, sa.Row[Any]]  # curata version -> commit row, for versions not pruned yet
    heads: dict[str, int]  # branch -> head version
    prune: list[int]
    pruned_lance: set[int]  # Lance versions of versions pruned before

    @property
    def unpublished_after(self) -> set[int]:
        """Lance versions that no version references once ``prune`` is pruned."""
        return self.pruned_lance | {self.live[v].lance_version for v in self.prune}

    @property
    def head_versions(self) -> list[int]:
        """Distinct head versions, main's first (its Lance version is the one to restore)."""
        main = self.heads.get(MAIN)
        rest = sorted({v for b, v in self.heads.items() if b != MAIN and v != main})
        return ([main] if main is not None else []) + rest


def _load_state(conn: Connection, row: sa.Row[Any], keep_versions: int | None) -> _State:
    rows = conn.execute(sa.select(t.commits).where(t.commits.c.dataset_id == row.id)).all()
    by_version = {r.version: r for r in rows}
    heads = {b: v for b, v in history.refs_of(conn, row.id, "branch").items() if v is not None}
    tagged = {v for v in history.refs_of(conn, row.id, "tag").values() if v is not None}
    # A version a model was trained on or a deployment serves stays readable, like a tagged one.
    used = set(
        conn.execute(sa.select(t.usages.c.version).where(t.usages.c.dataset_id == row.id)).scalars()
    )
    live = {v: r for v, r in by_version.items() if r.pruned_at is None}
    if keep_versions is None:
        keep = set(live)
    else:
        keep = set(heads.values()) | tagged | used
        for head in heads.values():
            keep |= _newest_on_chain(by_version, head, keep_versions)
    return _State(
        path=row.storage_path,
        live=live,
        heads=heads,
        prune=sorted(v for v in live if v not in keep),
        pruned_lance={r.lance_version for r in rows if r.pruned_at is not None},
    )


def _newest_on_chain(by_version: dict[int, sa.Row[Any]], head: int, n: int) -> set[int]:
    """The newest ``n`` versions reachable from ``head`` through parents (``head`` included)."""
    out: set[int] = set()
    version: int | None = head
    while version is not None and version in by_version and len(out) < n:
        out.add(version)
        version = by_version[version].parent_version
    return out


def _latest_is_harmless(store: LanceStore, state: _State, latest: int, kept: set[int]) -> bool:
    """Whether Lance's latest version may stay: it is kept, or it is a restore of a head, so it
    holds no rows that no version publishes."""
    if latest in kept:
        return True
    heads = [state.live[v].lance_version for v in state.head_versions if v in state.live]
    return any(store.same_content(state.path, lv, latest) for lv in heads)


def _plan_dataset(lake: Lake, name: str, keep_versions: int | None) -> DatasetGc | None:
    """A dry run: what :func:`_collect_dataset` would do, changing nothing."""
    store = lake.store
    with lake.catalog.read() as conn:
        row = conn.execute(sa.select(t.datasets).where(t.datasets.c.name == name)).first()
        if row is None:
            return None
        state = _load_state(conn, row, keep_versions)
    result = DatasetGc(name=name, bytes_before=store.disk_usage(state.path))
    existing = store.lance_versions(state.path)
    for version in state.head_versions:
        ds = store.open_at(state.path, state.live[version].lance_version)
        before = store.fragment_count(ds)
        rewritten, written = store.compaction_plan(ds)
        result.fragments_before += before
        result.fragments_after += before - rewritten + written
        if rewritten:
            result.compacted_versions.append(version)
    result.versions_pruned = list(state.prune)
    dropped = set(state.prune) | set(result.compacted_versions)
    kept = {c.lance_version for v, c in state.live.items() if v not in dropped}
    if not existing:
        return result
    latest = existing[-1]
    # Compaction makes a new latest, so the current one goes unless a kept version uses it.
    stays = not result.compacted_versions and _latest_is_harmless(store, state, latest, kept)
    removed = [v for v in existing if v not in kept and not (stays and v == latest)]
    _count_removed(result, removed, state.unpublished_after)
    return result


def _count_removed(result: DatasetGc, removed: list[int], pruned_lance: set[int]) -> None:
    result.lance_versions_removed = len(removed)
    result.unpublished_removed = sum(1 for v in removed if v not in pruned_lance)


# -- doing ----------------------------------------------------------------------------------------


def _collect_dataset(lake: Lake, name: str, keep_versions: int | None) -> DatasetGc | None:
    store = lake.store
    with lake.catalog.write() as conn:
        row = lake.catalog.lock_datasets(conn, [name]).get(name)
        if row is None:
            return None
        state = _load_state(conn, row, keep_versions)
        result = DatasetGc(name=name, bytes_before=store.disk_usage(state.path))
        existing = store.lance_versions(state.path)
        _compact_heads(lake, conn, state, result)
        if state.prune:
            result.versions_pruned = _prune(conn, row.id, state.prune)
    # The catalog no longer references what goes now; a crash from here on only leaves garbage.
    with lake.catalog.write() as conn:
        row = lake.catalog.lock_datasets(conn, [name]).get(name)
        if row is not None:
            now = _load_state(conn, row, None)
            removed = _remove_unreferenced(store, now)
            _count_removed(result, [v for v in removed if v in existing], now.pruned_lance)
        result.bytes_after = store.disk_usage(state.path)
    return result


def _prune(conn: Connection, dataset_id: int, versions: list[int]) -> list[int]:
    """Mark ``versions`` pruned, except any a tag, a branch or a recorded usage points at by
    now; returns those marked."""
    referenced = sa.select(t.refs.c.version).where(
        t.refs.c.dataset_id == dataset_id, t.refs.c.version.is_not(None)
    )
    used = sa.select(t.usages.c.version).where(t.usages.c.dataset_id == dataset_id)
    marked = conn.execute(
        sa.update(t.commits)
        .where(
            t.commits.c.dataset_id == dataset_id,
            t.commits.c.version.in_(versions),
            t.commits.c.version.not_in(referenced),
            t.commits.c.version.not_in(used),
        )
        .values(pruned_at=utcnow())
        .returning(t.commits.c.version)
    )
    return sorted(marked.scalars())


def _compact_heads(lake: Lake, conn: Connection, state: _State, result: DatasetGc) -> None:
    """Compact each branch head that Lance finds worth it and point its commit at the result."""
    store = lake.store
    for version in state.head_versions:
        commit = state.live[version]
        ds = store.open_at(state.path, commit.lance_version)
        before = store.fragment_count(ds)
        result.fragments_before += before
        if store.compaction_plan(ds)[0] == 0:
            result.fragments_after += before
            continue
        ds = store.checkout_for_write(state.path, commit.lance_version)
        compacted = store.compact(ds)
        rows = store.count(compacted)
        if rows != commit.row_count or compacted.schema != ds.schema:
            # The transaction rolls back; the compacted Lance version is an orphan for next time.
            raise StorageError(
                f"Compacting {result.name}@{version} gave {rows} rows instead of "
                f"{commit.row_count}; the version was left as it was."
            )
        conn.execute(
            sa.update(t.commits)
            .where(t.commits.c.id == commit.id)
            .values(lance_version=compacted.version)
        )
        result.fragments_after += store.fragment_count(compacted)
        result.compacted_versions.append(version)


def _remove_unreferenced(store: LanceStore, state: _State) -> list[int]:
    """Remove every Lance version no live commit references; returns the versions removed.

    Lance never removes its latest version, so an orphan there is first covered by a restore of
    the main head (which holds no rows of its own and stays).
    """
    existing = store.lance_versions(state.path)
    if not existing:
        return []
    if not state.live:
        # Nothing was ever published: all of it is left over from a crashed first write.
        store.remove_all(state.path)
        return existing
    kept = {c.lance_version for c in state.live.values()}
    latest = existing[-1]
    if not _latest_is_harmless(store, state, latest, kept):
        heads = state.head_versions or [max(state.live)]
        base = state.live[heads[0]].lance_version
        latest = store.checkout_for_write(state.path, base).version
    removed = [v for v in existing if v not in kept and v != latest]
    store.remove_versions(state.path, removed)
    return removed
