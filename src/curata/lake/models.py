"""Plain records the lake hands out: commits and dataset descriptions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

KINDS = (
    "documents",
    "chunks",
    "records",
    "logs",
    "labels",
    "synthetic",
    "report",
    "knowledge_base",
)
OPERATIONS = ("create", "append", "upsert", "delete", "overwrite", "revert", "transform")


def iso(ts: datetime | None) -> str | None:
    """UTC timestamp as ISO-8601 with a ``Z``."""
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Commit:
    """One published version of a dataset."""

    dataset: str
    version: int
    branch: str
    parent: int | None
    author: str
    timestamp: datetime
    message: str
    operation: str
    rows: int
    schema: list[dict[str, str]]
    changes: dict[str, Any]
    run_id: str | None
    lance_version: int
    pruned: bool = False
    tags: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        """``dataset@version``."""
        return f"{self.dataset}@{self.version}"

    @property
    def summary(self) -> str:
        """One-line change summary."""
        return str(self.changes.get("summary", ""))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``--json`` prints)."""
        return {
            "dataset": self.dataset,
            "version": self.version,
            "branch": self.branch,
            "parent": self.parent,
            "author": self.author,
            "timestamp": iso(self.timestamp),
            "message": self.message,
            "operation": self.operation,
            "rows": self.rows,
            "schema": self.schema,
            "changes": self.changes,
            "run_id": self.run_id,
            "tags": self.tags,
            "pruned": self.pruned,
        }


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset's catalog entry with its main head."""

    name: str
    kind: str
    key: str | None
    description: str
    owner: str | None
    tags: list[str]
    classifications: dict[str, str]
    version: int | None
    rows: int
    columns: list[dict[str, str]]
    created_at: datetime
    created_by: str
    branches: dict[str, int | None]
    version_tags: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``ls --json`` and ``show --json`` print)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "key": self.key,
            "description": self.description,
            "owner": self.owner,
            "tags": self.tags,
            "classifications": self.classifications,
            "version": self.version,
            "rows": self.rows,
            "columns": self.columns,
            "created_at": iso(self.created_at),
            "created_by": self.created_by,
            "branches": self.branches,
            "version_tags": self.version_tags,
        }
