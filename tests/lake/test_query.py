"""Reading: SQL over dataset references, and a snapshot in every output format."""

from __future__ import annotations

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import curata


@pytest.fixture
def tickets(lake: curata.Lake) -> curata.Dataset:
    """v1 (tag ``orig``): 5 rows; v2: +3 rows, 2 updated; v3: 1 deleted."""
    ds = lake.create_dataset("tickets", key="id")
    ds.append(
        pa.table(
            {
                "id": [1, 2, 3, 4, 5],
                "status": ["open", "open", "closed", "open", "spam"],
                "answer": ["a", "b", "c", "d", "e"],
            }
        )
    )
    ds.tag("orig", 1)
    ds.upsert(
        pa.table(
            {
                "id": [1, 2, 6, 7, 8],
                "status": ["closed", "closed", "open", "open", "open"],
                "answer": ["a", "b", "f", "g", "h"],
            }
        )
    )
    ds.delete("status = 'spam'")
    return ds


# -- query --------------------------------------------------------------------------------------


def test_query_reads_a_tagged_reference(lake: curata.Lake, tickets: curata.Dataset) -> None:
    result = lake.query('SELECT count(*) AS n FROM "tickets@orig"')
    assert result.to_pylist() == [{"n": 5}]


def test_query_plain_names_are_the_head_of_main(lake: curata.Lake, tickets: curata.Dataset) -> None:
    result = lake.query("SELECT status, count(*) AS n FROM tickets GROUP BY status ORDER BY status")
    assert result.to_pylist() == [{"status": "closed", "n": 3}, {"status": "open", "n": 4}]


def test_query_joins_two_versions(lake: curata.Lake, tickets: curata.Dataset) -> None:
    result = lake.query(
        'SELECT o.id, o.status AS before, n.status AS after FROM "tickets@1" o '
        'JOIN "tickets@v3" n USING (id) WHERE o.status <> n.status ORDER BY o.id'
    )
    assert result.to_pylist() == [
        {"id": 1, "before": "open", "after": "closed"},
        {"id": 2, "before": "open", "after": "closed"},
    ]
    # NATURAL JOIN and USING need DuckDB to bind columns, which it cannot do before curata
    # has bound the references: they must work all the same.
    same = lake.query('SELECT count(*) AS n FROM "tickets@1" NATURAL JOIN "tickets@3"')
    assert same.to_pylist() == [{"n": 2}]  # ids 3 and 4 kept every value
    with pytest.raises(curata.NotFound, match="no version 7"):
        lake.query('SELECT * FROM "tickets@1" JOIN "tickets@7" USING (id)')
    gone = lake.query(
        'SELECT id FROM "tickets@orig" EXCEPT SELECT id FROM "tickets@branch:main" ORDER BY id'
    )
    assert gone.column("id").to_pylist() == [5]


def test_query_joins_two_datasets(lake: curata.Lake, tickets: curata.Dataset) -> None:
    labels = lake.create_dataset("labels")
    labels.append(pa.table({"ticket": [1, 3, 99], "label": ["x", "y", "z"]}))
    result = lake.query(
        "SELECT t.id, l.label FROM tickets t JOIN labels l ON t.id = l.ticket ORDER BY t.id"
    )
    assert result.to_pylist() == [{"id": 1, "label": "x"}, {"id": 3, "label": "y"}]


def test_query_leaves_ctes_alone(lake: curata.Lake, tickets: curata.Dataset) -> None:
    result = lake.query(
        "WITH open_ones AS (SELECT * FROM tickets WHERE status = 'open') "
        "SELECT count(*) AS n FROM open_ones"
    )
    assert result.to_pylist() == [{"n": 4}]


def test_query_of_an_unknown_reference_is_not_found(
    lake: curata.Lake, tickets: curata.Dataset
) -> None:
    with pytest.raises(curata.NotFound, match="no version 9"):
        lake.query('SELECT * FROM "tickets@9"')
    with pytest.raises(curata.NotFound, match="no tag or branch 'prod'"):
        lake.query('SELECT * FROM "tickets@prod"')
    with pytest.raises(curata.NotFound, match="Did you mean: tickets"):
        lake.query('SELECT * FROM "tickts@1"')
    with pytest.raises(curata.NotFound) as err:
        lake.query("SELECT * FROM no_such_table")
    assert err.value.hint is not None and "dataset references" in err.value.hint


