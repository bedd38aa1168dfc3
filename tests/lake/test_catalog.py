"""Catalog plumbing: the migration head, concurrent first opens."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory

from curata.lake.catalog import HEAD_REVISION, alembic_config, schema_revision


def test_head_revision_constant_matches_the_migration_scripts() -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION


def test_a_new_lake_is_at_the_head_revision(lake) -> None:
    assert schema_revision(lake.catalog.engine) == HEAD_REVISION


def test_concurrent_first_opens_migrate_once(
    tmp_path: Path, catalog_url: str | None, monkeypatch
) -> None:
    """Several processes opening a lake with a brand-new catalog at once all succeed."""
    import curata

    lake_dir = tmp_path / "p" / ".curata"
    (lake_dir / "data").mkdir(parents=True)
    (lake_dir / "lake.json").write_text('{"format": 1, "catalog_url": null}')
    if catalog_url:
        monkeypatch.setenv("CURATA_CATALOG_URL", catalog_url)
    code = (
        "import os, curata; "
        f"curata.open({str(lake_dir)!r}).create_dataset('d' + os.urandom(4).hex())"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE) for _ in range(4)
    ]
    errors = [p.communicate()[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    with curata.open(str(lake_dir)) as lk:
        assert schema_revision(lk.catalog.engine) == HEAD_REVISION
        assert len(lk.datasets()) == 4
