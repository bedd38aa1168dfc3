"""The catalog database: engine, migrations, and the transactions that lock and publish.

The catalog is the source of truth for which Lance version of a dataset is published.
Writers hold a per-dataset lock across "check head -> write -> publish": a row lock
(``SELECT ... FOR UPDATE``) on PostgreSQL, the database write lock (``BEGIN IMMEDIATE``)
on SQLite. Both die with the connection, so a crashed writer never leaves a stale lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from curata.errors import CatalogUnavailable, Conflict, CurataError, InvalidInput
from curata.lake import schema as t

SQLITE_BUSY_TIMEOUT_MS = 300_000
_WRITE_OPTION = "curata_write"


def utcnow() -> datetime:
    """Now in UTC, without tzinfo (the catalog stores naive UTC on every backend)."""
    return datetime.now(UTC).replace(tzinfo=None)


def create_catalog_engine(url: str) -> Engine:
    """Make an engine for ``url`` with curata's connection settings.

    Raises:
        InvalidInput: the URL is malformed or names a driver that is not installed.
    """
    try:
        sa_url = sa.make_url(url)
    except sa.exc.ArgumentError as err:
        raise InvalidInput(f"Catalog URL {url!r} is not a valid SQLAlchemy URL.") from err
    if sa_url.get_backend_name() == "postgresql" and sa_url.drivername == "postgresql":
        sa_url = sa_url.set(drivername="postgresql+psycopg")
    try:
        if sa_url.get_backend_name() == "sqlite":
            engine = sa.create_engine(
                sa_url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1e3}
            )
            _configure_sqlite(engine)
        else:
            engine = sa.create_engine(sa_url, pool_pre_ping=True)
    except ImportError as err:
        raise InvalidInput(
            f"The database driver for catalog URL {sa_url.render_as_string()} is not installed.",
            hint='For PostgreSQL: pip install "curata[postgres]"',
        ) from err
    return engine


def _configure_sqlite(engine: Engine) -> None:
    """WAL for concurrent readers; explicit BEGIN (IMMEDIATE for writers) instead of pysqlite's."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


# The newest migration. Checked against the migration scripts by a test; knowing it here lets
# opening an up-to-date lake skip loading Alembic.
HEAD_REVISION = "0003"
# Key of the PostgreSQL advisory lock that serialises migrations of one catalog.
_MIGRATION_LOCK = 0x637572617461


def alembic_config() -> Any:
    """Alembic configuration pointing at curata's migration scripts."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("curata.lake") / "migrations"))
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the catalog schema to the newest revision (a no-op when it is already there).

    Concurrent first opens are safe: the upgrade runs under the catalog's write lock (an
    advisory lock on PostgreSQL), and Alembic re-reads the revision inside it.
    """
    if _current_revision(engine) == HEAD_REVISION:
        return
    from alembic import command

    cfg = alembic_config()
    with _translate_errors(), engine.connect().execution_options(**{_WRITE_OPTION: True}) as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        conn.commit()


def _current_revision(engine: Engine) -> str | None:
    with _translate_errors(), engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def schema_revision(engine: Engine) -> str | None:
    """The catalog's current migration revision."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def _translate_errors() -> Iterator[None]:
    try:
        yield
    except CurataError:
        raise
    except OperationalError as err:
        raise CatalogUnavailable(
            f"The catalog database is unavailable: {err.orig}",
            hint="Check CURATA_CATALOG_URL and that the database server is running.",
        ) from err
    except IntegrityError as err:
        raise Conflict(
            "Another writer changed the catalog at the same moment; nothing was published.",
            hint="Run the command again.",
        ) from err
    except SQLAlchemyError as err:
        raise CurataError(f"Catalog error: {err}") from err


class Catalog:
    """Access to the catalog database. Only :mod:`curata.lake` uses it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_catalog_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"

    def migrate(self) -> None:
        """Create or upgrade the schema."""
        migrate(self.engine)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A short read transaction."""
        with _translate_errors(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction; on SQLite it holds the database write lock from the start."""
        with (
            _translate_errors(),
            self.engine.connect().execution_options(**{_WRITE_OPTION: True}) as conn,
            conn.begin(),
        ):
            yield conn

    def lock_datasets(self, conn: Connection, names: list[str]) -> dict[str, sa.Row[Any]]:
        """Lock the rows of ``names`` for this transaction (sorted, so writers never deadlock)."""
        query = sa.select(t.datasets).where(t.datasets.c.name.in_(sorted(names)))
        query = query.order_by(t.datasets.c.name)
        if not self.is_sqlite:
            query = query.with_for_update()
        return {row.name: row for row in conn.execute(query)}

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()
