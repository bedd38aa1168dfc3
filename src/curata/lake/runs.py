"""Runs (work curata did) and usages (consumers curata did not run), as catalog records.

A run is started before its work and finished after it; its inputs and outputs are stored as
concrete ``dataset@version`` references, so lineage never depends on where a tag or a branch
points later. A usage says that something outside curata (a model, a deployment) consumed one
dataset version.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from curata.errors import InvalidInput, NotFound
from curata.lake import history
from curata.lake import schema as t
from curata.lake.catalog import utcnow
from curata.lake.models import iso
from curata.lake.refs import parse_ref
from curata.lake.run_owner import current_owner, owner_is_gone

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from curata.lake.catalog import Catalog

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"
#: shown, never stored: a running run whose process is known to be gone
ABANDONED = "abandoned"
RUN_STATUSES = (RUNNING, SUCCEEDED, FAILED, ABANDONED)
CONSUMER_KINDS = ("model", "experiment", "evaluation", "deployment", "application", "other")
MIN_ID_PREFIX = 6

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_CONSUMER = re.compile(r"^(?P<kind>[^:\s]+):(?P<name>[^@\s]+)(?:@(?P<version>[^@\s]+))?$")


def _aware(ts: datetime | None) -> datetime | None:
    return None if ts is None else ts.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Run:
    """One execution of a step or pipeline, as the catalog records it.

    A run whose process died before finishing is ``abandoned`` when it is read on the machine
    that ran it (see :mod:`curata.lake.run_owner`); read elsewhere, it stays ``running``.
    """

    id: str
    job: str
    status: str
    params: dict[str, Any]
    code_version: str | None
    executor: str | None
    started_at: datetime
    ended_at: datetime | None
    metrics: dict[str, Any]
    inputs: list[str]
    outputs: list[str]
    error: str | None
    #: the process that started it: ``host``, ``pid`` (and on Linux its identity)
    owner: dict[str, Any] | None = None

    @property
    def seconds(self) -> float | None:
        """Wall-clock duration; None while running."""
        if self.ended_at is None:
            return None
        return round((self.ended_at - self.started_at).total_seconds(), 3)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``runs show --json`` prints)."""
        return {
            "id": self.id,
            "job": self.job,
            "status": self.status,
            "params": self.params,
            "code_version": self.code_version,
            "executor": self.executor,
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
            "seconds": self.seconds,
            "metrics": self.metrics,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "error": self.error,
            "owner": self.owner,
        }


@dataclass(frozen=True)
class Usage:
    """A consumer outside curata that used one dataset version."""

    id: int
    dataset: str
    version: int
    consumer_kind: str
    consumer_name: str
    consumer_version: str | None
    purpose: str
    recorded_at: datetime
    recorded_by: str

    @property
    def ref(self) -> str:
        """``dataset@version``."""
        return f"{self.dataset}@{self.version}"

    @property
    def consumer(self) -> str:
        """``KIND:NAME[@VERSION]``."""
        tail = f"@{self.consumer_version}" if self.consumer_version else ""
        return f"{self.consumer_kind}:{self.consumer_name}{tail}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``usage ls --json`` prints)."""
        return {
            "id": self.id,
            "dataset": self.dataset,
            "version": self.version,
            "ref": self.ref,
            "consumer": self.consumer,
            "consumer_kind": self.consumer_kind,
            "consumer_name": self.consumer_name,
            "consumer_version": self.consumer_version,
            "purpose": self.purpose,
            "recorded_at": iso(self.recorded_at),
            "recorded_by": self.recorded_by,
        }


# -- validation ------------------------------------------------------------------------------------


def _check_length(value: str | None, limit: int, what: str) -> None:
    if value is not None and len(value) > limit:
        raise InvalidInput(f"{what} is {len(value)} characters long; at most {limit} fit.")


