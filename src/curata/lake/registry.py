"""Registering datasets in the catalog: the rows a new dataset starts with."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from curata.errors import InvalidInput
from curata.lake import schema as t
from curata.lake.catalog import utcnow
from curata.lake.models import KINDS
from curata.lake.refs import MAIN, validate_name


def storage_path(name: str) -> str:
    """Where the data files of dataset ``name`` live, relative to the lake's data folder."""
    return f"{name}.lance"


def check_new_dataset(name: str, kind: str, key: str | None) -> None:
    """Refuse a bad name, kind or key column before anything is written.

    Raises:
        InvalidInput: naming what is wrong and what is allowed.
    """
    validate_name(name)
    if kind not in KINDS:
        raise InvalidInput(f"Unknown dataset kind {kind!r}.", hint=f"Kinds: {', '.join(KINDS)}.")
    if key is not None:
        validate_name(key, "key column")


def insert_dataset(
    conn: Connection,
    name: str,
    *,
    kind: str,
    key: str | None,
    description: str,
    owner: str | None,
    tags: Sequence[str],
    author: str,
) -> None:
    """Insert the catalog rows of an empty dataset (no versions yet, a ``main`` branch) in the
    caller's transaction; the caller has checked that the name is free."""
    now = utcnow()
    result = conn.execute(
        sa.insert(t.datasets).values(
            name=name,
            kind=kind,
            primary_key=key,
            description=description,
            owner=owner,
            tags=sorted(set(tags)),
            classifications={},
            storage_path=storage_path(name),
            created_at=now,
            created_by=author,
        )
    )
    assert result.inserted_primary_key is not None
    conn.execute(
        sa.insert(t.refs).values(
            dataset_id=result.inserted_primary_key[0],
            kind="branch",
            name=MAIN,
            version=None,
            updated_at=now,
            updated_by=author,
        )
    )
