"""Versions through the CLI: references, tags, branches, revert, export, metadata and gc."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq
import pytest

if TYPE_CHECKING:
    from conftest import Cli


def ids(cli: Cli, ref: str) -> list[int]:
    return [r["id"] for r in cli("query", f'SELECT id FROM "{ref}" ORDER BY id', "--json").json()]


# -- references ---------------------------------------------------------------------------------


def test_every_reference_form(notes: str, cli: Cli) -> None:
    cli("dataset", "tag", f"{notes}@1", "orig")
    cli("dataset", "branch", "create", notes, "exp", "--from", "notes@orig")
    cli("dataset", "delete-rows", notes, "--where", "id = 1", "--branch", "exp")
    for ref, version in [
        (notes, 2),
        (f"{notes}@1", 1),
        (f"{notes}@v1", 1),
        (f"{notes}@orig", 1),
        (f"{notes}@branch:exp", 3),
        (f"{notes}@exp", 3),
        (f"{notes}@branch:main", 2),
    ]:
        commit = cli("dataset", "show", ref, "--json").json()["commit"]
        assert commit["version"] == version, ref
    assert ids(cli, f"{notes}@branch:exp") == [2, 3]


BAD_REFS = [
    ("notes@9", "Dataset 'notes' has no version 9.", "Its versions are 1 to 2."),
    ("notes@prdo", "Dataset 'notes' has no tag or branch 'prdo'.", "Did you mean: prod?"),
    ("notes@branch:nope", "Dataset 'notes' has no branch 'nope'.", "Existing branches: main"),
    ("nites", "No dataset named 'nites'.", "Did you mean: notes?"),
    ("notes@", "Reference 'notes@' ends with '@'.", "NAME@branch:BRANCH"),
    ("no/tes@1", "Invalid dataset name 'no/tes'.", "no spaces, '/', '..'"),
]


def test_a_reference_that_does_not_exist_is_bad_input(notes: str, cli: Cli, tmp_path: Path) -> None:
    cli("dataset", "tag", notes, "prod")
    target = tmp_path / "out.parquet"
    for ref, message, hint in BAD_REFS:
        for args in (
            ["show", ref],
            ["head", ref],
            ["export", ref, str(target)],
            ["revert", ref],
            ["diff", ref, ref],
            ["tag", ref, "other"],
        ):
            result = cli("dataset", *args, code=2)
            assert message in result.error, result
            assert hint in result.error, result
            assert result.stdout == "", result
    assert "Dataset 'notes' has no version 9." in cli("diff", "notes@1", "notes@9", code=2).error
    assert [c["version"] for c in cli("log", notes, "--json").json()] == [2, 1]
    assert cli("dataset", "show", notes, "--json").json()["version_tags"] == {"prod": 2}
    assert not target.exists()


# -- tag ----------------------------------------------------------------------------------------


def test_tag_points_and_moves(notes: str, cli: Cli) -> None:
    assert cli("dataset", "tag", f"{notes}@1", "prod").stdout == "Tagged notes@1 as notes@prod\n"
    assert ids(cli, f"{notes}@prod") == [1, 2, 3]
    assert cli("dataset", "tag", notes, "prod").stdout == "Tagged notes@2 as notes@prod\n"
    assert ids(cli, f"{notes}@prod") == [1, 2, 3, 4]
    log = cli("log", notes, "--json").json()
    assert [c["tags"] for c in log] == [["prod"], []]
    assert cli("dataset", "show", notes, "--json").json()["version_tags"] == {"prod": 2}


@pytest.mark.parametrize("tag", ["7", "a b", "_x", "a..b"])
def test_bad_tag_names_are_refused(tag: str, notes: str, cli: Cli) -> None:
    assert f"Invalid tag {tag!r}" in cli("dataset", "tag", notes, tag, code=2).error


# -- branch -------------------------------------------------------------------------------------


def test_branch_create_and_list(notes: str, cli: Cli) -> None:
    out = cli("dataset", "branch", "create", notes, "exp", "--from", f"{notes}@1").stdout
    assert out == "Created branch notes@branch:exp at notes@1\n"
    assert cli("dataset", "branch", "create", notes, "head").stdout.endswith("at notes@2\n")
    assert cli("dataset", "branch", "ls", notes, "--json").json() == [
        {"branch": "exp", "version": 1},
        {"branch": "head", "version": 2},
        {"branch": "main", "version": 2},
    ]
    assert cli("dataset", "branch", "ls", notes).stdout == (
        "exp  notes@1\nhead  notes@2\nmain  notes@2\n"
    )
    result = cli("dataset", "branch", "create", notes, "exp", code=2)
    assert "'notes' already has a branch 'exp'." in result.error


def test_branch_of_a_dataset_without_versions_is_refused(project: Path, cli: Cli) -> None:
    cli("dataset", "create", "empty")
    result = cli("dataset", "branch", "create", "empty", "exp", code=2)
    assert "has no versions yet" in result.error


# -- revert -------------------------------------------------------------------------------------


def test_revert_publishes_the_old_content_as_a_new_version(notes: str, cli: Cli) -> None:
    result = cli("dataset", "revert", f"{notes}@1", "-m", "undo the upsert")
    assert result.stdout == "notes@3  revert: 1 updated (status), -1 row\n"
    head = cli("log", notes, "--json").json()[0]
    assert (head["version"], head["operation"], head["message"]) == (3, "revert", "undo the upsert")
    v1 = cli("dataset", "head", f"{notes}@1", "--json").json()
    now = cli("query", "SELECT * FROM notes ORDER BY id", "--json").json()
    assert now == v1
    assert ids(cli, f"{notes}@2") == [1, 2, 3, 4]  # history is kept


def test_revert_to_the_content_of_the_head_publishes_nothing(notes: str, cli: Cli) -> None:
    cli("dataset", "revert", f"{notes}@1")
    result = cli("dataset", "revert", f"{notes}@1", "--json")
    assert result.json() is None
    assert cli("dataset", "revert", f"{notes}@1").stdout == (
        "The head already has the content of notes@1; no version published.\n"
    )
    head = cli("log", notes, "--json").json()[0]
    assert (head["version"], head["message"]) == (3, "revert to notes@1")


# -- export -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("out.parquet", []),
        ("out.csv", []),
        ("out.jsonl", []),
        ("out.txt", ["--format", "jsonl"]),
    ],
)
def test_export_writes_the_version(
    name: str, options: list[str], notes: str, cli: Cli, tmp_path: Path
) -> None:
    target = tmp_path / name
    result = cli("dataset", "export", f"{notes}@1", str(target), *options)
    assert result.stdout == f"Wrote 3 rows of notes@1 to {target}\n"
    if name.endswith(".parquet"):
        rows = pq.read_table(target).to_pylist()
    elif name.endswith(".csv"):
        rows = [
            dict(zip(["id", "text", "status"], line.replace('"', "").split(","), strict=True))
            for line in target.read_text().splitlines()[1:]
        ]
        rows = [{**r, "id": int(r["id"])} for r in rows]
    else:
        rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert rows == cli("dataset", "head", f"{notes}@1", "--json").json()


def test_export_hugging_face_folder(notes: str, cli: Cli, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    target = tmp_path / "hf"
    cli("dataset", "export", notes, str(target), "--format", "hf")
    assert datasets.load_from_disk(str(target)).num_rows == 4


def test_export_refuses_to_replace_without_overwrite(notes: str, cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    cli("dataset", "export", f"{notes}@1", str(target))
    result = cli("dataset", "export", notes, str(target), code=2)
    assert f"{target} exists." in result.error
    assert "--overwrite" in result.error
    assert pq.read_table(target).num_rows == 3
    cli("dataset", "export", notes, str(target), "--overwrite")
    assert pq.read_table(target).num_rows == 4


def test_export_unknown_format_is_refused(notes: str, cli: Cli, tmp_path: Path) -> None:
    assert (
        "Cannot tell the format"
        in cli("dataset", "export", notes, str(tmp_path / "out.xyz"), code=2).error
    )
    assert (
        "Unknown format 'xlsx'"
        in cli(
            "dataset", "export", notes, str(tmp_path / "out.xyz"), "--format", "xlsx", code=2
        ).error
    )
    assert list(tmp_path.glob("out*")) == []


# -- set ----------------------------------------------------------------------------------------


def test_set_changes_catalog_metadata(notes: str, cli: Cli) -> None:
    info = cli("dataset", "set", notes, "--owner", "bob", "--description", "Reviewed notes",
               "--tag", "gold", "--tag", "eval", "--classify", "text=pii:free-text",
               "--json").json()  # fmt: skip
    assert (info["owner"], info["description"], info["tags"]) == (
        "bob",
        "Reviewed notes",
        ["eval", "gold"],
    )
    assert info["classifications"] == {"text": "pii:free-text"}
    assert cli("dataset", "set", notes, "--classify", "text=").stdout == "Updated notes\n"
    shown = cli("dataset", "show", notes, "--json").json()
    assert (shown["classifications"], shown["owner"]) == ({}, "bob")
    assert [c["version"] for c in cli("log", notes, "--json").json()] == [2, 1]  # no new version


def test_set_bad_classifications_are_refused(notes: str, cli: Cli) -> None:
    assert (
        "--classify 'text' is not COL=CLASS"
        in cli("dataset", "set", notes, "--classify", "text", code=2).error
    )
    result = cli("dataset", "set", notes, "--classify", "mail=pii:email", code=2)
    assert "'notes' has no column(s) mail." in result.error
    assert "Its columns are: id, text, status." in result.error


# -- gc -----------------------------------------------------------------------------------------


def test_gc_keeps_tagged_versions_and_heads(notes: str, cli: Cli) -> None:
    cli("dataset", "tag", f"{notes}@1", "orig")
    cli("dataset", "delete-rows", notes, "--where", "id = 4")
    cli("dataset", "delete-rows", notes, "--where", "id = 3")
    dry = cli("gc", "--keep-versions", "1", "--dry-run", "--json").json()
    assert dry["dry_run"] is True
    assert dry["versions_pruned"] == 2
    assert ids(cli, f"{notes}@2") == [1, 2, 3, 4]
    report = cli("gc", "--keep-versions", "1", "--json").json()
    assert report["versions_pruned"] == 2
    assert isinstance(report["summary"], str)
    assert [c["pruned"] for c in cli("log", notes, "--json").json()] == [False, True, True, False]
    assert "(removed by gc)" in cli("log", notes).stdout
    result = cli("dataset", "head", f"{notes}@2", code=2)
    assert "notes@2 was removed by `curata gc`" in result.error
    assert ids(cli, f"{notes}@orig") == [1, 2, 3]
    assert ids(cli, notes) == [1, 2]


def test_gc_text_and_bad_keep_versions(notes: str, cli: Cli) -> None:
    assert cli("gc").stdout.strip()
    assert "--keep-versions must be at least 1" in cli("gc", "--keep-versions", "0", code=2).error
