"""curata: data management for generative-AI teams.

Every artifact is a versioned dataset in a *lake*: a folder of Lance files plus a catalog
(SQLite inside the lake by default, PostgreSQL for teams). Each write publishes one version
with an automatic change log; any version can be read back exactly as it was.

Quickstart::

    import curata

    lake = curata.init("my-project")          # creates my-project/.curata
    tickets = lake.create_dataset("tickets", kind="records", key="ticket_id")
    tickets.append(table, message="initial import")          # Arrow, pandas or polars
    commit = tickets.upsert(corrections, message="fix answers")
    print(commit.summary)                  # upsert: +5 rows, 10 updated (answer, status)
    tickets.tag("prod", commit.version)
    df = lake.ref("tickets@prod").to_pandas()
    lake.query('SELECT status, count(*) FROM "tickets@prod" GROUP BY status')

Later, ``curata.open()`` finds the lake from ``CURATA_LAKE`` or the nearest ``.curata`` folder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from curata.errors import (
    AlreadyExists,
    CatalogUnavailable,
    Conflict,
    CurataError,
    InvalidInput,
    MissingDependency,
    NotFound,
    QualityGateFailed,
    StorageError,
)

if TYPE_CHECKING:
    from curata.lake import Commit, Dataset, DatasetInfo, Lake, Publication, Ref, RowDiff, Snapshot

__version__ = "0.1.0"

__all__ = [
    "AlreadyExists",
    "CatalogUnavailable",
    "Commit",
    "Conflict",
    "CurataError",
    "Dataset",
    "DatasetInfo",
    "InvalidInput",
    "Lake",
    "MissingDependency",
    "NotFound",
    "Publication",
    "QualityGateFailed",
    "Ref",
    "RowDiff",
    "Snapshot",
    "StorageError",
    "__version__",
    "init",
    "open",
]

_LAZY = {"Commit", "Dataset", "DatasetInfo", "Lake", "Publication", "Ref", "RowDiff", "Snapshot"}


def open(path: str | None = None, *, author: str | None = None) -> Lake:
    """Open a lake: ``path``, else ``CURATA_LAKE``, else the nearest ``.curata`` walking up.

    Args:
        path: the lake folder, a folder holding ``.curata``, or an object-storage URI.
        author: default author of commits (else ``CURATA_AUTHOR``, git ``user.name``, OS user).

    Raises:
        NotFound: there is no lake there.
    """
    from curata.lake import open_lake

    return open_lake(path, author=author)


def init(path: str | None = None, *, catalog_url: str | None = None) -> Lake:
    """Create (or open, if it exists) the lake ``PATH/.curata``.

    >>> lake = curata.init("/tmp/demo")  # doctest: +SKIP
    """
    from curata.lake import init_lake

    return init_lake(path, catalog_url=catalog_url)


def __getattr__(name: str) -> Any:
    # The lake's classes pull in SQLAlchemy and Lance; load them on first use so
    # `import curata` stays fast.
    if name in _LAZY:
        import curata.lake

        return getattr(curata.lake, name)
    raise AttributeError(f"module 'curata' has no attribute {name!r}")
