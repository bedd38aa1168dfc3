"""Runs record the process that started them, so a run whose process is gone shows as such.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("owner", sa.JSON, nullable=True))


def downgrade() -> None:
    op.drop_column("runs", "owner")
