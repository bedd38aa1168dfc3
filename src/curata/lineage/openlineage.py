"""The lake's runs as OpenLineage RunEvents, for Marquez, DataHub, OpenMetadata or DataZone.

Each run becomes a START event (when it started) and, once it has ended, a COMPLETE or FAIL
event. Datasets are named by their curata name in the namespace of the lake's URI; the
version, schema, data source, row count and (when the run's metrics carry it) column lineage
travel as facets. Events are sent through the ``openlineage-python`` client's own transports:
a file (JSON Lines, appended), an HTTP endpoint, or the console.
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from curata import __version__
from curata.config import is_remote
from curata.errors import CurataError, InvalidInput, MissingDependency, NotFound
from curata.lake.models import iso

if TYPE_CHECKING:
    from openlineage.client.event_v2 import InputDataset, OutputDataset, RunEvent
    from openlineage.client.facet_v2 import DatasetFacet
    from openlineage.client.transport import Transport

    from curata.lake import Commit, Lake
    from curata.lake.runs import Run

PRODUCER = f"urn:curata:{__version__}"
HTTP_ENDPOINT = "api/v1/lineage"
HTTP_TIMEOUT_SECONDS = 10.0
# Fewer retries than the client's default (5), so an unreachable server fails in seconds.
HTTP_RETRY = {
    "total": 3,
    "read": 3,
    "connect": 3,
    "backoff_factor": 0.3,
    "status_forcelist": [500, 502, 503, 504],
    "allowed_methods": ["HEAD", "POST"],
}
_CONSOLE_LOGGER = "openlineage.client.transport.console"


@dataclass(frozen=True)
class ExportSummary:
    """What an export sent: how many runs and events, and where."""

    runs: int
    events: int
    target: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"runs": self.runs, "events": self.events, "target": self.target}


def export_openlineage(lake: Lake, target: str, since: datetime | None = None) -> ExportSummary:
    """Send the lake's runs as OpenLineage RunEvents, oldest first.

    Args:
        lake: the lake whose runs to export.
        target: a file path (events are appended as JSON Lines), an ``http(s)://`` URL (a bare
            host posts to ``/api/v1/lineage``, as Marquez expects; a URL with a path posts
            there), or ``-`` for standard output.
        since: only events at or after this time (naive times are UTC): a run that started
            before it but ended after it sends only its COMPLETE or FAIL event.

    Returns:
        How many runs and events were sent.

    Raises:
        MissingDependency: ``openlineage-python`` is not installed.
        InvalidInput: the target cannot be written to.
        CurataError: the transport failed (the message says how many events went out).

    >>> export_openlineage(lake, "http://localhost:5000")  # doctest: +SKIP
    ExportSummary(runs=3, events=6, target='http://localhost:5000')
    """
    _require_client()
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    transport = _transport(target)
    builder = _EventBuilder(lake)
    events: list[tuple[datetime, int, RunEvent]] = []
    exported_runs = 0
    for run in reversed(lake.runs()):
        run_events = builder.events(run, since)
        exported_runs += bool(run_events)
        events += [(when, len(events) + i, e) for i, (when, e) in enumerate(run_events)]
    events.sort(key=lambda item: item[:2])
    sent = 0
    with _console_to_stdout(target == "-"):
        try:
            for _, _, event in events:
                transport.emit(event)
                sent += 1
        except (OSError, RuntimeError, ValueError) as err:
            raise CurataError(
                f"Sending OpenLineage events to {target} failed after {sent} of {len(events)} "
                f"events: {err}",
                hint="Check the target and run the export again; consumers such as Marquez "
                "take a repeated event as the same event.",
            ) from err
        finally:
            transport.close()
    return ExportSummary(runs=exported_runs, events=sent, target=target)


def _require_client() -> None:
    try:
        import openlineage.client.event_v2  # noqa: F401
    except ImportError as err:
        raise MissingDependency("openlineage-python", "lineage", "OpenLineage export") from err


def lake_namespace(uri: str) -> str:
    """The OpenLineage namespace of a lake: its URI (``file:///...`` for a local folder)."""
    return uri.rstrip("/") if is_remote(uri) else Path(uri).resolve().as_uri()


def run_uuid(run_id: str) -> str:
    """A curata run id as the UUID OpenLineage needs: the id itself when it is a UUID (curata's
    default ids are uuid4 hex), else a stable UUID derived from it."""
    try:
        return str(uuid.UUID(hex=run_id))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"curata-run:{run_id}"))


# -- transports -------------------------------------------------------------------------------


