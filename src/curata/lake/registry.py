"""Registering datasets in the catalog: the rows a new dataset starts with."""

from __future__ import annotations

import hashlib
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


def lock_name(conn: Connection, name: str) -> None:
    """Hold, until the transaction ends, the right to create dataset ``name`` (or to remove
    data stored under its name). SQLite's write transaction holds the whole database already;
    on PostgreSQL this is an advisory lock, so two writers creating one name queue, and the
    second finds the dataset instead of failing on the unique constraint."""
    if conn.dialect.name != "postgresql":
        return
    digest = hashlib.blake2b(f"curata-dataset:{name}".encode(), digest_size=8).digest()
    conn.execute(
        sa.select(sa.func.pg_advisory_xact_lock(int.from_bytes(digest, "big", signed=True)))
    )
