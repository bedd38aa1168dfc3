"""Writing through the CLI: create, import (append, upsert, overwrite, branches), delete-rows,
and input that must be refused with nothing published."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import Cli, DataFiles


def rows(cli: Cli, ref: str) -> list[dict[str, Any]]:
    """All rows of ``ref``, sorted by id."""
    table = cli("query", f'SELECT * FROM "{ref}" ORDER BY id', "--json").json()
    assert isinstance(table, list)
    return table


def versions(cli: Cli, name: str) -> list[int]:
    return [c["version"] for c in cli("log", name, "--json").json()]


# -- create -------------------------------------------------------------------------------------


def test_create_records_the_catalog_entry(project: Path, cli: Cli) -> None:
    result = cli("dataset", "create", "kb_docs", "--kind", "documents", "--key", "doc_id",
                 "--description", "Help center", "--owner", "docs-team",
                 "--tag", "rag", "--tag", "public")  # fmt: skip
    assert result.stdout == "Created dataset kb_docs (documents, key doc_id)\n"
    info = cli("dataset", "show", "kb_docs", "--json").json()
    assert info["kind"] == "documents"
    assert info["key"] == "doc_id"
    assert info["description"] == "Help center"
    assert info["owner"] == "docs-team"
    assert info["tags"] == ["public", "rag"]
    assert info["version"] is None
    assert info["commit"] is None
    assert info["created_by"] == "test-author"


def test_create_defaults_to_records_without_key(project: Path, cli: Cli) -> None:
    assert cli("dataset", "create", "plain").stdout == "Created dataset plain (records)\n"


def test_create_twice_is_refused(project: Path, cli: Cli) -> None:
    cli("dataset", "create", "docs")
    assert (
        "A dataset named 'docs' exists already." in cli("dataset", "create", "docs", code=2).error
    )


def test_create_with_unknown_kind_lists_the_kinds(project: Path, cli: Cli) -> None:
    result = cli("dataset", "create", "docs", "--kind", "pictures", code=2)
    assert "Unknown dataset kind 'pictures'" in result.error
    assert "documents, chunks, records, logs, labels, synthetic, report" in result.error
    assert cli("ls", "--json").json() == []


@pytest.mark.parametrize("name", ["a/b", "../up", "a..b", "..", "with space", "", "a\\b", "x@1"])
def test_bad_dataset_names_are_refused(
    name: str, project: Path, cli: Cli, files: DataFiles
) -> None:
    result = cli("dataset", "create", name, code=2)
    assert f"Invalid dataset name {name!r}" in result.error
    assert "no spaces, '/', '..'" in result.error
    data = files.jsonl("a.jsonl", [{"id": 1}])
    assert "Invalid dataset name" in cli("dataset", "import", name, str(data), code=2).error
    assert cli("ls", "--json").json() == []
    assert sorted(p.name for p in (project / ".curata" / "data").iterdir()) == []


# -- import -------------------------------------------------------------------------------------


def test_import_csv_creates_the_dataset(project: Path, cli: Cli, samples: Path) -> None:
    result = cli("dataset", "import", "tickets", str(samples / "tickets.csv"),
                 "--key", "ticket_id", "--kind", "records", "-m", "helpdesk export")  # fmt: skip
    assert result.stdout == "tickets@1  create: +150 rows\n"
    [commit] = cli("log", "tickets", "--json").json()
    assert commit["message"] == "helpdesk export"
    assert commit["operation"] == "create"
    assert commit["rows"] == 150
    assert cli("dataset", "show", "tickets", "--json").json()["key"] == "ticket_id"


def test_import_upsert_counts_only_what_changed(project: Path, cli: Cli, samples: Path) -> None:
    cli("dataset", "import", "tickets", str(samples / "tickets.csv"), "--key", "ticket_id")
    result = cli("dataset", "import", "tickets", str(samples / "tickets_corrections.jsonl"),
                 "--mode", "upsert", "--json")  # fmt: skip
    commit = result.json()
    assert commit["version"] == 2
    assert commit["operation"] == "upsert"
    assert commit["message"] == "import tickets_corrections.jsonl"  # the default message
    assert commit["rows"] == 155
    changes = commit["changes"]
    assert (changes["rows_added"], changes["rows_updated"], changes["rows_deleted"]) == (5, 10, 0)
    assert set(changes["updated_columns"]) <= {"answer", "status"}
    assert changes["summary"] == "upsert: +5 rows, 10 updated (answer, status)"


def test_import_append_parquet_with_explicit_format(
    project: Path, cli: Cli, files: DataFiles
) -> None:
    cli("dataset", "import", "events", str(files.parquet("a.parquet", [{"id": 1, "v": 0.5}])))
    odd = files.parquet("b.data", [{"id": 2, "v": 1.5}])
    assert "Cannot tell the format" in cli("dataset", "import", "events", str(odd), code=2).error
    result = cli("dataset", "import", "events", str(odd), "--format", "parquet")
    assert result.stdout == "events@2  append: +1 row\n"
    assert rows(cli, "events") == [{"id": 1, "v": 0.5}, {"id": 2, "v": 1.5}]


def test_import_overwrite_replaces_the_rows(notes: str, cli: Cli, files: DataFiles) -> None:
    data = files.jsonl("all.jsonl", [{"id": 1, "text": "alpha", "status": "done"}])
    commit = cli("dataset", "import", notes, str(data), "--mode", "overwrite", "--json").json()
    assert commit["operation"] == "overwrite"
    assert commit["changes"]["rows_deleted"] == 3
    assert commit["changes"]["rows_updated"] == 1
    assert rows(cli, notes) == [{"id": 1, "text": "alpha", "status": "done"}]


def test_import_to_a_branch_leaves_main_alone(notes: str, cli: Cli, files: DataFiles) -> None:
    cli("dataset", "branch", "create", notes, "fix", "--from", f"{notes}@1")
    data = files.jsonl("fix.jsonl", [{"id": 3, "text": "gamma", "status": "ham"}])
    result = cli("dataset", "import", notes, str(data), "--mode", "upsert", "--branch", "fix")
    assert result.stdout == "notes@3  upsert: 1 updated (status)\n"
    assert [r["status"] for r in rows(cli, f"{notes}@branch:fix")] == ["open", "open", "ham"]
    assert [r["status"] for r in rows(cli, notes)] == ["open", "closed", "spam", "open"]
    log = cli("log", notes, "--json").json()
    assert [(c["version"], c["branch"], c["parent"]) for c in log] == [
        (3, "fix", 1),
        (2, "main", 1),
        (1, "main", None),
    ]


def test_import_with_nothing_new_publishes_nothing(notes: str, cli: Cli, files: DataFiles) -> None:
    same = files.jsonl("same.jsonl", [{"id": 2, "status": "closed"}])
    result = cli("dataset", "import", notes, str(same), "--mode", "upsert")
    assert result.stdout == "Nothing changed; no version published.\n"
    assert versions(cli, notes) == [2, 1]


def test_unknown_mode_is_refused(notes: str, cli: Cli, files: DataFiles) -> None:
    data = files.jsonl("a.jsonl", [{"id": 9, "text": "x", "status": "open"}])
    result = cli("dataset", "import", notes, str(data), "--mode", "merge", code=2)
    assert "Unknown --mode 'merge'" in result.error
    assert "append, upsert or overwrite" in result.error


# -- bad input: a clear message, exit 2, nothing published, nothing lost -----------------------


def assert_untouched(cli: Cli, notes: str) -> None:
    assert versions(cli, notes) == [2, 1]
    assert [r["id"] for r in rows(cli, notes)] == [1, 2, 3, 4]


def test_append_with_other_columns_names_them(notes: str, cli: Cli, files: DataFiles) -> None:
    data = files.jsonl("bad.jsonl", [{"id": 9, "text": "x", "state": "open"}])
    result = cli("dataset", "import", notes, str(data), code=2)
    assert "Schema mismatch writing to 'notes'" in result.error
    assert "missing column(s) 'status'" in result.error
    assert "unexpected column(s) 'state'" in result.error
    assert "has columns id, text, status" in result.error
    assert result.stdout == ""
    assert_untouched(cli, notes)


def test_upsert_with_duplicate_keys_lists_them(notes: str, cli: Cli, files: DataFiles) -> None:
    data = files.jsonl(
        "dups.jsonl",
        [{"id": 7, "status": "a"}, {"id": 7, "status": "b"}, {"id": 8}, {"id": 8}, {"id": 5}],
    )
    result = cli("dataset", "import", notes, str(data), "--mode", "upsert", code=2)
    assert "The input has 2 duplicated value(s) of key 'id': 7, 8." in result.error
    assert_untouched(cli, notes)


def test_append_of_existing_keys_is_refused(notes: str, cli: Cli, files: DataFiles) -> None:
    data = files.jsonl("again.jsonl", [{"id": 1, "text": "alpha", "status": "open"}])
    result = cli("dataset", "import", notes, str(data), code=2)
    assert "exist in 'notes' already: 1" in result.error
    assert "Use upsert" in result.error
    assert_untouched(cli, notes)


def test_csv_rows_that_do_not_parse_give_line_numbers(
    notes: str, cli: Cli, files: DataFiles
) -> None:
    data = files.text("bad.csv", "id,text,status\n9,ok,open\n10,too,many,fields\n11,few\n")
    result = cli("dataset", "import", notes, str(data), code=2)
    assert "2 rows do not parse" in result.error
    assert "line 3: expected 3 fields, found 4" in result.error
    assert "line 4: expected 3 fields, found 2" in result.error
    assert_untouched(cli, notes)


def test_missing_file_is_named(notes: str, cli: Cli, tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    result = cli("dataset", "import", notes, str(missing), code=2)
    assert f"{missing} does not exist." in result.error
    assert_untouched(cli, notes)


def test_failed_first_import_leaves_no_dataset(project: Path, cli: Cli, samples: Path) -> None:
    tickets = str(samples / "tickets.csv")
    result = cli("dataset", "import", "tickets", tickets, "--key", "tikcet_id", code=2)
    assert "Key column 'tikcet_id' is not in the input" in result.error
    result = cli("dataset", "import", "tickets", tickets, "--mode", "upsert", code=2)
    assert "needs a key column" in result.error
    assert "--key" in result.error
    assert cli("ls", "--json").json() == []
    # ... so the corrected command just works.
    cli("dataset", "import", "tickets", tickets, "--key", "ticket_id")


def test_first_import_with_duplicate_keys_leaves_no_dataset(
    project: Path, cli: Cli, files: DataFiles
) -> None:
    data = files.csv("d.csv", [{"id": 1, "v": "a"}, {"id": 1, "v": "b"}])
    result = cli("dataset", "import", "d", str(data), "--key", "id", code=2)
    assert "duplicated value(s) of key 'id': 1" in result.error
    assert cli("ls", "--json").json() == []


# -- delete-rows --------------------------------------------------------------------------------


def test_delete_rows_publishes_a_version(notes: str, cli: Cli) -> None:
    result = cli("dataset", "delete-rows", notes, "--where", "status = 'spam'", "-m", "no spam")
    assert result.stdout == "notes@3  delete: -1 row\n"
    [head, *_] = cli("log", notes, "--json").json()
    assert (head["operation"], head["message"], head["rows"]) == ("delete", "no spam", 3)
    again = cli("dataset", "delete-rows", notes, "--where", "id = 4", "--json").json()
    assert (again["version"], again["message"], again["rows"]) == (4, "delete where id = 4", 2)
    assert head["changes"]["rows_deleted"] == 1
    assert [r["id"] for r in rows(cli, notes)] == [1, 2]


def test_delete_rows_matching_nothing_publishes_nothing(notes: str, cli: Cli) -> None:
    result = cli("dataset", "delete-rows", notes, "--where", "id > 100")
    assert result.stdout == "No row matched; no version published.\n"
    assert cli("dataset", "delete-rows", notes, "--where", "id > 100", "--json").json() is None
    assert versions(cli, notes) == [2, 1]


def test_delete_rows_with_a_bad_predicate_is_refused(notes: str, cli: Cli) -> None:
    result = cli("dataset", "delete-rows", notes, "--where", "status = = 'x'", code=2)
    assert "Bad predicate" in result.error
    assert "status = = 'x'" in result.error
    assert_untouched(cli, notes)


def test_delete_rows_needs_where(notes: str, cli: Cli) -> None:
    result = cli("dataset", "delete-rows", notes, code=2)
    assert "--where" in result.error
