"""Diffs between versions and the change log's one-line summary."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import curata
from curata.lake import ChangeLog, changes


def _sorted(table: pa.Table | None, key: str) -> list[dict[str, Any]]:
    assert table is not None
    return sorted(table.to_pylist(), key=lambda r: r[key])


@pytest.fixture
def scores(lake: curata.Lake) -> curata.Dataset:
    """Keyed: v1 four rows; v2 upserts (1 text, 2 score, +5); v3 deletes 4."""
    ds = lake.create_dataset("scores", key="id")
    ds.append(pa.table({"id": [1, 2, 3, 4], "text": ["a", "b", "c", "d"], "score": [1, 2, 3, 4]}))
    ds.upsert(pa.table({"id": [1, 2, 5], "text": ["A", "b", "e"], "score": [1, 20, 5]}))
    ds.delete("id = 4")
    return ds


def test_diff_by_key_counts_added_updated_and_deleted_rows(scores: curata.Dataset) -> None:
    diff = scores.diff(1, 3)
    changes = diff.changes
    assert (changes.rows_added, changes.rows_updated, changes.rows_deleted) == (1, 2, 1)
    assert changes.updated_columns == {"text": 1, "score": 1}
    assert changes.summary() == "+1 row, 2 updated (score, text), -1 row"
    assert (diff.added, diff.deleted, diff.updated) == (None, None, None)
    # The other way round, additions and deletions swap.
    assert scores.diff(3, 1).changes.summary() == "+1 row, 2 updated (score, text), -1 row"
    assert (scores.diff(3, 1).changes.rows_added, scores.diff(3, 1).changes.rows_deleted) == (
        1,
        1,
    )


def test_diff_with_rows_returns_the_rows_and_the_changed_values(scores: curata.Dataset) -> None:
    diff = scores.diff(1, rows=True)  # to the head of main
    assert _sorted(diff.added, "id") == [{"id": 5, "text": "e", "score": 5}]
    assert _sorted(diff.deleted, "id") == [{"id": 4, "text": "d", "score": 4}]
    assert diff.updated == [
        {"key": 1, "changes": {"text": {"old": "a", "new": "A"}}},
        {"key": 2, "changes": {"score": {"old": 2, "new": 20}}},
    ]


def test_diff_rows_are_limited(lake: curata.Lake) -> None:
    ds = lake.create_dataset("t", key="id")
    ds.append(pa.table({"id": list(range(10)), "v": ["a"] * 10}))
    ds.upsert(pa.table({"id": list(range(5, 30)), "v": ["b"] * 25}))
    diff = ds.diff(1, 2, rows=True, limit=3)
    assert (diff.changes.rows_added, diff.changes.rows_updated) == (20, 5)  # counts stay exact
    assert diff.added is not None and diff.added.num_rows == 3
    assert diff.updated is not None and len(diff.updated) == 3


def test_diff_of_a_version_with_itself_is_empty(scores: curata.Dataset) -> None:
    diff = scores.diff(2, 2, rows=True)
    assert diff.changes.is_empty
    assert diff.changes.summary() == "no changes"
    assert diff.added is not None and diff.added.num_rows == 0
    assert diff.updated == []


def test_diff_takes_tags_and_branches(scores: curata.Dataset) -> None:
    scores.tag("orig", 1)
    scores.branch("fix", 1)
    scores.upsert(pa.table({"id": [3], "text": ["C"]}), branch="fix")
    assert scores.diff("orig", "branch:fix").changes.summary() == "1 updated (text)"
    assert scores.diff("scores@orig").changes.summary() == "+1 row, 2 updated (score, text), -1 row"


def test_diff_without_key_compares_rows_as_multisets(lake: curata.Lake) -> None:
    ds = lake.create_dataset("pairs")
    ds.append(pa.table({"x": [1, 1, 2], "y": ["a", "a", "b"]}))
    ds.append(pa.table({"x": [1, 3], "y": ["a", "c"]}))
    ds.delete("x = 2")
    diff = ds.diff(1, rows=True)
    # A duplicate of an existing row counts as a row added.
    assert diff.changes.summary() == "+2 rows, -1 row"
    assert diff.changes.rows_updated == 0
    assert diff.added is not None
    assert sorted(diff.added.to_pylist(), key=str) == [{"x": 1, "y": "a"}, {"x": 3, "y": "c"}]
    assert diff.deleted is not None and diff.deleted.to_pylist() == [{"x": 2, "y": "b"}]
    assert diff.updated == []


def test_a_keyless_overwrite_counts_copies_updates_and_deletes_exactly(lake: curata.Lake) -> None:
    ds = lake.create_dataset("pairs")
    ds.append(
        pa.table({"x": [1, 1, 2, 3, 5, None], "y": ["a", "a", "b", "c", "e", None]}),
        message="rows",
    )
    commit = ds.overwrite(
        pa.table({"x": [1, 2, 3, 3, 3, 4, 5, None], "y": ["a", "B", "c", "c", "c", "d", "e", None]})
    )
    assert commit is not None
    # Without a key, an updated row is a row deleted and a row added; a row's extra copies are
    # rows added (or deleted); rows with nulls equal to each other are the same row.
    assert commit.summary == "overwrite: +4 rows, -2 rows"
    diff = ds.diff(1, 2, rows=True)
    assert diff.changes.to_dict("overwrite") == commit.changes
    assert diff.added is not None and diff.deleted is not None
    assert sorted(diff.added.to_pylist(), key=str) == [
        {"x": 2, "y": "B"},
        {"x": 3, "y": "c"},
        {"x": 3, "y": "c"},
        {"x": 4, "y": "d"},
    ]
    assert sorted(diff.deleted.to_pylist(), key=str) == [
        {"x": 1, "y": "a"},
        {"x": 2, "y": "b"},
    ]
    assert ds.diff(2, 1).changes.summary() == "+2 rows, -4 rows"


def test_a_diff_larger_than_its_memory_limit_spills_and_stays_exact(
    sqlite_lake: curata.Lake, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    n = 1_000_000
    ids = pa.array(range(n), pa.int64())
    text = pc.binary_join_element_wise("row ", ids.cast(pa.string()), " " + "x" * 60, "")
    keyed = sqlite_lake.create_dataset("keyed", key="id")
    keyed.append(pa.table({"id": ids, "text": text}))
    keyless = sqlite_lake.create_dataset("keyless")
    keyless.append(pa.table({"text": text}))
    # Every row rewritten: a tenth of the texts change and the last thousand rows go.
    tenth = pc.equal(pc.remainder(ids, 10), 0)
    changed = pc.if_else(tenth, pc.binary_join_element_wise(text, "!", ""), text)
    new_rows = pa.table({"id": ids, "text": changed}).slice(0, n - 1000)
    spill = tmp_path / "spill"
    spill.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill))
    # About 75 MB of text a side, compared in 64 MB (2 threads: DuckDB's share per thread).
    monkeypatch.setattr(changes, "DIFF_MEMORY_LIMIT", "64MB")
    monkeypatch.setattr(changes, "DIFF_THREADS", 2)
    keyed.overwrite(new_rows)
    keyless.overwrite(new_rows.select(["text"]))
    assert keyed.diff(1, 2).changes.summary() == "99900 updated (text), -1000 rows"
    assert keyless.diff(1, 2).changes.summary() == "+99900 rows, -100900 rows"
    assert list(spill.iterdir()) == []  # the spill folders are gone


def test_diff_reports_columns_added_removed_and_retyped(lake: curata.Lake) -> None:
    ds = lake.create_dataset("t", key="id")
    ds.append(pa.table({"id": [1, 2, 3], "score": [1, 2, 3], "note": ["x", "y", "z"]}))
    ds.overwrite(pa.table({"id": [1, 2, 3], "score": [1.0, 2.5, 3.0], "lang": [None, None, "de"]}))
    diff = ds.diff(1, 2, rows=True)
    changes = diff.changes
    assert changes.columns_added == ["lang"]
    assert changes.columns_removed == ["note"]
    assert changes.columns_retyped == [{"column": "score", "from": "int64", "to": "double"}]
    # 2 -> 2.5 is an update; 1 -> 1.0 is the same number in a wider type; the new column
    # counts where it holds a value.
    assert changes.updated_columns == {"score": 1, "lang": 1}
    assert changes.rows_updated == 2
    assert diff.updated == [
        {"key": 2, "changes": {"score": {"old": 2, "new": 2.5}}},
        {"key": 3, "changes": {"lang": {"old": None, "new": "de"}}},
    ]
    assert changes.summary() == (
        "2 updated (lang, score); column added: lang; column removed: note; "
        "column retyped: score int64 -> double"
    )
    assert ds.head.commit.summary == "overwrite: " + changes.summary()


def test_a_column_retyped_from_text_to_numbers_is_compared_by_its_text(
    lake: curata.Lake,
) -> None:
    ds = lake.create_dataset("t", key="id")
    ds.append(pa.table({"id": [1, 2, 3], "answer": ["1.5", "two", "3"]}))
    commit = ds.overwrite(pa.table({"id": [1, 2, 3], "answer": [1.5, 2.0, 4.0]}))
    assert commit is not None
    assert commit.summary == (
        "overwrite: 2 updated (answer); column retyped: answer string -> double"
    )
    assert ds.diff(1, 2).changes.rows_updated == 2


def test_a_key_retyped_across_kinds_is_compared_as_whole_rows(lake: curata.Lake) -> None:
    ds = lake.create_dataset("t", key="id")
    ds.append(pa.table({"id": [1, 2, 3], "v": ["a", "b", "c"]}))
    commit = ds.overwrite(pa.table({"id": ["1", "2"], "v": ["a", "B"]}))
    assert commit is not None
    # Rows cannot be matched by a key that changed from numbers to text: (2, "b") is gone and
    # ("2", "B") is new; ("1", "a") reads the same as (1, "a").
    assert commit.summary == "overwrite: +1 row, -2 rows; column retyped: id int64 -> string"
    diff = ds.diff(1, 2, rows=True)
    assert diff.changes.rows_updated == 0
    assert diff.added is not None and diff.added.to_pylist() == [{"id": "2", "v": "B"}]


def test_diff_from_an_unknown_version_is_not_found(scores: curata.Dataset) -> None:
    with pytest.raises(curata.NotFound, match="no version 9"):
        scores.diff(9)


def test_the_commit_change_log_matches_the_diff_of_its_versions(scores: curata.Dataset) -> None:
    for commit in scores.log():
        if commit.parent is None:
            continue
        diff = scores.diff(commit.parent, commit.version).changes.to_dict(commit.operation)
        assert diff == commit.changes, commit.ref


@pytest.mark.parametrize(
    ("changes", "operation", "summary"),
    [
        (ChangeLog(), None, "no changes"),
        (ChangeLog(), "upsert", "upsert: no changes"),
        (ChangeLog(rows_added=1), "append", "append: +1 row"),
        (ChangeLog(rows_deleted=1), "delete", "delete: -1 row"),
        (
            ChangeLog(
                rows_added=5,
                rows_updated=10,
                rows_deleted=2,
                updated_columns={"answer": 10},
                columns_added=["lang"],
            ),
            "upsert",
            "upsert: +5 rows, 10 updated (answer), -2 rows; column added: lang",
        ),
        (
            ChangeLog(rows_updated=3, updated_columns={"b": 1, "a": 3}),
            None,
            "3 updated (a, b)",
        ),
        (
            ChangeLog(
                columns_added=["x", "y"],
                columns_removed=["z"],
                columns_retyped=[
                    {"column": "n", "from": "int32", "to": "int64"},
                    {"column": "m", "from": "string", "to": "double"},
                ],
            ),
            "overwrite",
            "overwrite: columns added: x, y; column removed: z; "
            "columns retyped: n int32 -> int64, m string -> double",
        ),
    ],
)
def test_change_summary_format(changes: ChangeLog, operation: str | None, summary: str) -> None:
    assert changes.summary(operation) == summary
    assert ChangeLog.from_dict(changes.to_dict(operation)) == changes
    assert changes.to_dict(operation)["summary"] == summary