def _transport(target: str) -> Transport:
    from openlineage.client.transport.console import ConsoleConfig, ConsoleTransport
    from openlineage.client.transport.file import FileConfig, FileTransport
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    if target == "-":
        return ConsoleTransport(ConsoleConfig())
    parts = urlsplit(target)
    if parts.scheme in ("http", "https"):
        if not parts.netloc:
            raise InvalidInput(f"{target!r} has no host.", hint="E.g. http://localhost:5000")
        endpoint = parts.path.lstrip("/") or HTTP_ENDPOINT
        if parts.query:
            endpoint += f"?{parts.query}"
        config = HttpConfig(
            url=f"{parts.scheme}://{parts.netloc}/",
            endpoint=endpoint,
            timeout=HTTP_TIMEOUT_SECONDS,
            retry=HTTP_RETRY,
        )
        return HttpTransport(config)
    if "://" in target and parts.scheme != "file":
        raise InvalidInput(
            f"Cannot send OpenLineage events to {target!r}.",
            hint="Give a file path, an http(s):// URL, or - for standard output.",
        )
    path = Path(parts.path if parts.scheme == "file" else target).expanduser()
    if path.is_dir():
        raise InvalidInput(f"{path} is a folder; give a file path for the events.")
    if not path.parent.is_dir():
        raise InvalidInput(f"Folder {path.parent} does not exist.", hint="Create it first.")
    return FileTransport(FileConfig(log_file_path=str(path), append=True))


class _RaisingStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler whose write errors (a closed pipe) stop the export instead of being
    printed as a logging traceback."""

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]  # the error emit() is handling
        if error is not None:
            raise error


@contextmanager
def _console_to_stdout(enabled: bool) -> Iterator[None]:
    """The console transport writes through :mod:`logging`; show its events on stdout, one per
    line, whatever the application's logging setup is."""
    if not enabled:
        yield
        return
    logger = logging.getLogger(_CONSOLE_LOGGER)
    handler = _RaisingStreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


# -- events ---------------------------------------------------------------------------------------


