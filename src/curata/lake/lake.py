"""Lake: a folder (or bucket prefix) of Lance datasets plus the catalog that publishes them."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from curata.config import (
    LAKE_DIRNAME,
    LAKE_MARKER,
    Settings,
    git_user_name,
    is_remote,
    load_settings,
    resolve_author,
)
from curata.errors import AlreadyExists, InvalidInput, NotFound, StorageError
from curata.lake import history
from curata.lake import schema as t
from curata.lake.catalog import Catalog
from curata.lake.dataset import Dataset
from curata.lake.models import Commit, DatasetInfo
from curata.lake.publish import Publication
from curata.lake.refs import MAIN, Ref, parse_ref, validate_name
from curata.lake.registry import storage_path
from curata.lake.snapshot import Snapshot
from curata.lake.storage import LanceStore

if TYPE_CHECKING:
    import pyarrow as pa

    from curata.lake.cache import StepCache
    from curata.lake.lineage import LineageGraph
    from curata.lake.maintenance import GcReport
    from curata.lake.publish import StagedOverwrite
    from curata.lake.runs import Run, Usage

LAKE_FORMAT = 1


class Lake:
    """A lake: versioned datasets under one root, published through one catalog.

    Open one with :func:`curata.open` or create one with :func:`curata.init`.
    """

    def __init__(self, settings: Settings) -> None:
        self.uri = settings.lake_uri
        self.settings = settings
        marker = _read_marker(self.uri)
        url = settings.catalog_url or marker.get("catalog_url") or self._default_catalog_url()
        self.catalog = Catalog(url)
        self.catalog.migrate()
        self.store = LanceStore(f"{self.uri}/data")
        self.cache_store = LanceStore(f"{self.uri}/cache")

    def _default_catalog_url(self) -> str:
        if is_remote(self.uri):
            raise InvalidInput(
                f"The lake {self.uri} is in object storage, where a SQLite catalog cannot live.",
                hint="Set CURATA_CATALOG_URL to a PostgreSQL URL.",
            )
        return f"sqlite:///{Path(self.uri) / 'catalog.db'}"

    def __repr__(self) -> str:
        return f"<Lake {self.uri}>"

    def __enter__(self) -> Lake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release catalog connections."""
        self.catalog.dispose()

    @property
    def author(self) -> str:
        """Default author of this lake's commits."""
        return resolve_author(self.settings.author, git_user=self._git_user)

    @cached_property
    def _git_user(self) -> str | None:
        # git is asked once per Lake: it costs milliseconds, more than a small write.
        if self.settings.author or os.environ.get("CURATA_AUTHOR"):
            return None
        return git_user_name()

    # -- datasets ---------------------------------------------------------------------------------

    def create_dataset(
        self,
        name: str,
        *,
        kind: str = "records",
        key: str | None = None,
        description: str = "",
        owner: str | None = None,
        tags: Sequence[str] = (),
        exist_ok: bool = False,
    ) -> Dataset:
        """Create an empty dataset; the first write gives it version 1.

        Args:
            name: letters, digits, ``_``, ``-``, ``.``; no spaces, ``/``, ``..``, ``@`` or ``:``.
            kind: one of documents, chunks, records, logs, labels, synthetic, report,
                knowledge_base.
            key: primary-key column, needed for upserts and row-level diffs.
            description: what the data is.
            owner: who answers for it.
            tags: free labels for finding it.
            exist_ok: return the existing dataset instead of failing.

        Raises:
            InvalidInput: a bad name or kind.
            AlreadyExists: the name is taken (and not ``exist_ok``).
        """
        with self.publish() as pub:
            created = pub.create_dataset(
                name, kind=kind, key=key, description=description, owner=owner, tags=tags
            )
        if not created and not exist_ok:
            raise AlreadyExists(f"A dataset named {name!r} exists already.")
        return Dataset(self, name)

    def dataset(self, name: str) -> Dataset:
        """The dataset called ``name``.

        Raises:
            NotFound: no such dataset (the message lists the nearest names).
        """
        with self.catalog.read() as conn:
            history.dataset_row(conn, validate_name(name))
        return Dataset(self, name)

    def has_dataset(self, name: str) -> bool:
        """Whether a dataset called ``name`` exists."""
        with self.catalog.read() as conn:
            return self._dataset_id(conn, name) is not None

    @staticmethod
    def _dataset_id(conn: Any, name: str) -> int | None:
        q = sa.select(t.datasets.c.id).where(t.datasets.c.name == name)
        return conn.execute(q).scalar()  # type: ignore[no-any-return]

    def datasets(self, search: str | None = None) -> list[DatasetInfo]:
        """All datasets, or those whose name, tags, description, owner or column names contain
        ``search`` (case-insensitive)."""
        with self.catalog.read() as conn:
            rows = conn.execute(sa.select(t.datasets).order_by(t.datasets.c.name)).all()
            infos = [self._info(conn, row) for row in rows]
        if not search:
            return infos
        needle = search.lower()
        return [i for i in infos if needle in _search_text(i)]

    def dataset_info(self, name: str) -> DatasetInfo:
        """Catalog entry of one dataset."""
        with self.catalog.read() as conn:
            return self._info(conn, history.dataset_row(conn, name))

    def _info(self, conn: Any, row: Any) -> DatasetInfo:
        branches = history.refs_of(conn, row.id, "branch")
        head = branches.get(MAIN)
        commit = None if head is None else history.commit_row(conn, row.id, head)
        tags = history.refs_of(conn, row.id, "tag")
        return DatasetInfo(
            name=row.name,
            kind=row.kind,
            key=row.primary_key,
            description=row.description,
            owner=row.owner,
            tags=list(row.tags or []),
            classifications=dict(row.classifications or {}),
            version=head,
            rows=0 if commit is None else int(commit.row_count),
            columns=[] if commit is None else list(commit.schema),
            created_at=row.created_at,
            created_by=row.created_by,
            branches=branches,
            version_tags={k: v for k, v in tags.items() if v is not None},
        )

    # -- reading --------------------------------------------------------------------------------

    def ref(self, text: str) -> Snapshot:
        """The snapshot a reference string names (``tickets``, ``tickets@7``, ``tickets@prod``,
        ``tickets@branch:fix``)."""
        return self.snapshot(parse_ref(text))

    def snapshot(self, ref: Ref) -> Snapshot:
        """The snapshot a parsed reference names.

        Raises:
            NotFound: unknown dataset, version, tag or branch; no versions yet; removed by gc.
        """
        try:
            return self._snapshot_once(ref)
        except StorageError:
            # gc may have compacted the version between our catalog read and opening its files
            # (the commit now points at the compacted files): resolve it once more.
            return self._snapshot_once(ref)

    def resolve(self, ref: Ref | str) -> Commit:
        """The commit a reference names, from the catalog alone (no data file is opened): the
        cheap way to learn which version ``tickets@prod`` or the head is now.

        Raises:
            NotFound: as :meth:`snapshot`.
        """
        commit, _, _ = self._resolve(parse_ref(ref) if isinstance(ref, str) else ref)
        return commit

    def _resolve(self, ref: Ref) -> tuple[Commit, str, str | None]:
        """The commit ``ref`` names, its dataset's storage path and primary key."""
        with self.catalog.read() as conn:
            row = history.dataset_row(conn, ref.name)
            version = history.resolve_version(conn, row, ref)
            if version is None:
                raise NotFound(
                    f"Dataset {ref.name!r} has no versions yet.",
                    hint=f"Write to it first, e.g. `curata dataset import {ref.name} FILE`.",
                )
            commit_row = history.commit_row(conn, row.id, version)
            assert commit_row is not None
            tags = history.tags_by_version(conn, row.id).get(version, [])
            commit = history.to_commit(commit_row, row.name, tags)
        if commit.pruned:
            raise NotFound(f"{commit.ref} was removed by `curata gc`; its data is gone.")
        return commit, row.storage_path, row.primary_key

    def _snapshot_once(self, ref: Ref) -> Snapshot:
        commit, path, key = self._resolve(ref)
        return Snapshot(commit, self.store.open_at(path, commit.lance_version), key)

    def query(self, sql: str) -> pa.Table:
        """Run DuckDB SQL where table names are dataset references: ``SELECT count(*) FROM
        "tickets@orig"``. Plain names are heads of main.

        Raises:
            InvalidInput: the SQL does not parse or fails.
            NotFound: a referenced dataset or version does not exist.
        """
        from curata.lake.query import run_query

        return run_query(self, sql)

    # -- writing --------------------------------------------------------------------------------

    @contextmanager
    def publish(
        self, *, message: str = "", author: str | None = None, run_id: str | None = None
    ) -> Iterator[Publication]:
        """Write to several datasets and publish them together, in one catalog transaction.

        Readers see all of the new versions or none of them. If the block raises, nothing is
        published.

        >>> with lake.publish(message="sync kb") as pub:  # doctest: +SKIP
        ...     pub.upsert("kb_documents", docs)
        ...     pub.delete("kb_chunks", "doc_id IN ('a.md')")
        ...     pub.append("kb_chunks", chunks)
        >>> [c.ref for c in pub.commits]  # doctest: +SKIP
        ['kb_documents@4', 'kb_chunks@4']
        """
        author = author or self.author
        with self.catalog.write() as conn:
            pub = Publication(self, conn, message=message, author=author, run_id=run_id)
            yield pub
            pub._finish()

    def stage_overwrite(self, name: str, reader: pa.RecordBatchReader) -> StagedOverwrite:
        """Write the whole new content of dataset ``name`` as data files nobody sees yet.

        Streams (bounded memory) and takes no lock; publish it with
        :meth:`Publication.overwrite_staged`. Unpublished files are removed by ``gc``. The
        dataset need not exist yet: :meth:`Publication.create_dataset` can create it in the
        transaction that publishes the staged content.
        """
        from curata.lake.publish import StagedOverwrite

        validate_name(name)
        with self.catalog.read() as conn:
            row = conn.execute(
                sa.select(t.datasets.c.storage_path).where(t.datasets.c.name == name)
            ).first()
        path = storage_path(name) if row is None else row.storage_path
        counted = _CountingReader(reader)
        fragments = self.store.write_new_fragments(path, counted.reader())
        return StagedOverwrite(name, reader.schema, fragments, counted.rows)

    def tag_versions(
        self, versions: dict[str, int], tag: str, *, author: str | None = None
    ) -> None:
        """Point ``tag`` at a version of each of several datasets in one catalog transaction:
        readers see either all of the old targets or all of the new ones (a blue/green switch).

        Raises:
            NotFound: a dataset or version does not exist, or gc removed it.
            InvalidInput: a bad tag name.
        """
        from curata.lake.refs import validate_label

        validate_label(tag, "tag")
        datasets = {name: self.dataset(name) for name in sorted(versions)}
        with self.catalog.write() as conn:
            for name, ds in datasets.items():
                row = ds._locked_row(conn)
                if tag in history.refs_of(conn, row.id, "branch"):
                    raise AlreadyExists(f"{name!r} has a branch named {tag!r}; pick another tag.")
                version = ds._live_version(conn, row, Ref(name, version=versions[name]), "tag")
                ds._set_ref(conn, row.id, "tag", tag, version, author=author)

    def step_cache(self, fingerprint: str) -> StepCache:
        """The per-row result cache of a pipeline step fingerprint."""
        from curata.lake.cache import StepCache

        return StepCache(self.cache_store, fingerprint)

    def gc(self, *, keep_versions: int | None = None, dry_run: bool = False) -> GcReport:
        """Compact small fragments, remove unpublished Lance versions and, with
        ``keep_versions=N``, versions other than the newest N of each branch. Tagged versions and
        branch heads are always kept."""
        from curata.lake.maintenance import collect_garbage

        return collect_garbage(self, keep_versions=keep_versions, dry_run=dry_run)

    # -- runs, usages, lineage ----------------------------------------------------------------

    def start_run(
        self,
        job: str,
        *,
        params: dict[str, Any],
        code_version: str | None,
        executor: str | None,
        inputs: list[str],
        run_id: str | None = None,
    ) -> str:
        """Record the start of a run; publish its writes with ``publish(run_id=...)``, then call
        :meth:`finish_run`.

        Args:
            job: what ran (a pipeline or step name).
            params: its parameters (JSON-ready; NaN becomes null).
            code_version: version of the code that ran, e.g. a step fingerprint or git sha.
            executor: where it ran, e.g. ``local`` or ``ray``.
            inputs: references it reads, stored as the ``dataset@version`` they name now
                (``tickets@prod`` -> ``tickets@5``); URIs of outside sources are kept as given.
            run_id: the id to use (default: a new uuid4 hex).

        Returns:
            The run id.

        Raises:
            InvalidInput: a bad job, id or params, or the id is taken.
            NotFound: an input does not exist.

        >>> run_id = lake.start_run("clean", params={}, code_version=None,  # doctest: +SKIP
        ...                         executor="local", inputs=["tickets@prod"])
        """
        from curata.lake.runs import start_run

        return start_run(
            self.catalog,
            job,
            params=params,
            code_version=code_version,
            executor=executor,
            inputs=inputs,
            run_id=run_id,
        )

    def finish_run(
        self,
        run_id: str,
        *,
        status: Literal["succeeded", "failed"],
        metrics: dict[str, Any],
        outputs: list[str],
        error: str | None = None,
    ) -> Run:
        """Record the end of a run. Its outputs are ``outputs`` (resolved to ``dataset@version``)
        plus every commit published with its run id.

        Raises:
            NotFound: no such run.
            InvalidInput: a bad status or metrics, or the run has finished already.
        """
        from curata.lake.runs import finish_run

        return finish_run(
            self.catalog, run_id, status=status, metrics=metrics, outputs=outputs, error=error
        )

    def runs(self, limit: int | None = None, job: str | None = None) -> list[Run]:
        """Runs, newest first; at most ``limit``, only of ``job`` if given."""
        from curata.lake.runs import list_runs

        return list_runs(self.catalog, limit=limit, job=job)

    def run(self, run_id: str) -> Run:
        """One run, by id or a unique prefix of at least 6 characters (like git).

        Raises:
            NotFound: no such run (the message lists the nearest ids).
            InvalidInput: the prefix matches several runs.
        """
        from curata.lake.runs import get_run

        return get_run(self.catalog, run_id)

    def record_usage(self, ref: str, *, consumer: str, purpose: str) -> Usage:
        """Record that something curata did not run used a dataset version.

        Args:
            ref: the version used; a tag or branch is stored as the version it names now.
            consumer: ``KIND:NAME[@VERSION]``, KIND one of model, experiment, evaluation,
                deployment, application, other.
            purpose: what for, e.g. ``training``, ``evaluation``, ``retrieval``.

        Raises:
            InvalidInput: a bad consumer or an empty purpose.
            NotFound: the reference does not exist.

        >>> lake.record_usage("kb@prod", consumer="deployment:prod-chat",  # doctest: +SKIP
        ...                   purpose="retrieval").ref
        'kb@12'
        """
        from curata.lake.runs import record_usage

        return record_usage(
            self.catalog, ref, consumer=consumer, purpose=purpose, author=self.author
        )

    def usages(self, dataset: str | None = None) -> list[Usage]:
        """Recorded usages, newest first; only of ``dataset`` if given."""
        from curata.lake.runs import list_usages

        return list_usages(self.catalog, dataset)

    def lineage(
        self,
        ref: str,
        *,
        direction: Literal["up", "down", "both"] = "both",
        depth: int | None = None,
    ) -> LineageGraph:
        """Where a version came from (up) and where it went (down), through runs, usages and
        the dataset's own earlier versions.

        Args:
            ref: a dataset reference, ``run:ID`` or a consumer ``KIND:NAME[@VER]``.
            direction: ``up``, ``down`` or ``both``.
            depth: at most this many edges from ``ref`` (default: no limit).

        Raises:
            NotFound: ``ref`` names nothing.
        """
        from curata.lake.lineage import lineage

        return lineage(self.catalog, ref, direction=direction, depth=depth)


