"""Shared fixtures: lakes on SQLite and on PostgreSQL.

PostgreSQL tests run when ``CURATA_TEST_PG_URL`` is set (``.ci/run`` sets it); each test gets
its own schema, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

import curata

PG_URL = os.environ.get("CURATA_TEST_PG_URL")
CATALOGS = ["sqlite", "postgres"]


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's lake, catalog or author settings."""
    for var in ("CURATA_LAKE", "CURATA_CATALOG_URL", "CURATA_AUTHOR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CURATA_AUTHOR", "test-author")


@pytest.fixture
def pg_catalog_url() -> Iterator[str]:
    """A catalog URL whose tables live in a fresh PostgreSQL schema."""
    if not PG_URL:
        pytest.skip("CURATA_TEST_PG_URL is not set (PostgreSQL tests run in CI)")
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    engine.dispose()


@pytest.fixture(params=CATALOGS)
def catalog_url(request: pytest.FixtureRequest) -> str | None:
    """None for the default SQLite catalog, else a PostgreSQL URL (one test run per catalog)."""
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("pg_catalog_url")
    return url


@pytest.fixture
def lake(tmp_path: Path, catalog_url: str | None) -> Iterator[curata.Lake]:
    """An empty lake in a temporary folder, on each catalog backend."""
    lk = curata.init(str(tmp_path / "project"), catalog_url=catalog_url)
    yield lk
    lk.close()


@pytest.fixture
def sqlite_lake(tmp_path: Path) -> Iterator[curata.Lake]:
    """An empty lake on the default SQLite catalog only."""
    lk = curata.init(str(tmp_path / "project"))
    yield lk
    lk.close()