class _EventBuilder:
    """Builds RunEvents for the runs of one lake, reading each dataset's log once."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self.namespace = lake_namespace(lake.uri)
        self._logs: dict[str, dict[int, Commit]] = {}

    def commit(self, ref: str) -> Commit | None:
        """The commit ``dataset@version`` names, if the catalog has it."""
        name, _, version = ref.rpartition("@")
        if not version.isdigit():
            return None
        if name not in self._logs:
            try:
                log = self.lake.dataset(name).log()
            except (NotFound, InvalidInput):
                log = []
            self._logs[name] = {c.version: c for c in log}
        return self._logs[name].get(int(version))

    def events(self, run: Run, since: datetime | None) -> list[tuple[datetime, RunEvent]]:
        """The START event and, for a finished run, the COMPLETE or FAIL event."""
        from openlineage.client.event_v2 import Job, RunEvent, RunState
        from openlineage.client.event_v2 import Run as OLRun
        from openlineage.client.facet_v2 import job_type_job

        job = Job(
            namespace=self.namespace,
            name=run.job,
            facets={
                "jobType": job_type_job.JobTypeJobFacet(
                    processingType="BATCH", integration="CURATA", jobType="JOB", producer=PRODUCER
                )
            },
        )
        inputs = [self.input_dataset(ref) for ref in run.inputs]
        out: list[tuple[datetime, RunEvent]] = []
        if since is None or run.started_at >= since:
            start = RunEvent(
                eventType=RunState.START,
                eventTime=str(iso(run.started_at)),
                run=OLRun(runId=run_uuid(run.id), facets=self.run_facets(run, ended=False)),
                job=job,
                inputs=inputs,
                outputs=[],
                producer=PRODUCER,
            )
            out.append((run.started_at, start))
        if run.ended_at is not None and (since is None or run.ended_at >= since):
            lineage = run.metrics.get("column_lineage")
            outputs = [self.output_dataset(ref, lineage) for ref in run.outputs]
            end = RunEvent(
                eventType=RunState.COMPLETE if run.status == "succeeded" else RunState.FAIL,
                eventTime=str(iso(run.ended_at)),
                run=OLRun(runId=run_uuid(run.id), facets=self.run_facets(run, ended=True)),
                job=job,
                inputs=inputs,
                outputs=outputs,
                producer=PRODUCER,
            )
            out.append((run.ended_at, end))
        return out

    def run_facets(self, run: Run, *, ended: bool) -> dict[str, Any]:
        """processing_engine, curata's parameters, and errorMessage for a failed run."""
        from openlineage.client.facet_v2 import (
            error_message_run,
            execution_parameters_run,
            processing_engine_run,
        )

        params = [
            execution_parameters_run.ExecutionParameter(key=k, value=_text(v))
            for k, v in sorted(run.params.items())
        ]
        extra = {
            "curata.run_id": run.id,
            "curata.executor": run.executor,
            "curata.code_version": run.code_version,
        }
        params += [
            execution_parameters_run.ExecutionParameter(key=k, value=v)
            for k, v in extra.items()
            if v is not None
        ]
        facets: dict[str, Any] = {
            "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
                version=__version__, name="curata", producer=PRODUCER
            ),
            "executionParameters": execution_parameters_run.ExecutionParametersRunFacet(
                parameters=params, producer=PRODUCER
            ),
        }
        if ended and run.status == "failed":
            facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=run.error or "failed", programmingLanguage="PYTHON", producer=PRODUCER
            )
        return facets

    def dataset_facets(self, ref: str) -> tuple[str, str, dict[str, DatasetFacet]]:
        """Namespace, name and facets (dataSource, schema, version) of an input or output."""
        from openlineage.client.facet_v2 import (
            dataset_version_dataset,
            datasource_dataset,
            schema_dataset,
        )

        if "://" in ref:
            namespace, name = _uri_dataset(ref)
            return namespace, name, {}
        name, _, version = ref.rpartition("@")
        facets: dict[str, DatasetFacet] = {
            "dataSource": datasource_dataset.DatasourceDatasetFacet(
                name=self.namespace, uri=self.namespace, producer=PRODUCER
            ),
            "version": dataset_version_dataset.DatasetVersionDatasetFacet(
                datasetVersion=version, producer=PRODUCER
            ),
        }
        commit = self.commit(ref)
        if commit is not None:
            fields = [
                schema_dataset.SchemaDatasetFacetFields(name=col["name"], type=col["type"])
                for col in commit.schema
            ]
            facets["schema"] = schema_dataset.SchemaDatasetFacet(fields=fields, producer=PRODUCER)
        return self.namespace, name, facets

    def input_dataset(self, ref: str) -> InputDataset:
        """An input with its facets."""
        from openlineage.client.event_v2 import InputDataset

        namespace, name, facets = self.dataset_facets(ref)
        return InputDataset(namespace=namespace, name=name, facets=facets)

    def output_dataset(self, ref: str, lineage: Any) -> OutputDataset:
        """An output with its facets, outputStatistics and, if known, columnLineage."""
        from openlineage.client.event_v2 import OutputDataset
        from openlineage.client.facet_v2 import output_statistics_output_dataset as stats

        namespace, name, facets = self.dataset_facets(ref)
        column_lineage = self.column_lineage(name, lineage)
        if column_lineage is not None:
            facets["columnLineage"] = column_lineage
        commit = self.commit(ref)
        output_facets: dict[str, Any] = {}
        if commit is not None:
            output_facets["outputStatistics"] = stats.OutputStatisticsOutputDatasetFacet(
                rowCount=commit.rows, producer=PRODUCER
            )
        return OutputDataset(
            namespace=namespace, name=name, facets=facets, outputFacets=output_facets
        )

    def column_lineage(self, output: str, lineage: Any) -> DatasetFacet | None:
        """The columnLineage facet of ``output`` from the run's ``column_lineage`` metric:
        ``{output_dataset: {out_col: [[in_dataset, in_col], ...]}}``. Entries not of that
        shape are left out."""
        from openlineage.client.facet_v2 import column_lineage_dataset as cl

        if not isinstance(lineage, dict):
            return None
        columns = lineage.get(output)
        if columns is None:
            columns = next((v for k, v in lineage.items() if k.partition("@")[0] == output), None)
        if not isinstance(columns, dict):
            return None
        fields: dict[str, cl.Fields] = {}
        for out_col, sources in columns.items():
            inputs = [
                cl.InputField(namespace=ns, name=name, field=str(pair[1]))
                for pair in sources or []
                if isinstance(pair, list | tuple) and len(pair) == 2
                for ns, name in [self.dataset_name(str(pair[0]))]
            ]
            if inputs:
                fields[str(out_col)] = cl.Fields(inputFields=inputs)
        if not fields:
            return None
        return cl.ColumnLineageDatasetFacet(fields=fields, producer=PRODUCER)

    def dataset_name(self, ref: str) -> tuple[str, str]:
        """Namespace and name of a dataset reference or an outside source URI."""
        if "://" in ref:
            return _uri_dataset(ref)
        return self.namespace, ref.partition("@")[0]


def _uri_dataset(uri: str) -> tuple[str, str]:
    """OpenLineage naming of a source outside the lake: ``file`` + path, or
    ``scheme://authority`` + path."""
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return "file", parts.path
    return f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/") or "/"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
