"""Reading through the CLI: ls, show, head, log, diff and query, as tables and as --json."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Cli, DataFiles

COMMIT_FIELDS = {"version", "author", "timestamp", "message", "operation", "rows", "changes"}
CHANGE_FIELDS = {"rows_added", "rows_updated", "rows_deleted", "columns_added", "columns_removed"}
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

# -- ls -----------------------------------------------------------------------------------------


def test_ls_json(notes: str, cli: Cli) -> None:
    cli("dataset", "create", "empty", "--kind", "labels")
    listing = cli("dataset", "ls", "--json").json()
    assert [d["name"] for d in listing] == ["empty", "notes"]
    empty, notes_info = listing
    assert {"name", "kind", "version", "rows", "owner", "tags"} <= set(notes_info)
    assert (notes_info["kind"], notes_info["version"], notes_info["rows"]) == ("records", 2, 4)
    assert (notes_info["owner"], notes_info["tags"]) == ("ana", ["demo"])
    assert (empty["kind"], empty["version"], empty["rows"], empty["tags"]) == (
        "labels",
        None,
        0,
        [],
    )


def test_ls_alias_and_table(notes: str, cli: Cli) -> None:
    assert cli("ls", "--json").stdout == cli("dataset", "ls", "--json").stdout
    table = cli("ls").stdout
    assert re.search(r"notes\s*│\s*records\s*│\s*2\s*│\s*4\s*│\s*ana\s*│\s*demo", table), table


def test_ls_search_matches_name_description_tags_owner_and_columns(notes: str, cli: Cli) -> None:
    cli("dataset", "create", "other")
    for search in ("NOTE", "short", "demo", "ana", "status"):
        assert [d["name"] for d in cli("ls", "--search", search, "--json").json()] == ["notes"]
    assert cli("ls", "--search", "zzz", "--json").json() == []


def test_ls_empty_lake(project: Path, cli: Cli) -> None:
    assert cli("ls").stdout == "No datasets yet.\n"
    assert cli("ls", "--search", "x").stdout == "No datasets match 'x'.\n"
    assert cli("ls", "--json").json() == []


# -- show ---------------------------------------------------------------------------------------


def test_show_json_describes_the_dataset_and_the_version(notes: str, cli: Cli) -> None:
    info = cli("dataset", "show", f"{notes}@1", "--json").json()
    assert (info["name"], info["key"], info["version"], info["rows"]) == ("notes", "id", 2, 4)
    assert [c["name"] for c in info["columns"]] == ["id", "text", "status"]
    assert info["branches"] == {"main": 2}
    assert info["commit"]["version"] == 1
    assert info["commit"]["rows"] == 3
    assert info["commit"]["message"] == "first"


def test_show_table(notes: str, cli: Cli) -> None:
    cli("dataset", "tag", f"{notes}@1", "orig")
    out = cli("dataset", "show", notes).stdout
    assert out.startswith("notes  (records)  Short notes\n")
    assert "owner: ana   key: id   tags: demo" in out
    assert "branches: main@2   version tags: orig@1" in out
    assert "notes@2 on main" in out
    assert "by test-author" in out
    assert "upsert: +1 row, 1 updated (status)" in out
    assert re.search(r"status\s*│\s*string", out)


def test_show_dataset_without_versions(project: Path, cli: Cli) -> None:
    cli("dataset", "create", "empty")
    assert "No versions yet." in cli("dataset", "show", "empty").stdout
    assert cli("dataset", "show", "empty", "--json").json()["commit"] is None


# -- head ---------------------------------------------------------------------------------------


def test_head_json_is_a_list_of_rows(notes: str, cli: Cli) -> None:
    v1 = cli("dataset", "head", f"{notes}@1", "--json").json()
    assert v1 == [
        {"id": 1, "text": "alpha", "status": "open"},
        {"id": 2, "text": "beta", "status": "open"},
        {"id": 3, "text": "gamma", "status": "spam"},
    ]
    assert len(cli("dataset", "head", notes, "-n", "2", "--json").json()) == 2
    assert cli("dataset", "head", notes, "-n", "0", "--json").json() == []


def test_head_table_names_the_version(notes: str, cli: Cli) -> None:
    out = cli("dataset", "head", notes, "-n", "1").stdout
    assert out.startswith("notes@2 (4 rows)")
    assert re.search(r"id\s*┃\s*text\s*┃\s*status", out)


def test_head_negative_count_is_refused(notes: str, cli: Cli) -> None:
    assert "-n must be zero or more" in cli("dataset", "head", notes, "-n", "-1", code=2).error


# -- log ----------------------------------------------------------------------------------------


def test_log_json_newest_first_with_change_logs(notes: str, cli: Cli) -> None:
    log = cli("dataset", "log", notes, "--json").json()
    assert [c["version"] for c in log] == [2, 1]
    for commit in log:
        assert set(commit) >= COMMIT_FIELDS
        assert CHANGE_FIELDS | {"summary"} <= set(commit["changes"])
        assert TIMESTAMP.match(commit["timestamp"]), commit["timestamp"]
        assert commit["author"] == "test-author"
    second, first = log
    assert (second["operation"], second["message"], second["rows"]) == ("upsert", "second", 4)
    assert {k: second["changes"][k] for k in CHANGE_FIELDS} == {
        "rows_added": 1,
        "rows_updated": 1,
        "rows_deleted": 0,
        "columns_added": [],
        "columns_removed": [],
    }
    assert second["changes"]["updated_columns"] == {"status": 1}
    assert second["changes"]["summary"] == "upsert: +1 row, 1 updated (status)"
    assert (first["operation"], first["rows"], first["changes"]["rows_added"]) == ("create", 3, 3)


def test_log_alias_limit_and_branch(notes: str, cli: Cli) -> None:
    assert cli("log", notes, "--json").stdout == cli("dataset", "log", notes, "--json").stdout
    assert [c["version"] for c in cli("log", notes, "-n", "1", "--json").json()] == [2]
    cli("dataset", "branch", "create", notes, "exp", "--from", f"{notes}@1")
    cli("dataset", "delete-rows", notes, "--where", "id = 1", "--branch", "exp")
    assert [c["version"] for c in cli("log", notes, "--json").json()] == [3, 2, 1]
    assert [c["version"] for c in cli("log", notes, "--branch", "exp", "--json").json()] == [3, 1]


def test_log_table(notes: str, cli: Cli) -> None:
    cli("dataset", "tag", f"{notes}@1", "orig")
    out = cli("log", notes).stdout
    lines = out.splitlines()
    assert re.match(r"notes@2  main  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC  test-author$", lines[0])
    assert lines[1:3] == ["    second", "    upsert: +1 row, 1 updated (status)   (4 rows)"]
    assert lines[3].startswith("notes@1 (orig)  main")
    assert lines[5] == "    create: +3 rows   (3 rows)"


def test_log_of_dataset_without_versions(project: Path, cli: Cli) -> None:
    cli("dataset", "create", "empty")
    assert cli("log", "empty").stdout == "empty has no versions yet.\n"
    assert cli("log", "empty", "--json").json() == []


# -- diff ---------------------------------------------------------------------------------------


def test_diff_json(notes: str, cli: Cli) -> None:
    diff = cli("dataset", "diff", f"{notes}@1", notes, "--json").json()
    assert diff == {
        "rows_added": 1,
        "rows_updated": 1,
        "rows_deleted": 0,
        "updated_columns": {"status": 1},
        "columns_added": [],
        "columns_removed": [],
        "columns_retyped": [],
        "summary": "+1 row, 1 updated (status)",
    }
    assert (
        cli("diff", f"{notes}@1", notes, "--json").stdout
        == cli("dataset", "diff", f"{notes}@1", notes, "--json").stdout
    )


def test_diff_json_with_rows(notes: str, cli: Cli) -> None:
    diff = cli("diff", f"{notes}@2", f"{notes}@1", "--rows", "--json").json()
    assert set(diff) >= CHANGE_FIELDS
    assert (diff["rows_added"], diff["rows_deleted"], diff["rows_updated"]) == (0, 1, 1)
    assert diff["added"] == []
    assert diff["deleted"] == [{"id": 4, "text": "delta", "status": "open"}]
    assert diff["updated"] == [{"key": 2, "changes": {"status": {"old": "closed", "new": "open"}}}]


def test_diff_schema_changes(notes: str, cli: Cli, files: DataFiles) -> None:
    data = files.jsonl("lang.jsonl", [{"id": 1, "lang": "en"}])
    cli("dataset", "import", notes, str(data), "--mode", "upsert")
    assert cli("diff", f"{notes}@2", notes, "--json").json()["columns_added"] == ["lang"]
    assert cli("diff", notes, f"{notes}@2", "--json").json()["columns_removed"] == ["lang"]


def test_diff_rows_one_line_each(notes: str, cli: Cli) -> None:
    out = cli("diff", f"{notes}@1", notes, "--rows").stdout
    assert out.startswith("notes@1 -> notes: +1 row, 1 updated (status)\n")
    assert "  + 4: text='delta', status='open'" in out
    assert "  ~ 2: status: 'open' -> 'closed'" in out


def test_diff_shows_where_long_texts_differ(project: Path, cli: Cli, files: DataFiles) -> None:
    text = "x" * 80 + " the end"
    cli(
        "dataset", "import", "d", str(files.jsonl("a.jsonl", [{"id": 1, "v": text}])), "--key", "id"
    )
    fixed = text.replace("end", "END")
    cli(
        "dataset",
        "import",
        "d",
        str(files.jsonl("b.jsonl", [{"id": 1, "v": fixed}])),
        "--mode",
        "upsert",
    )
    out = cli("diff", "d@1", "d@2", "--rows").stdout
    assert "the end'" in out and "the END'" in out


def test_diff_table_tells_null_from_empty_text(project: Path, cli: Cli, files: DataFiles) -> None:
    before = files.jsonl("a.jsonl", [{"id": 1, "v": None}, {"id": 2, "v": ""}])
    after = files.jsonl("b.jsonl", [{"id": 1, "v": ""}, {"id": 2, "v": None}])
    cli("dataset", "import", "d", str(before), "--key", "id")
    cli("dataset", "import", "d", str(after), "--mode", "upsert")
    out = cli("diff", "d@1", "d@2", "--rows").stdout
    assert "  ~ 1: v: null -> ''\n  ~ 2: v: '' -> null\n" in out


def test_diff_of_two_datasets_is_refused(notes: str, cli: Cli) -> None:
    cli("dataset", "create", "other")
    result = cli("diff", notes, "other", code=2)
    assert "Both references must name one dataset ('notes' vs 'other')" in result.error


# -- query --------------------------------------------------------------------------------------


def test_query_json_over_several_versions(notes: str, cli: Cli) -> None:
    cli("dataset", "tag", f"{notes}@1", "orig")
    sql = (
        'SELECT o.id, o.status AS before, h.status AS now FROM "notes@orig" o, notes h '
        "WHERE o.id = h.id AND o.status <> h.status"
    )
    assert cli("query", sql, "--json").json() == [{"id": 2, "before": "open", "now": "closed"}]


def test_query_join_using(notes: str, cli: Cli) -> None:
    sql = 'SELECT count(*) AS n FROM "notes@1" o JOIN notes h USING (id)'
    assert cli("query", sql, "--json").json() == [{"n": 3}]


def test_query_table(notes: str, cli: Cli) -> None:
    out = cli("query", "SELECT status, count(*) AS n FROM notes GROUP BY status ORDER BY status")
    assert re.search(r"closed\s*│\s*1\s*│\n.*open\s*│\s*2\s*│\n.*spam\s*│\s*1", out.stdout)


def test_query_errors_are_bad_input(notes: str, cli: Cli) -> None:
    assert "The SQL does not parse" in cli("query", "SELEC 1", code=2).error
    missing = cli("query", 'SELECT * FROM "nope@1"', code=2)
    assert "No dataset named 'nope'" in missing.error
    assert "notes" in missing.error  # the datasets that do exist
    assert "has no version 9" in cli("query", 'SELECT * FROM "notes@9"', code=2).error
    assert "The query failed" in cli("query", "SELECT no_such_column FROM notes", code=2).error


# -- what users wrote is printed as written ------------------------------------------------------


def test_text_that_looks_like_markup_is_printed_as_is(
    project: Path, cli: Cli, files: DataFiles
) -> None:
    prompt = "[INST] Summarise [b]this[/b] [/INST]"
    data = files.jsonl("p.jsonl", [{"id": 1, "[red]prompt": prompt}])
    cli("dataset", "create", "prompts", "--key", "id", "--owner", "[bold]ops", "--tag", "[wip]")
    cli("dataset", "import", "prompts", str(data))
    change = files.jsonl("q.jsonl", [{"id": 1, "[red]prompt": "x"}])
    upsert = cli("dataset", "import", "prompts", str(change), "--mode", "upsert")
    assert upsert.stdout == "prompts@2  upsert: 1 updated ([red]prompt)\n"
    cli("dataset", "revert", "prompts@1")
    assert prompt in cli("dataset", "head", "prompts").stdout
    assert prompt in cli("query", "SELECT * FROM prompts").stdout
    shown = cli("dataset", "show", "prompts").stdout
    assert "owner: [bold]ops" in shown
    assert "tags: [wip]" in shown
    assert "[red]prompt" in shown
    listing = cli("ls").stdout
    assert "[bold]ops" in listing
    assert "[wip]" in listing
    missing = cli("query", 'SELECT "[/x]" FROM prompts', code=2)
    assert '"[/x]"' in missing.error


def test_json_has_null_for_nan_and_infinity(project: Path, cli: Cli) -> None:
    sql = "SELECT 'nan'::DOUBLE AS x, ['inf'::DOUBLE, 1.5] AS y"
    result = cli("query", sql, "--json")
    assert "NaN" not in result.stdout
    assert result.json() == [{"x": None, "y": [None, 1.5]}]