def _json_ready(value: Any, what: str) -> Any:
    """``value`` as plain JSON data; NaN and infinities (which JSON cannot say) become null."""

    def default(obj: Any) -> Any:
        if isinstance(obj, datetime | date):
            return obj.isoformat()
        if isinstance(obj, set | frozenset | tuple):
            return list(obj)
        if hasattr(obj, "tolist"):  # numpy and pyarrow scalars and arrays
            return obj.tolist()
        raise InvalidInput(
            f"{what} holds a {type(obj).__name__}, which cannot be stored as JSON.",
            hint="Use strings, numbers, booleans, lists and dicts.",
        )

    def finite(obj: Any) -> Any:
        if isinstance(obj, float) and not math.isfinite(obj):
            return None
        if isinstance(obj, dict):
            return {k: finite(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [finite(v) for v in obj]
        return obj

    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a dict, not {type(value).__name__}.")
    return finite(json.loads(json.dumps(value, default=default)))


def resolve_refs(conn: Connection, refs: Sequence[str], what: str) -> list[str]:
    """Each reference as the concrete ``dataset@version`` it names now; URIs of sources outside
    the lake (``file:///data/x.csv``, ``s3://bucket/key``) are kept as they are.

    Raises:
        InvalidInput: an entry is neither a reference nor a URI.
        NotFound: a dataset, version, tag or branch does not exist, or has no versions yet.
    """
    if isinstance(refs, str):
        raise InvalidInput(f"{what} must be a list of references, not a string.")
    out: list[str] = []
    for text in refs:
        if "://" in text:
            resolved = text
        else:
            ref = parse_ref(text)
            row = history.dataset_row(conn, ref.name)
            version = history.resolve_version(conn, row, ref)
            if version is None:
                raise NotFound(f"{what}: dataset {ref.name!r} has no versions yet.")
            resolved = f"{ref.name}@{version}"
        if resolved not in out:
            out.append(resolved)
    return out


# -- runs --------------------------------------------------------------------------------------


def start_run(
    catalog: Catalog,
    job: str,
    *,
    params: dict[str, Any],
    code_version: str | None,
    executor: str | None,
    inputs: list[str],
    run_id: str | None = None,
) -> str:
    """Record a run as ``running``; see :meth:`curata.Lake.start_run`."""
    if not job or not job.strip():
        raise InvalidInput("A run needs a job name.")
    _check_length(job, 256, "The job name")
    _check_length(code_version, 64, "The code version")
    _check_length(executor, 32, "The executor name")
    if run_id is not None and not _RUN_ID.match(run_id):
        raise InvalidInput(
            f"Invalid run id {run_id!r}.",
            hint="Use 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit.",
        )
    run_id = run_id or uuid.uuid4().hex
    clean_params = _json_ready(params, "params")
    with catalog.write() as conn:
        if conn.execute(sa.select(t.runs.c.id).where(t.runs.c.id == run_id)).first():
            raise InvalidInput(f"A run with id {run_id!r} exists already.")
        conn.execute(
            sa.insert(t.runs).values(
                id=run_id,
                job=job,
                status=RUNNING,
                params=clean_params,
                code_version=code_version,
                executor=executor,
                started_at=utcnow(),
                ended_at=None,
                metrics={},
                inputs=resolve_refs(conn, inputs, "inputs"),
                outputs=[],
                error=None,
                owner=current_owner(),
            )
        )
    return run_id


def finish_run(
    catalog: Catalog,
    run_id: str,
    *,
    status: str,
    metrics: dict[str, Any],
    outputs: list[str],
    error: str | None = None,
) -> Run:
    """Record the end of a run; see :meth:`curata.Lake.finish_run`."""
    if status not in (SUCCEEDED, FAILED):
        raise InvalidInput(
            f"A run finishes as {SUCCEEDED!r} or {FAILED!r}, not {status!r}.",
        )
    clean_metrics = _json_ready(metrics, "metrics")
    with catalog.write() as conn:
        row = run_row(conn, run_id)
        if row.status != RUNNING:
            raise InvalidInput(f"Run {row.id} has finished already ({row.status}).")
        resolved = resolve_refs(conn, outputs, "outputs")
        # Commits stamped with the run id are its outputs whether or not the caller listed them.
        for ref in _stamped_commits(conn, row.id):
            if ref not in resolved:
                resolved.append(ref)
        conn.execute(
            sa.update(t.runs)
            .where(t.runs.c.id == row.id)
            .values(
                status=status,
                ended_at=utcnow(),
                metrics=clean_metrics,
                outputs=resolved,
                error=error,
            )
        )
        return _to_run(run_row(conn, row.id))


def _stamped_commits(conn: Connection, run_id: str) -> list[str]:
    q = (
        sa.select(t.datasets.c.name, t.commits.c.version)
        .join(t.datasets, t.datasets.c.id == t.commits.c.dataset_id)
        .where(t.commits.c.run_id == run_id)
        .order_by(t.datasets.c.name, t.commits.c.version)
    )
    return [f"{r.name}@{r.version}" for r in conn.execute(q)]


def shown_status(status: str, owner: dict[str, Any] | None) -> str:
    """The stored status, or ``abandoned`` for a running run whose process is known gone."""
    return ABANDONED if status == RUNNING and owner_is_gone(owner) else status


def _to_run(row: sa.Row[Any]) -> Run:
    started = _aware(row.started_at)
    assert started is not None
    return Run(
        id=row.id,
        job=row.job,
        status=shown_status(row.status, row.owner),
        params=dict(row.params or {}),
        code_version=row.code_version,
        executor=row.executor,
        started_at=started,
        ended_at=_aware(row.ended_at),
        metrics=dict(row.metrics or {}),
        inputs=list(row.inputs or []),
        outputs=list(row.outputs or []),
        error=row.error,
        owner=row.owner,
    )


def list_runs(catalog: Catalog, *, limit: int | None = None, job: str | None = None) -> list[Run]:
    """Runs, newest first; see :meth:`curata.Lake.runs`."""
    if limit is not None and limit < 0:
        raise InvalidInput("The limit must be zero or more.")
    q = sa.select(t.runs).order_by(t.runs.c.started_at.desc(), t.runs.c.id.desc())
    if job is not None:
        q = q.where(t.runs.c.job == job)
    if limit is not None:
        q = q.limit(limit)
    with catalog.read() as conn:
        return [_to_run(r) for r in conn.execute(q)]


def get_run(catalog: Catalog, run_id: str) -> Run:
    """One run by id or unique id prefix; see :meth:`curata.Lake.run`."""
    with catalog.read() as conn:
        return _to_run(run_row(conn, run_id))


def run_row(conn: Connection, run_id: str) -> sa.Row[Any]:
    """The row of run ``run_id`` (or ``run:ID``), or of the one run whose id starts with it."""
    run_id = run_id.strip().removeprefix("run:")
    row = conn.execute(sa.select(t.runs).where(t.runs.c.id == run_id)).first()
    if row is not None:
        return row
    if len(run_id) >= MIN_ID_PREFIX:
        q = sa.select(t.runs).where(t.runs.c.id.startswith(run_id, autoescape=True)).limit(11)
        matches = conn.execute(q).all()
        if len(matches) == 1:
            return matches[0]
        if matches:
            shown = ", ".join(sorted(m.id for m in matches[:10]))
            raise InvalidInput(
                f"Run id prefix {run_id!r} is ambiguous.",
                hint=f"It starts {'more than 10' if len(matches) > 10 else len(matches)} run "
                f"ids: {shown}. Give more characters.",
            )
    ids = list(conn.execute(sa.select(t.runs.c.id)).scalars())
    close = [i for i in ids if i.startswith(run_id)] if run_id else []
    close = close[:5] or history.nearest(run_id, ids)
    if close:
        hint = f"Did you mean: {', '.join(close)}?"
        if len(run_id) < MIN_ID_PREFIX and ids:
            hint += f" A prefix needs at least {MIN_ID_PREFIX} characters."
    else:
        hint = "See `curata runs ls`." if ids else "There are no runs yet."
    raise NotFound(f"No run with id {run_id!r}.", hint=hint)


# -- usages --------------------------------------------------------------------------------------


def parse_consumer(text: str) -> tuple[str, str, str | None]:
    """``KIND:NAME[@VERSION]`` as ``(kind, name, version)``.

    >>> parse_consumer("model:ft-support@3")
    ('model', 'ft-support', '3')

    Raises:
        InvalidInput: not of that form, or an unknown kind (the message lists the kinds).
    """
    kinds = ", ".join(CONSUMER_KINDS)
    match = _CONSUMER.match(text.strip())
    if match is None:
        raise InvalidInput(
            f"Consumer {text!r} is not KIND:NAME or KIND:NAME@VERSION.",
            hint=f"E.g. model:ft-support@3 or deployment:prod-chat. Kinds: {kinds}.",
        )
    kind, name, version = match["kind"], match["name"], match["version"]
    if kind not in CONSUMER_KINDS:
        raise InvalidInput(f"Unknown consumer kind {kind!r}.", hint=f"Kinds: {kinds}.")
    _check_length(name, 256, "The consumer name")
    _check_length(version, 64, "The consumer version")
    return kind, name, version


def record_usage(catalog: Catalog, ref: str, *, consumer: str, purpose: str, author: str) -> Usage:
    """Record that ``consumer`` used ``ref``; see :meth:`curata.Lake.record_usage`."""
    kind, name, version = parse_consumer(consumer)
    purpose = purpose.strip()
    if not purpose:
        raise InvalidInput("A usage needs a purpose, e.g. training, evaluation or retrieval.")
    _check_length(purpose, 64, "The purpose")
    parsed = parse_ref(ref)
    with catalog.write() as conn:
        ds = history.dataset_row(conn, parsed.name)
        ds_version = history.resolve_version(conn, ds, parsed)
        if ds_version is None:
            raise NotFound(f"Dataset {parsed.name!r} has no versions yet.")
        values = {
            "dataset_id": ds.id,
            "version": ds_version,
            "consumer_kind": kind,
            "consumer_name": name,
            "consumer_version": version,
            "purpose": purpose,
        }
        # Recording the same fact twice (a deploy script run again) keeps one record.
        col = t.usages.c
        same = sa.select(col.id).where(
            *(col[k].is_(None) if v is None else col[k] == v for k, v in values.items())
        )
        usage_id = conn.execute(same).scalar()
        if usage_id is None:
            result = conn.execute(
                sa.insert(t.usages).values(**values, recorded_at=utcnow(), recorded_by=author)
            )
            assert result.inserted_primary_key is not None
            usage_id = result.inserted_primary_key[0]
        return _usages(conn, t.usages.c.id == usage_id)[0]


def list_usages(catalog: Catalog, dataset: str | None = None) -> list[Usage]:
    """Usages, newest first; see :meth:`curata.Lake.usages`."""
    with catalog.read() as conn:
        if dataset is None:
            return _usages(conn)
        return _usages(conn, t.usages.c.dataset_id == history.dataset_row(conn, dataset).id)


def _usages(conn: Connection, *where: Any) -> list[Usage]:
    q = (
        sa.select(t.usages, t.datasets.c.name.label("dataset"))
        .join(t.datasets, t.datasets.c.id == t.usages.c.dataset_id)
        .where(*where)
        .order_by(t.usages.c.recorded_at.desc(), t.usages.c.id.desc())
    )
    return [
        Usage(
            id=r.id,
            dataset=r.dataset,
            version=r.version,
            consumer_kind=r.consumer_kind,
            consumer_name=r.consumer_name,
            consumer_version=r.consumer_version,
            purpose=r.purpose,
            recorded_at=r.recorded_at.replace(tzinfo=UTC),
            recorded_by=r.recorded_by,
        )
        for r in conn.execute(q)
    ]
