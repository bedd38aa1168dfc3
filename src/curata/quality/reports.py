"""Quality results kept in the lake: a ``report`` dataset per checked dataset and kind.

``curata check tickets@3`` stores its per-rule outcomes as a new version of the dataset
``tickets.check`` (kind ``report``); ``pii scan`` uses ``tickets.pii_scan``, ``bias`` uses
``tickets.bias``. Each stored version holds one run's rows plus a ``checked`` column naming the
exact version checked (``tickets@3``), and is published by a recorded run whose inputs are that
version and any other version the check read — so lineage answers "which checks has tickets@3
passed?" and the report's own history shows how quality moved over time.

A check whose rows equal the report's current version (the same version checked again, with
the same outcomes) publishes no new version: its run is recorded with the version it confirmed
as output, and :attr:`StoredReport.created` is False.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pyarrow as pa

    from curata.lake import Lake


@dataclass(frozen=True)
class StoredReport:
    """Where a report was stored."""

    ref: str  # e.g. tickets.check@4
    run_id: str
    checked: str  # e.g. tickets@3
    #: False when the rows equalled the report's head, which the run then confirmed
    created: bool = True


def report_dataset(checked_dataset: str, kind: str) -> str:
    """``tickets`` + ``check`` -> ``tickets.check``."""
    return f"{checked_dataset}.{kind}"


def store_report(
    lake: Lake,
    *,
    kind: str,
    checked: str,
    rows: pa.Table,
    params: dict[str, Any],
    metrics: dict[str, Any],
    message: str,
    also_read: Sequence[str] = (),
) -> StoredReport:
    """Publish ``rows`` as the new version of the report dataset of ``checked``, by a run.

    When ``rows`` equal the report's current version, nothing is published and the run is
    recorded with that version as its output (``created`` is False).

    Args:
        lake: the lake.
        kind: ``check``, ``pii_scan``, ``bias``, ``dedup``...
        checked: the exact version checked (``dataset@version``).
        rows: the report's rows (one per rule, entity, group...).
        params: what the check was asked (stored on the run).
        metrics: headline figures (stored on the run).
        message: the version's message.
        also_read: other exact versions the check read (its ReferentialIntegrity datasets):
            inputs of the run, next to ``checked``.
    """
    import pyarrow as pa

    dataset = checked.partition("@")[0]
    name = report_dataset(dataset, kind)
    column = pa.array([checked] * rows.num_rows, pa.string())
    table = rows.append_column("checked", column) if "checked" not in rows.column_names else rows
    run_id = lake.start_run(
        f"{kind}:{dataset}",
        params=params,
        code_version=None,
        executor="local",
        inputs=[checked, *also_read],
    )
    try:
        with lake.publish(message=message, run_id=run_id) as pub:
            pub.create_dataset(
                name,
                kind="report",
                description=f"{kind} results of {dataset}, one version per run",
            )
            pub.overwrite(name, table)
            # Under the report's lock: the new version, or the head the rows equal.
            ref = f"{name}@{pub.resulting_version(name)}"
        created = bool(pub.commits)
    except BaseException as err:
        lake.finish_run(run_id, status="failed", metrics={}, outputs=[], error=str(err))
        raise
    lake.finish_run(run_id, status="succeeded", metrics=metrics, outputs=[ref])
    return StoredReport(ref, run_id, checked, created)