class _CountingReader:
    """Counts the rows that pass through a record batch reader."""

    def __init__(self, reader: pa.RecordBatchReader) -> None:
        self._source = reader
        self.rows = 0

    def reader(self) -> pa.RecordBatchReader:
        import pyarrow as pa

        def batches() -> Iterator[pa.RecordBatch]:
            for batch in self._source:
                self.rows += batch.num_rows
                yield batch

        return pa.RecordBatchReader.from_batches(self._source.schema, batches())


def _search_text(info: DatasetInfo) -> str:
    parts = [info.name, info.description, info.owner or "", *info.tags]
    parts += [c["name"] for c in info.columns]
    return " ".join(parts).lower()


def _read_marker(uri: str) -> dict[str, Any]:
    if is_remote(uri):
        return {}
    marker = Path(uri) / LAKE_MARKER
    if not marker.is_file():
        raise NotFound(
            f"{uri} is not a curata lake (no {LAKE_MARKER}).",
            hint="Create one with `curata init`, or check --lake / CURATA_LAKE.",
        )
    data: dict[str, Any] = json.loads(marker.read_text())
    return data


def init_lake(path: str | None = None, *, catalog_url: str | None = None) -> Lake:
    """Create a lake: ``PATH/.curata`` (PATH defaults to the working directory), or ``PATH``
    itself when it ends in ``.curata`` or is an object-storage URI. Opening an existing lake is
    fine: init is idempotent.

    Args:
        path: where to create the lake.
        catalog_url: SQLAlchemy URL of the catalog (default ``CURATA_CATALOG_URL``, else SQLite
            inside the lake). It is remembered in the lake's ``lake.json``.
    """
    import os

    target = path or "."
    if not is_remote(target):
        p = Path(target).expanduser().resolve()
        lake_dir = p if p.name == LAKE_DIRNAME or (p / LAKE_MARKER).is_file() else p / LAKE_DIRNAME
        (lake_dir / "data").mkdir(parents=True, exist_ok=True)
        marker = lake_dir / LAKE_MARKER
        url = catalog_url or os.environ.get("CURATA_CATALOG_URL") or None
        if not marker.is_file():
            marker.write_text(
                json.dumps({"format": LAKE_FORMAT, "catalog_url": url}, indent=2) + "\n"
            )
        target = str(lake_dir)
    return Lake(Settings(lake_uri=target, catalog_url=catalog_url))


def open_lake(path: str | None = None, *, author: str | None = None) -> Lake:
    """Open the lake at ``path``, ``CURATA_LAKE``, or the nearest ``.curata`` walking up."""
    return Lake(load_settings(path, author))
