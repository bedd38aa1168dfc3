"""Catalog tables (SQLAlchemy Core). Changes to them go through an Alembic migration."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("primary_key", sa.String(128), nullable=True),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("owner", sa.String(256), nullable=True),
    sa.Column("tags", sa.JSON, nullable=False, default=list),
    sa.Column("classifications", sa.JSON, nullable=False, default=dict),
    sa.Column("storage_path", sa.String(512), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
)

commits = sa.Table(
    "commits",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("branch", sa.String(128), nullable=False),
    sa.Column("parent_version", sa.Integer, nullable=True),
    sa.Column("lance_version", sa.Integer, nullable=False),
    sa.Column("author", sa.String(256), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("message", sa.Text, nullable=False, default=""),
    sa.Column("operation", sa.String(16), nullable=False),
    sa.Column("row_count", sa.BigInteger, nullable=False),
    sa.Column("schema", sa.JSON, nullable=False),
    sa.Column("changes", sa.JSON, nullable=False),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("publish_id", sa.String(64), nullable=False),
    sa.Column("pruned_at", sa.DateTime, nullable=True),
    sa.UniqueConstraint("dataset_id", "version", name="uq_commits_dataset_version"),
)

refs = sa.Table(
    "refs",
    metadata,
    sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id"), primary_key=True),
    sa.Column("kind", sa.String(8), primary_key=True),  # 'branch' | 'tag'
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("version", sa.Integer, nullable=True),  # None: a branch with no commit yet
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("updated_by", sa.String(256), nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("job", sa.String(256), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("params", sa.JSON, nullable=False, default=dict),
    sa.Column("code_version", sa.String(64), nullable=True),
    sa.Column("executor", sa.String(32), nullable=True),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("ended_at", sa.DateTime, nullable=True),
    sa.Column("metrics", sa.JSON, nullable=False, default=dict),
    sa.Column("inputs", sa.JSON, nullable=False, default=list),
    sa.Column("outputs", sa.JSON, nullable=False, default=list),
    sa.Column("error", sa.Text, nullable=True),
    # The process that started it (host, pid, ...): see curata.lake.run_owner.
    sa.Column("owner", sa.JSON, nullable=True),
)

usages = sa.Table(
    "usages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("consumer_kind", sa.String(32), nullable=False),
    sa.Column("consumer_name", sa.String(256), nullable=False),
    sa.Column("consumer_version", sa.String(64), nullable=True),
    sa.Column("purpose", sa.String(64), nullable=False),
    sa.Column("recorded_at", sa.DateTime, nullable=False),
    sa.Column("recorded_by", sa.String(256), nullable=False),
)
