"""Catalog reads: datasets, commits, branches and tags, and resolving references."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import UTC
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from curata.errors import NotFound
from curata.lake import schema as t
from curata.lake.models import Commit
from curata.lake.refs import MAIN, Ref


def nearest(word: str, candidates: list[str]) -> list[str]:
    """Names among ``candidates`` that look like ``word``, closest first."""
    return difflib.get_close_matches(word, candidates, n=5, cutoff=0.5)


def _did_you_mean(word: str, candidates: list[str], what: str) -> str:
    close = nearest(word, candidates)
    if close:
        return f"Did you mean: {', '.join(close)}?"
    if candidates:
        shown = ", ".join(sorted(candidates)[:20])
        return f"Existing {what}: {shown}" + (" ..." if len(candidates) > 20 else "")
    return f"There are no {what} yet."


def dataset_row(conn: Connection, name: str) -> sa.Row[Any]:
    """The catalog row of dataset ``name``.

    Raises:
        NotFound: no such dataset; the message lists the nearest existing names.
    """
    row = conn.execute(sa.select(t.datasets).where(t.datasets.c.name == name)).first()
    if row is None:
        names = list(conn.execute(sa.select(t.datasets.c.name)).scalars())
        raise NotFound(f"No dataset named {name!r}.", hint=_did_you_mean(name, names, "datasets"))
    return row


def refs_of(conn: Connection, dataset_id: int, kind: str) -> dict[str, int | None]:
    """Branches (``kind="branch"``) or tags (``kind="tag"``) of a dataset, name -> version."""
    q = sa.select(t.refs.c.name, t.refs.c.version).where(
        t.refs.c.dataset_id == dataset_id, t.refs.c.kind == kind
    )
    return {r.name: r.version for r in conn.execute(q.order_by(t.refs.c.name))}


def commit_row(conn: Connection, dataset_id: int, version: int) -> sa.Row[Any] | None:
    """The commit row of one version, if it exists."""
    q = sa.select(t.commits).where(
        t.commits.c.dataset_id == dataset_id, t.commits.c.version == version
    )
    return conn.execute(q).first()


def resolve_version(conn: Connection, ds: sa.Row[Any], ref: Ref) -> int | None:
    """The version a reference points at; None for a branch without commits.

    Raises:
        NotFound: the version, tag or branch does not exist; lists the nearest that do.
    """
    if ref.version is not None:
        if commit_row(conn, ds.id, ref.version) is None:
            latest = conn.execute(
                sa.select(sa.func.max(t.commits.c.version)).where(t.commits.c.dataset_id == ds.id)
            ).scalar()
            raise NotFound(
                f"Dataset {ds.name!r} has no version {ref.version}.",
                hint=f"Its versions are 1 to {latest}." if latest else "It has no versions yet.",
            )
        return ref.version
    branches = refs_of(conn, ds.id, "branch")
    if ref.tag is not None:
        tags = refs_of(conn, ds.id, "tag")
        if ref.tag in tags:
            return tags[ref.tag]
        if ref.tag in branches:
            return branches[ref.tag]
        names = list(tags) + [f"branch:{b}" for b in branches]
        raise NotFound(
            f"Dataset {ds.name!r} has no tag or branch {ref.tag!r}.",
            hint=_did_you_mean(ref.tag, names, "tags and branches"),
        )
    branch = ref.branch or MAIN
    if branch not in branches:
        raise NotFound(
            f"Dataset {ds.name!r} has no branch {branch!r}.",
            hint=_did_you_mean(branch, list(branches), "branches"),
        )
    return branches[branch]


def tags_by_version(conn: Connection, dataset_id: int) -> dict[int, list[str]]:
    """Version -> the tags on it."""
    out: dict[int, list[str]] = {}
    for name, version in refs_of(conn, dataset_id, "tag").items():
        if version is not None:
            out.setdefault(version, []).append(name)
    return out


def to_commit(row: sa.Row[Any], dataset: str, tags: list[str] | None = None) -> Commit:
    """A catalog commit row as a :class:`Commit`."""
    return Commit(
        dataset=dataset,
        version=row.version,
        branch=row.branch,
        parent=row.parent_version,
        author=row.author,
        timestamp=row.created_at.replace(tzinfo=UTC),
        message=row.message,
        operation=row.operation,
        rows=int(row.row_count),
        schema=list(row.schema),
        changes=dict(row.changes),
        run_id=row.run_id,
        lance_version=row.lance_version,
        pruned=row.pruned_at is not None,
        tags=sorted(tags or []),
    )


def commits_of(conn: Connection, ds: sa.Row[Any], branch: str | None = None) -> list[Commit]:
    """Commits of a dataset, newest first; with ``branch``, only those reachable from its head."""
    rows = conn.execute(
        sa.select(t.commits)
        .where(t.commits.c.dataset_id == ds.id)
        .order_by(t.commits.c.version.desc())
    ).all()
    tags = tags_by_version(conn, ds.id)
    commits = [to_commit(r, ds.name, tags.get(r.version)) for r in rows]
    if branch is None:
        return commits
    head = refs_of(conn, ds.id, "branch").get(branch)
    by_version = {c.version: c for c in commits}
    chain: list[Commit] = []
    while head is not None and head in by_version:
        chain.append(by_version[head])
        head = by_version[head].parent
    return chain


@dataclass(frozen=True)
class Head:
    """A dataset's catalog row, one branch's head commit, and its highest version number."""

    row: sa.Row[Any]
    commit: Any  # the head commit's columns (None for a branch without commits)
    max_version: int


def _head_query() -> sa.Select[Any]:
    """Dataset row + branch head commit + max version, in one statement."""
    head_commit = t.commits.alias("head_commit")
    max_version = (
        sa.select(sa.func.max(t.commits.c.version))
        .where(t.commits.c.dataset_id == t.datasets.c.id)
        .scalar_subquery()
    )
    refs_join = sa.and_(
        t.refs.c.dataset_id == t.datasets.c.id,
        t.refs.c.kind == "branch",
        t.refs.c.name == sa.bindparam("branch"),
    )
    commit_join = sa.and_(
        head_commit.c.dataset_id == t.datasets.c.id, head_commit.c.version == t.refs.c.version
    )
    return (
        sa.select(
            t.datasets,
            t.refs.c.name.label("ref_name"),
            max_version.label("max_version"),
            *[c.label(f"head_{c.name}") for c in head_commit.c],
        )
        .select_from(t.datasets.outerjoin(t.refs, refs_join).outerjoin(head_commit, commit_join))
        .where(t.datasets.c.name == sa.bindparam("name"))
    )


_HEAD_QUERY = _head_query()
_LOCK_QUERY = (
    sa.select(t.datasets.c.id).where(t.datasets.c.name == sa.bindparam("name")).with_for_update()
)


def head_of(conn: Connection, name: str, branch: str, *, lock: bool = False) -> Head:
    """The dataset ``name`` and the head of ``branch`` in one statement (the hot path of every
    write); with ``lock``, the dataset's row is locked first on PostgreSQL (SQLite writers hold
    the database lock already).

    Raises:
        NotFound: no such dataset or branch; the message lists the nearest names.
    """
    if lock and conn.dialect.name != "sqlite":
        # Lock first, read after: a statement that waited for the lock still sees the
        # snapshot taken before the wait (PostgreSQL's READ COMMITTED), so the head and the
        # version numbers must come from a statement started after the lock is held.
        conn.execute(_LOCK_QUERY, {"name": name})
    found = conn.execute(_HEAD_QUERY, {"name": name, "branch": branch}).first()
    if found is None:
        dataset_row(conn, name)  # raises NotFound with suggestions
    assert found is not None
    row = found
    if found.ref_name is None:
        resolve_version(conn, row, Ref(name=name, branch=branch))  # raises NotFound
    commit = None
    if found.head_version is not None:
        commit = SimpleNamespace(**{c.name: getattr(found, f"head_{c.name}") for c in t.commits.c})
    return Head(row=row, commit=commit, max_version=int(found.max_version or 0))