@pytest.mark.parametrize(
    "sql",
    ["SELEC * FROM tickets", "SELECT * FROM tickets WHERE", "SELECT nope FROM tickets"],
)
def test_bad_sql_is_invalid_input(lake: curata.Lake, tickets: curata.Dataset, sql: str) -> None:
    with pytest.raises(curata.InvalidInput) as err:
        lake.query(sql)
    assert err.value.exit_code == 2


# -- snapshots ----------------------------------------------------------------------------------


def test_a_snapshot_knows_its_version(lake: curata.Lake, tickets: curata.Dataset) -> None:
    snap = lake.ref("tickets@orig")
    assert (snap.dataset, snap.version, snap.ref, snap.key) == ("tickets", 1, "tickets@1", "id")
    assert snap.schema.names == ["id", "status", "answer"]
    assert repr(snap) == "<Snapshot tickets@1 rows=5>"
    assert snap.to_dict()["tags"] == ["orig"]
    assert snap.to_dict()["rows"] == 5


def test_to_arrow_with_columns_filter_and_limit(tickets: curata.Dataset) -> None:
    snap = tickets.at("orig")
    table = snap.to_arrow(columns=["id", "status"], filter="status = 'open'")
    assert table.column_names == ["id", "status"]
    assert sorted(table.column("id").to_pylist()) == [1, 2, 4]
    assert snap.to_arrow(limit=2).num_rows == 2


def test_count_rows_with_a_filter(tickets: curata.Dataset) -> None:
    assert tickets.head.count_rows() == 7
    assert tickets.head.count_rows("status = 'open'") == 4
    assert tickets.at("orig").count_rows("status = 'open'") == 3
    assert tickets.head.count_rows("id > 100") == 0


def test_a_bad_filter_is_invalid_input(tickets: curata.Dataset) -> None:
    with pytest.raises(curata.InvalidInput):
        tickets.head.count_rows("status ==== 'x'")
    with pytest.raises(curata.InvalidInput, match="nope"):
        tickets.head.to_arrow(filter="nope = 1")


def test_to_pandas_and_to_polars(tickets: curata.Dataset) -> None:
    frame = tickets.at("orig").to_pandas(filter="id <= 2")
    assert isinstance(frame, pd.DataFrame)
    assert sorted(frame["id"].tolist()) == [1, 2]
    assert list(frame.columns) == ["id", "status", "answer"]

    pframe = tickets.head.to_polars(columns=["id"])
    assert isinstance(pframe, pl.DataFrame)
    assert pframe.columns == ["id"]
    assert sorted(pframe["id"].to_list()) == [1, 2, 3, 4, 6, 7, 8]


def test_to_duckdb_is_a_relation_over_the_snapshot(tickets: curata.Dataset) -> None:
    con = duckdb.connect()
    rel = tickets.at("orig").to_duckdb(con)
    assert rel.filter("status = 'open'").aggregate("count(*)").fetchall() == [(3,)]
    head = tickets.head.to_duckdb()
    assert head.aggregate("max(id)").fetchall() == [(8,)]


def test_to_batches_streams_every_row(lake: curata.Lake) -> None:
    ds = lake.create_dataset("big")
    ds.append(pa.table({"n": list(range(1000))}))
    ds.append(pa.table({"n": list(range(1000, 1500))}))
    batches = list(ds.head.to_batches(batch_size=128))
    assert all(b.num_rows <= 128 for b in batches)
    assert sorted(n for b in batches for n in b.column("n").to_pylist()) == list(range(1500))
    odd = list(ds.head.to_batches(columns=["n"], filter="n % 2 = 1"))
    assert sum(b.num_rows for b in odd) == 750


def test_an_old_snapshot_stays_readable_after_later_writes(tickets: curata.Dataset) -> None:
    snap = tickets.at(1)
    tickets.overwrite(pa.table({"id": [100], "status": ["x"], "answer": ["y"]}))
    assert snap.count_rows() == 5
    assert tickets.at(1).count_rows() == 5
    assert tickets.head.count_rows() == 1
