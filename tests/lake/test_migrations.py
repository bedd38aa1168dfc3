"""A catalog written by an older curata (schema revision 0001) is upgraded when a newer curata
opens the lake, and everything in it stays readable and writable."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import lance
import pyarrow as pa
import sqlalchemy as sa
from alembic import command

import curata
from curata.lake.catalog import alembic_config, create_catalog_engine, schema_revision

OLD_TABLES = {"alembic_version", "datasets", "commits", "refs"}
NEW_TABLES = {"runs", "usages"}


def _catalog_at_0001(url: str) -> sa.Engine:
    engine = create_catalog_engine(url)
    cfg = alembic_config()
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.commit()
    return engine


def _schema(names_types: list[tuple[str, str]]) -> str:
    return json.dumps([{"name": n, "type": t} for n, t in names_types])


def _changes(added: int, summary: str) -> str:
    return json.dumps(
        {
            "rows_added": added,
            "rows_updated": 0,
            "rows_deleted": 0,
            "updated_columns": {},
            "columns_added": [],
            "columns_removed": [],
            "columns_retyped": [],
            "summary": summary,
        }
    )


def _write_old_lake(lake_dir: Path, catalog_url: str | None) -> sa.Engine:
    """What an older curata left behind: lake.json, Lance data and a 0001 catalog holding
    dataset ``tickets`` with versions 1 and 2 (tagged ``orig`` on 1)."""
    (lake_dir / "data").mkdir(parents=True)
    (lake_dir / "lake.json").write_text(json.dumps({"format": 1, "catalog_url": catalog_url}))
    url = catalog_url or f"sqlite:///{lake_dir / 'catalog.db'}"
    engine = _catalog_at_0001(url)

    uri = str(lake_dir / "data" / "tickets.lance")
    v1 = lance.write_dataset(pa.table({"id": [1, 2], "answer": ["a", "b"]}), uri)
    v2 = lance.write_dataset(pa.table({"id": [3], "answer": ["c"]}), uri, mode="append")
    assert (v1.version, v2.version) == (1, 2)

    when = datetime(2024, 5, 1, 12, 0, 0)
    schema = _schema([("id", "int64"), ("answer", "string")])
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO datasets (name, kind, primary_key, description, owner, tags, "
                "classifications, storage_path, created_at, created_by) VALUES ('tickets', "
                "'records', 'id', 'Support tickets', 'ana', '[\"support\"]', '{}', "
                "'tickets.lance', :when, 'old-curata')"
            ),
            {"when": when},
        )
        dataset_id = conn.execute(sa.text("SELECT id FROM datasets")).scalar_one()
        for version, parent, rows, added, op in ((1, None, 2, 2, "create"), (2, 1, 3, 1, "append")):
            conn.execute(
                sa.text(
                    "INSERT INTO commits (dataset_id, version, branch, parent_version, "
                    "lance_version, author, created_at, message, operation, row_count, schema, "
                    "changes, run_id, publish_id, pruned_at) VALUES (:ds, :v, 'main', :parent, "
                    ":v, 'ana', :when, :msg, :op, :rows, :schema, :changes, NULL, :pid, NULL)"
                ),
                {
                    "ds": dataset_id,
                    "v": version,
                    "parent": parent,
                    "when": when,
                    "msg": f"old write {version}",
                    "op": op,
                    "rows": rows,
                    "schema": schema,
                    "changes": _changes(added, f"{op}: +{added} rows"),
                    "pid": f"publish-{version}",
                },
            )
        for kind, name, version in (("branch", "main", 2), ("tag", "orig", 1)):
            conn.execute(
                sa.text(
                    "INSERT INTO refs (dataset_id, kind, name, version, updated_at, updated_by) "
                    "VALUES (:ds, :kind, :name, :v, :when, 'ana')"
                ),
                {"ds": dataset_id, "kind": kind, "name": name, "v": version, "when": when},
            )
    return engine


def _tables(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(sa.inspect(conn).get_table_names())


def test_an_old_catalog_is_upgraded_on_open_and_its_data_stays_readable(
    tmp_path: Path, catalog_url: str | None
) -> None:
    lake_dir = tmp_path / "project" / ".curata"
    engine = _write_old_lake(lake_dir, catalog_url)
    assert schema_revision(engine) == "0001"
    assert _tables(engine) == OLD_TABLES

    with curata.open(str(lake_dir)) as lake:
        assert schema_revision(engine) == "0003"
        assert _tables(engine) == OLD_TABLES | NEW_TABLES

        ds = lake.dataset("tickets")
        info = ds.info()
        assert (info.kind, info.key, info.owner, info.tags) == ("records", "id", "ana", ["support"])
        assert info.created_by == "old-curata"
        log = ds.log()
        assert [(c.version, c.operation, c.message, c.author) for c in log] == [
            (2, "append", "old write 2", "ana"),
            (1, "create", "old write 1", "ana"),
        ]
        assert log[0].timestamp.isoformat() == "2024-05-01T12:00:00+00:00"
        assert log[0].tags == [] and log[1].tags == ["orig"]
        assert sorted(lake.ref("tickets@orig").to_arrow().column("id").to_pylist()) == [1, 2]
        assert lake.query('SELECT count(*) AS n FROM "tickets"').to_pylist() == [{"n": 3}]

        # New writes build on the old history, and new features work on the old lake.
        commit = ds.upsert(pa.table({"id": [2, 4], "answer": ["B", "d"]}), message="after upgrade")
        assert commit is not None
        assert (commit.version, commit.parent, commit.rows) == (3, 2, 4)
        assert commit.summary == "upsert: +1 row, 1 updated (answer)"
        assert ds.diff("orig").changes.summary() == "+2 rows, 1 updated (answer)"
    engine.dispose()

    # Opening again finds the catalog current and changes nothing.
    with curata.open(str(lake_dir)) as lake:
        assert [c.version for c in lake.dataset("tickets").log()] == [3, 2, 1]
        assert schema_revision(lake.catalog.engine) == "0003"


def test_a_fresh_lake_is_created_at_the_newest_revision(lake: curata.Lake) -> None:
    assert schema_revision(lake.catalog.engine) == "0003"
    assert _tables(lake.catalog.engine) == OLD_TABLES | NEW_TABLES


def test_runs_of_a_0002_catalog_read_back_without_an_owner(
    tmp_path: Path, catalog_url: str | None
) -> None:
    lake_dir = tmp_path / "project" / ".curata"
    lake_dir.mkdir(parents=True)
    (lake_dir / "lake.json").write_text(json.dumps({"format": 1, "catalog_url": catalog_url}))
    engine = create_catalog_engine(catalog_url or f"sqlite:///{lake_dir / 'catalog.db'}")
    cfg = alembic_config()
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        conn.execute(
            sa.text(
                "INSERT INTO runs (id, job, status, params, started_at, metrics, inputs, "
                "outputs) VALUES ('old-run', 'clean', 'running', '{}', :when, '{}', '[]', '[]')"
            ),
            {"when": datetime(2024, 5, 1, 12, 0, 0)},
        )
        conn.commit()

    with curata.open(str(lake_dir)) as lake:
        run = lake.run("old-run")
        assert (run.status, run.owner) == ("running", None)  # nothing tells it is gone
        assert schema_revision(engine) == "0003"
    engine.dispose()
