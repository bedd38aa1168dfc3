"""Writes: every write publishes one version that records who, when, why and what changed, or
publishes nothing at all (no change, bad input, an exception in a publish block)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import lance
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import curata


def _rows(snapshot: curata.Snapshot, key: str = "id") -> list[dict[str, Any]]:
    return sorted(snapshot.to_arrow().to_pylist(), key=lambda r: r[key])


def _tickets(lake: curata.Lake, n: int = 5) -> curata.Dataset:
    ds = lake.create_dataset("tickets", key="id")
    ds.append(
        pa.table(
            {
                "id": list(range(1, n + 1)),
                "answer": [f"a{i}" for i in range(1, n + 1)],
                "status": ["open"] * n,
            }
        ),
        message="initial import",
    )
    return ds


class Unchanged:
    """Asserts that a failed write left the dataset exactly as it was."""

    def __init__(self, ds: curata.Dataset, key: str = "id") -> None:
        self.ds = ds
        self.key = key
        self.log = [c.version for c in ds.log()]
        self.rows = _rows(ds.head, key) if self.log else None

    def check(self) -> None:
        assert [c.version for c in self.ds.log()] == self.log
        if self.rows is not None:
            assert _rows(self.ds.head, self.key) == self.rows


def _lance_latest(lake: curata.Lake, name: str) -> int:
    return lance.dataset(str(Path(lake.uri) / "data" / f"{name}.lance")).version


# -- commits ------------------------------------------------------------------------------------


def test_a_commit_records_author_time_message_operation_rows_schema_and_changes(
    lake: curata.Lake,
) -> None:
    ds = lake.create_dataset("tickets", key="id")
    before = datetime.now(UTC)
    first = ds.append(pa.table({"id": [1, 2, 3], "text": ["a", "b", "c"]}), message="import")
    after = datetime.now(UTC)
    assert first is not None
    assert (first.dataset, first.version, first.branch) == ("tickets", 1, "main")
    assert first.parent is None
    assert first.author == "test-author"  # from CURATA_AUTHOR
    assert first.timestamp.tzinfo == UTC
    assert before - timedelta(seconds=1) <= first.timestamp <= after + timedelta(seconds=1)
    assert (first.message, first.operation, first.rows) == ("import", "create", 3)
    assert first.schema == [{"name": "id", "type": "int64"}, {"name": "text", "type": "string"}]
    assert first.changes == {
        "rows_added": 3,
        "rows_updated": 0,
        "rows_deleted": 0,
        "updated_columns": {},
        "columns_added": [],
        "columns_removed": [],
        "columns_retyped": [],
        "summary": "create: +3 rows",
    }
    assert first.ref == "tickets@1"

    second = ds.append(pa.table({"id": [4], "text": ["d"]}), author="ana")
    assert second is not None
    assert (second.version, second.parent, second.author, second.message) == (2, 1, "ana", "")
    assert (second.operation, second.rows, second.summary) == ("append", 4, "append: +1 row")

    # What the log says is what the writes returned.
    assert ds.log() == [second, first]
    assert ds.at(1).commit == first
    as_json = second.to_dict()
    assert as_json["timestamp"].endswith("Z")
    assert as_json["changes"]["summary"] == "append: +1 row"


def test_the_lake_author_is_the_default_and_curata_author_the_fallback(
    lake: curata.Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = lake.create_dataset("t")
    monkeypatch.setenv("CURATA_AUTHOR", "from-env")
    c1 = ds.append(pa.table({"x": [1]}))
    with curata.open(lake.uri, author="from-open") as other:
        c2 = other.dataset("t").append(pa.table({"x": [2]}))
        c3 = other.dataset("t").append(pa.table({"x": [3]}), author="explicit")
    assert [c.author for c in (c1, c2, c3) if c] == ["from-env", "from-open", "explicit"]


@pytest.mark.parametrize(
    "make",
    [
        lambda: pd.DataFrame({"id": [7, 8], "answer": ["x", "y"], "status": ["new", "new"]}),
        lambda: pl.DataFrame({"id": [7, 8], "answer": ["x", "y"], "status": ["new", "new"]}),
        lambda: [
            {"id": 7, "answer": "x", "status": "new"},
            {"id": 8, "answer": "y", "status": "new"},
        ],
        lambda: {"id": [7, 8], "answer": ["x", "y"], "status": ["new", "new"]},
        lambda: pa.record_batch({"id": [7, 8], "answer": ["x", "y"], "status": ["new", "new"]}),
    ],
    ids=["pandas", "polars", "rows", "columns", "record-batch"],
)
def test_append_takes_pandas_polars_and_python_data(sqlite_lake: curata.Lake, make: Any) -> None:
    ds = _tickets(sqlite_lake)
    commit = ds.append(make())
    assert commit is not None and commit.summary == "append: +2 rows"
    assert ds.head.schema == ds.at(1).schema  # cast to the dataset's types
    assert _rows(ds.head)[-2:] == [
        {"id": 7, "answer": "x", "status": "new"},
        {"id": 8, "answer": "y", "status": "new"},
    ]


def test_append_of_no_rows_publishes_nothing(lake: curata.Lake) -> None:
    ds = _tickets(lake)
    unchanged = Unchanged(ds)
    empty = pa.table({"id": pa.array([], pa.int64()), "answer": [], "status": []})
    assert ds.append(empty.cast(ds.head.schema)) is None
    unchanged.check()


def test_empty_writes_to_a_dataset_keyed_by_strings_publish_nothing(lake: curata.Lake) -> None:
    ds = lake.create_dataset("docs", key="doc_id")
    ds.append(pa.table({"doc_id": ["a.md", "b.md"], "text": ["A", "B"]}))
    unchanged = Unchanged(ds, key="doc_id")
    no_rows = pa.table({"doc_id": pa.array([], pa.string()), "text": pa.array([], pa.string())})
    assert ds.append(no_rows) is None
    assert ds.upsert(no_rows) is None
    assert ds.upsert(no_rows.select(["doc_id"])) is None
    unchanged.check()


def test_a_value_that_is_not_a_table_is_refused(lake: curata.Lake) -> None:
    ds = _tickets(lake)
    with pytest.raises(curata.InvalidInput, match="of type str"):
        ds.append("id,answer\n1,a")


# -- upsert -------------------------------------------------------------------------------------


def test_upsert_updates_changed_rows_inserts_new_ones_and_counts_only_real_updates(
    lake: curata.Lake,
) -> None:
    ds = _tickets(lake)
    commit = ds.upsert(
        pa.table(
            {
                "id": [1, 2, 3, 10, 11],
                "answer": ["A1", "a2", "A3", "a10", "a11"],  # 2 keeps its answer
                "status": ["open", "open", "closed", "new", "new"],
            }
        ),
        message="fix answers",
    )
    assert commit is not None
    assert commit.operation == "upsert"
    assert commit.summary == "upsert: +2 rows, 2 updated (answer, status)"
    assert commit.changes["updated_columns"] == {"answer": 2, "status": 1}
    assert commit.rows == 7
    assert _rows(ds.head) == [
        {"id": 1, "answer": "A1", "status": "open"},
        {"id": 2, "answer": "a2", "status": "open"},
        {"id": 3, "answer": "A3", "status": "closed"},
        {"id": 4, "answer": "a4", "status": "open"},
        {"id": 5, "answer": "a5", "status": "open"},
        {"id": 10, "answer": "a10", "status": "new"},
        {"id": 11, "answer": "a11", "status": "new"},
    ]


def test_a_partial_upsert_keeps_the_columns_it_does_not_carry(lake: curata.Lake) -> None:
    ds = _tickets(lake)
    commit = ds.upsert(pa.table({"id": [2, 6], "status": ["closed", "new"]}))
    assert commit is not None
    assert commit.summary == "upsert: +1 row, 1 updated (status)"
    rows = {r["id"]: r for r in _rows(ds.head)}
    assert rows[2] == {"id": 2, "answer": "a2", "status": "closed"}
    assert rows[6] == {"id": 6, "answer": None, "status": "new"}
    assert rows[1] == {"id": 1, "answer": "a1", "status": "open"}


def test_an_upsert_can_add_columns(lake: curata.Lake) -> None:
    ds = _tickets(lake)
    commit = ds.upsert(pa.table({"id": [1, 2], "lang": ["en", "de"]}))
    assert commit is not None
    assert commit.summary == "upsert: 2 updated (lang); column added: lang"
    assert commit.changes["columns_added"] == ["lang"]
    assert [c["name"] for c in commit.schema] == ["id", "answer", "status", "lang"]
    rows = _rows(ds.head)
    assert [r["lang"] for r in rows] == ["en", "de", None, None, None]
    assert [r["answer"] for r in rows] == ["a1", "a2", "a3", "a4", "a5"]
    # The older version keeps its schema.
    assert ds.at(1).schema.names == ["id", "answer", "status"]


def test_an_upsert_that_changes_nothing_publishes_nothing(lake: curata.Lake) -> None:
    ds = _tickets(lake)
    unchanged = Unchanged(ds)
    same = pa.table({"id": [1, 2], "answer": ["a1", "a2"]})
    assert ds.upsert(same) is None
    assert ds.upsert(pa.table({"id": [3]})) is None
    unchanged.check()


def test_upsert_into_a_dataset_without_key_needs_one(lake: curata.Lake) -> None:
    ds = lake.create_dataset("events")
    ds.append(pa.table({"k": [1, 2], "v": ["a", "b"]}))
    with pytest.raises(curata.InvalidInput, match="needs a key column") as err:
        ds.upsert(pa.table({"k": [2], "v": ["B"]}))
    assert err.value.hint is not None and "key=" in err.value.hint
    commit = ds.upsert(pa.table({"k": [2, 3], "v": ["B", "c"]}), key="k")
    assert commit is not None and commit.summary == "upsert: +1 row, 1 updated (v)"
    assert _rows(ds.head, "k") == [{"k": 1, "v": "a"}, {"k": 2, "v": "B"}, {"k": 3, "v": "c"}]


def test_upsert_by_another_column_than_the_key_is_refused(lake: curata.Lake) -> None:
    ds = _tickets(lake)
    with pytest.raises(curata.InvalidInput, match="cannot upsert by 'answer'"):
        ds.upsert(pa.table({"id": [1], "answer": ["a1"]}), key="answer")


# -- delete -------------------------------------------------------------------------------------


def test_delete_by_predicate(lake: curata.Lake) -> None:
    ds = _tickets(lake)
    commit = ds.delete("id >= 4", message="drop spam")
    assert commit is not None
    assert (commit.operation, commit.summary, commit.rows) == ("delete", "delete: -2 rows", 3)
    assert [r["id"] for r in _rows(ds.head)] == [1, 2, 3]
    assert ds.at(1).count_rows() == 5


def test_a_delete_matching_nothing_publishes_nothing(lake: curata.Lake) -> None:
    ds = _tickets(lake)
    unchanged = Unchanged(ds)
    assert ds.delete("id > 100") is None
    unchanged.check()


@pytest.mark.parametrize("predicate", ["id === 3", "no_such_column = 1", "id IN (", "   "])
def test_a_bad_predicate_is_refused_and_deletes_nothing(lake: curata.Lake, predicate: str) -> None:
    ds = _tickets(lake)
    unchanged = Unchanged(ds)
    with pytest.raises(curata.InvalidInput):
        ds.delete(predicate)
    unchanged.check()


def test_delete_from_a_dataset_without_rows_is_refused(lake: curata.Lake) -> None:
    ds = lake.create_dataset("empty")
    with pytest.raises(curata.InvalidInput, match="no rows to delete yet"):
        ds.delete("x = 1")
    assert ds.log() == []


# -- overwrite and revert -----------------------------------------------------------------------


def test_overwrite_replaces_rows_and_schema(lake: curata.Lake) -> None:
    ds = _tickets(lake)
    commit = ds.overwrite(pa.table({"id": [1, 2], "answer": ["a1", "new"], "score": [0.5, 0.9]}))
    assert commit is not None
    assert commit.operation == "overwrite"
    # A new column counts as changed in the rows where it holds a value.
    assert commit.summary == (
        "overwrite: 2 updated (answer, score), -3 rows; column added: score; column removed: status"
    )
    assert commit.changes["updated_columns"] == {"answer": 1, "score": 2}
    assert commit.rows == 2
    assert [c["name"] for c in commit.schema] == ["id", "answer", "score"]
    assert _rows(ds.head) == [
        {"id": 1, "answer": "a1", "score": 0.5},
        {"id": 2, "answer": "new", "score": 0.9},
    ]
    assert ds.at(1).schema.names == ["id", "answer", "status"]


def test_overwrite_with_identical_content_publishes_nothing(lake: curata.Lake) -> None:
    ds = _tickets(lake)
    unchanged = Unchanged(ds)
    assert ds.overwrite(ds.head.to_arrow()) is None
    unchanged.check()
    # The Lance version that overwrite wrote is never published and never leaks.
    commit = ds.append(pa.table({"id": [6], "answer": ["a6"], "status": ["open"]}))
    assert commit is not None and commit.rows == 6 and ds.head.count_rows() == 6


def test_overwrite_on_a_keyed_dataset_checks_the_keys(lake: curata.Lake) -> None:
    ds = _tickets(lake)
    unchanged = Unchanged(ds)
    with pytest.raises(curata.InvalidInput, match="duplicated"):
        ds.overwrite(pa.table({"id": [1, 1], "answer": ["x", "y"], "status": ["a", "b"]}))
    unchanged.check()


def test_revert_publishes_the_old_content_as_a_new_version_and_keeps_history(
    lake: curata.Lake,
) -> None:
    ds = _tickets(lake)
    original = _rows(ds.head)
    ds.upsert(pa.table({"id": [1], "answer": ["changed"]}))
    ds.upsert(pa.table({"id": [2], "lang": ["en"]}))
    ds.delete("id = 5")
    commit = ds.revert(1)
    assert commit is not None
    assert (commit.version, commit.parent, commit.operation) == (5, 4, "revert")
    assert commit.message == "revert to tickets@1"
    assert commit.summary == "revert: +1 row, 1 updated (answer); column removed: lang"
    assert commit.rows == 5
    assert _rows(ds.head) == original
    assert [c.version for c in ds.log()] == [5, 4, 3, 2, 1]
    assert _rows(ds.at(4))[0]["answer"] == "changed"  # history is kept


def test_revert_to_a_tag_and_with_a_message(lake: curata.Lake) -> None:
    ds = _tickets(lake)
    ds.tag("good")
    ds.delete("id > 1")
    commit = ds.revert("good", message="undo the purge", author="ana")
    assert commit is not None
    assert (commit.message, commit.author, commit.rows) == ("undo the purge", "ana", 5)


def test_revert_to_the_current_content_publishes_nothing(lake: curata.Lake) -> None:
    ds = _tickets(lake)
    assert ds.revert(1) is None
    assert len(ds.log()) == 1


def test_revert_to_an_unknown_version_is_not_found(lake: curata.Lake) -> None:
    ds = _tickets(lake)
    with pytest.raises(curata.NotFound, match="no version 7"):
        ds.revert(7)
    assert len(ds.log()) == 1


# -- bad input publishes nothing ------------------------------------------------------------------


def test_append_with_other_columns_names_them(lake: curata.Lake) -> None:
    ds = _tickets(lake)
    unchanged = Unchanged(ds)
    with pytest.raises(curata.InvalidInput) as err:
        ds.append(pa.table({"id": [9], "answer": ["x"], "staus": ["open"], "lang": ["en"]}))
    assert err.value.message == (
        "Schema mismatch writing to 'tickets': missing column(s) 'status'; "
        "unexpected column(s) 'staus', 'lang'."
    )
    assert err.value.hint is not None and "has columns id, answer, status" in err.value.hint
    assert err.value.exit_code == 2
    unchanged.check()


def test_append_with_a_value_of_the_wrong_type_names_the_column(lake: curata.Lake) -> None:
    ds = _tickets(lake)
    unchanged = Unchanged(ds)
    with pytest.raises(curata.InvalidInput, match=r"id \(string -> int64\)"):
        ds.append(pa.table({"id": ["seven"], "answer": ["x"], "status": ["open"]}))
    unchanged.check()


def test_upsert_with_duplicate_keys_lists_them(lake: curata.Lake) -> None:
    ds = _tickets(lake)
    unchanged = Unchanged(ds)
    with pytest.raises(curata.InvalidInput) as err:
        ds.upsert(pa.table({"id": [1, 9, 1, 8, 8, 7], "answer": list("abcdef")}))
    assert err.value.message == "The input has 2 duplicated value(s) of key 'id': 1, 8."
    unchanged.check()


def test_null_keys_are_refused(lake: curata.Lake) -> None:
    ds = _tickets(lake)
    unchanged = Unchanged(ds)
    with pytest.raises(curata.InvalidInput, match="Key column 'id' has 2 empty value"):
        ds.upsert(pa.table({"id": [None, 9, None], "answer": ["a", "b", "c"]}))
    with pytest.raises(curata.InvalidInput, match="Key column 'id' has 1 empty value"):
        ds.append(pa.table({"id": [None], "answer": ["a"], "status": ["open"]}))
    unchanged.check()


def test_input_without_the_key_column_is_refused(lake: curata.Lake) -> None:
    ds = _tickets(lake)
    unchanged = Unchanged(ds)
    with pytest.raises(curata.InvalidInput, match="Key column 'id' is not in the input"):
        ds.upsert(pa.table({"answer": ["a"]}))
    unchanged.check()


def test_appending_keys_that_exist_is_refused_and_lists_them(lake: curata.Lake) -> None:
    ds = _tickets(lake)
    unchanged = Unchanged(ds)
    with pytest.raises(curata.InvalidInput) as err:
        ds.append(pa.table({"id": [3, 6, 1], "answer": ["x"] * 3, "status": ["new"] * 3}))
    head, _, listed = err.value.message.partition(": ")
    assert head == "2 key(s) of the appended rows exist in 'tickets' already"
    assert sorted(listed.split(", ")) == ["1", "3"]
    assert err.value.hint == "Use upsert to update existing rows."
    unchanged.check()


def test_appending_duplicate_keys_is_refused(lake: curata.Lake) -> None:
    ds = _tickets(lake)
    unchanged = Unchanged(ds)
    with pytest.raises(curata.InvalidInput, match="duplicated value"):
        ds.append(pa.table({"id": [7, 7], "answer": ["x"] * 2, "status": ["new"] * 2}))
    unchanged.check()


def test_a_first_write_with_bad_keys_creates_nothing(lake: curata.Lake) -> None:
    ds = lake.create_dataset("t", key="id")
    with pytest.raises(curata.InvalidInput, match="duplicated"):
        ds.append(pa.table({"id": [1, 1]}))
    assert ds.log() == []
    assert ds.append(pa.table({"id": [1, 2]})) is not None
    assert ds.head.count_rows() == 2


def test_after_refused_input_the_next_write_publishes_exactly_its_rows(lake: curata.Lake) -> None:
    ds = _tickets(lake)
    for bad in (
        pa.table({"id": [1], "answer": ["x"], "status": ["new"]}),  # key exists
        pa.table({"id": [8, 8], "answer": ["x", "y"], "status": ["new", "new"]}),
    ):
        with pytest.raises(curata.InvalidInput):
            ds.append(bad)
    commit = ds.append(pa.table({"id": [6], "answer": ["a6"], "status": ["open"]}))
    assert commit is not None and (commit.version, commit.rows) == (2, 6)
    assert [r["id"] for r in _rows(ds.head)] == [1, 2, 3, 4, 5, 6]


# -- publishing several writes at once -----------------------------------------------------------


def test_publish_makes_several_datasets_visible_together(lake: curata.Lake) -> None:
    docs = lake.create_dataset("docs", key="doc_id")
    chunks = lake.create_dataset("chunks", key="chunk_id")
    docs.append(pa.table({"doc_id": ["a", "b"], "text": ["A", "B"]}))
    chunks.append(pa.table({"chunk_id": ["a#0", "b#0"], "doc_id": ["a", "b"]}))

    with lake.publish(message="sync kb", author="sync-bot", run_id="run-1") as pub:
        pub.upsert("docs", pa.table({"doc_id": ["a", "c"], "text": ["A2", "C"]}))
        pub.delete("chunks", "doc_id = 'a'")
        pub.append("chunks", pa.table({"chunk_id": ["a#1", "c#0"], "doc_id": ["a", "c"]}))

    assert [(c.ref, c.operation) for c in pub.commits] == [
        ("docs@2", "upsert"),
        ("chunks@2", "transform"),
    ]
    assert all(c.message == "sync kb" and c.author == "sync-bot" for c in pub.commits)
    assert all(c.run_id == "run-1" for c in pub.commits)
    assert pub.commits[1].summary == "transform: +2 rows, -1 row"
    assert lake.ref("docs").version == 2 and lake.ref("chunks").version == 2
    assert sorted(lake.ref("chunks").to_arrow().column("chunk_id").to_pylist()) == [
        "a#1",
        "b#0",
        "c#0",
    ]
    assert lake.ref("docs@1").count_rows() == 2 and lake.ref("docs@2").count_rows() == 3


def test_several_writes_to_one_dataset_in_a_publish_make_one_version(lake: curata.Lake) -> None:
    ds = lake.create_dataset("tickets", key="id")
    ds.append(pa.table({"id": list(range(20)), "answer": ["a"] * 20}))
    with lake.publish(message="cleanup") as pub:
        pub.upsert(
            "tickets",
            pa.table(
                {
                    "id": list(range(10)) + list(range(100, 105)),
                    "answer": ["b"] * 15,
                    "lang": [None] * 10 + ["en"] * 5,
                }
            ),
        )
        pub.delete("tickets", "id IN (18, 19)")
    (commit,) = pub.commits
    assert (commit.version, commit.operation, commit.rows) == (2, "transform", 23)
    assert commit.summary == "transform: +5 rows, 10 updated (answer), -2 rows; column added: lang"
    assert [c.version for c in ds.log()] == [2, 1]


def test_an_exception_in_a_publish_block_publishes_nothing_and_leaks_nothing(
    lake: curata.Lake,
) -> None:
    a = lake.create_dataset("a", key="id")
    a.append(pa.table({"id": [1, 2], "v": ["x", "y"]}))
    b = lake.create_dataset("b")  # no version yet: the failed block would have created it
    published_lance = a.head.commit.lance_version

    with pytest.raises(RuntimeError, match="boom"), lake.publish(message="both") as pub:
        pub.append("a", pa.table({"id": [3, 4], "v": ["orphan", "orphan"]}))
        pub.upsert("a", pa.table({"id": [1], "v": ["orphan"]}))
        pub.append("b", pa.table({"n": [1, 2, 3]}))
        raise RuntimeError("boom")

    assert pub.commits == []
    assert [c.version for c in a.log()] == [1]
    assert _rows(a.head) == [{"id": 1, "v": "x"}, {"id": 2, "v": "y"}]
    assert b.log() == []
    # Lance holds versions nobody published: the trap the next writer must not fall into.
    assert _lance_latest(lake, "a") > published_lance

    commit = a.append(pa.table({"id": [5], "v": ["z"]}))
    assert commit is not None and (commit.version, commit.rows) == (2, 3)
    assert _rows(a.head) == [{"id": 1, "v": "x"}, {"id": 2, "v": "y"}, {"id": 5, "v": "z"}]
    first_b = b.append(pa.table({"n": [9]}))
    assert first_b is not None and (first_b.version, first_b.operation, first_b.rows) == (
        1,
        "create",
        1,
    )
    assert b.head.to_arrow().column("n").to_pylist() == [9]


@pytest.mark.parametrize("operation", ["upsert", "delete", "overwrite", "revert"])
def test_every_kind_of_write_after_an_orphan_starts_from_the_published_version(
    lake: curata.Lake, operation: str
) -> None:
    ds = _tickets(lake)
    ds.delete("id = 5")
    with pytest.raises(RuntimeError), lake.publish() as pub:
        pub.append("tickets", pa.table({"id": [66], "answer": ["orphan"], "status": ["x"]}))
        raise RuntimeError
    assert _lance_latest(lake, "tickets") > ds.head.commit.lance_version
    writes = {
        "upsert": lambda: ds.upsert(pa.table({"id": [1, 7], "answer": ["A", "a7"]})),
        "delete": lambda: ds.delete("id = 1"),
        "overwrite": lambda: ds.overwrite(
            pa.table({"id": [1, 2], "answer": ["a1", "a2"], "status": ["open"] * 2})
        ),
        "revert": lambda: ds.revert(1),
    }
    expected = {
        "upsert": [1, 2, 3, 4, 7],
        "delete": [2, 3, 4],
        "overwrite": [1, 2],
        "revert": [1, 2, 3, 4, 5],
    }
    commit = writes[operation]()
    assert commit is not None and commit.version == 3
    assert [r["id"] for r in _rows(ds.head)] == expected[operation]
    assert commit.rows == len(expected[operation])
    assert commit.changes["rows_added"] == (1 if operation in ("upsert", "revert") else 0)


def test_invalid_input_inside_a_publish_block_publishes_none_of_it(lake: curata.Lake) -> None:
    a = _tickets(lake)
    other = lake.create_dataset("other")
    other.append(pa.table({"x": [1]}))
    with pytest.raises(curata.InvalidInput), lake.publish() as pub:
        pub.append("other", pa.table({"x": [2]}))
        pub.append("tickets", pa.table({"id": [1], "answer": ["dup"], "status": ["x"]}))
    assert [c.version for c in other.log()] == [1]
    assert other.head.count_rows() == 1
    assert [c.version for c in a.log()] == [1]
    commit = other.append(pa.table({"x": [3]}))
    assert commit is not None and commit.rows == 2
    assert sorted(other.head.to_arrow().column("x").to_pylist()) == [1, 3]


def test_a_publish_without_writes_publishes_nothing(lake: curata.Lake) -> None:
    ds = _tickets(lake)
    with lake.publish(message="nothing") as pub:
        pub.delete("tickets", "id > 100")
    assert pub.commits == []
    assert len(ds.log()) == 1


def test_a_dataset_created_in_a_publish_exists_only_once_it_commits(lake: curata.Lake) -> None:
    staged = lake.stage_overwrite("fresh", pa.table({"n": [1, 2]}).to_reader())
    with pytest.raises(RuntimeError, match="boom"), lake.publish(message="first") as pub:
        assert pub.create_dataset("fresh", kind="logs", description="made here") is True
        pub.overwrite_staged(staged)
        raise RuntimeError("boom")
    assert not lake.has_dataset("fresh")

    staged = lake.stage_overwrite("fresh", pa.table({"n": [3, 4, 5]}).to_reader())
    with lake.publish(message="second") as pub:
        assert pub.create_dataset("fresh", kind="logs", description="made here") is True
        pub.overwrite_staged(staged)
        assert pub.create_dataset("fresh") is False  # exists now: nothing to do
    (commit,) = pub.commits
    assert (commit.ref, commit.operation, commit.rows) == ("fresh@1", "overwrite", 3)
    info = {d.name: d for d in lake.datasets()}["fresh"]
    assert (info.kind, info.description) == ("logs", "made here")
    assert lake.ref("fresh").to_arrow().column("n").to_pylist() == [3, 4, 5]


def test_create_in_a_publish_refuses_a_bad_name_or_kind(lake: curata.Lake) -> None:
    with pytest.raises(curata.InvalidInput, match="kind"), lake.publish() as pub:
        pub.create_dataset("ok", kind="spreadsheet")
    with pytest.raises(curata.InvalidInput), lake.publish() as pub:
        pub.create_dataset("no/slash")
    assert lake.datasets() == []


def test_two_publishes_creating_one_dataset_at_once_both_succeed(lake: curata.Lake) -> None:
    import threading

    ready = threading.Barrier(2)
    created: list[bool] = []
    errors: list[BaseException] = []

    def create(n: int) -> None:
        other = curata.open(lake.uri)
        try:
            ready.wait()
            with other.publish(message=f"writer {n}") as pub:
                created.append(pub.create_dataset("shared", key="id"))
                pub.upsert("shared", pa.table({"id": [n], "v": [f"w{n}"]}))
        except BaseException as err:
            errors.append(err)
        finally:
            other.close()

    threads = [threading.Thread(target=create, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(created) == [False, True]
    assert [c.version for c in lake.dataset("shared").log()] == [2, 1]
    assert sorted(lake.ref("shared").to_arrow().column("id").to_pylist()) == [1, 2]
