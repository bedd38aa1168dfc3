"""``curata runs``, ``curata usage`` and ``curata lineage`` as a user types them."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pytest

import curata
from curata.cli.lineage_cmds import parse_since

if TYPE_CHECKING:
    from conftest import Cli


@pytest.fixture
def run_id(notes: str) -> str:
    """A finished run of job ``clean`` that read notes@2 and wrote notes_clean@1, simulated
    the way the executor records one."""
    lake = curata.open(".")
    try:
        rid = lake.start_run(
            "clean", params={"lower": True}, code_version="fp-9", executor="local", inputs=[notes]
        )
        lake.create_dataset("notes_clean", key="id")
        with lake.publish(message="clean notes", run_id=rid) as pub:
            pub.append("notes_clean", pa.table({"id": [1, 2], "text": ["alpha", "beta"]}))
        lake.finish_run(rid, status="succeeded", metrics={"rows": 2}, outputs=[])
    finally:
        lake.close()
    return rid


# -- runs ------------------------------------------------------------------------------------


def test_runs_ls_and_show(run_id: str, cli: Cli) -> None:
    [listed] = cli("runs", "ls", "--json").json()
    assert listed["id"] == run_id
    assert (listed["job"], listed["status"]) == ("clean", "succeeded")
    assert (listed["inputs"], listed["outputs"]) == (["notes@2"], ["notes_clean@1"])
    table = cli("runs", "ls").stdout
    assert run_id[:12] in table and "succeeded" in table and "notes_clean@1" in table
    shown = cli("runs", "show", run_id[:8], "--json").json()
    assert shown == listed
    assert set(shown) >= {"params", "code_version", "executor", "started_at", "seconds"}
    text = cli("runs", "show", run_id).stdout
    assert f"run {run_id}" in text and '"lower": true' in text and "fp-9" in text
    assert text.count(" UTC") == 2  # started and ended, both in UTC


def test_runs_ls_filters_and_limits(run_id: str, cli: Cli) -> None:
    lake = curata.open(".")
    try:
        other = lake.start_run("other", params={}, code_version=None, executor=None, inputs=[])
    finally:
        lake.close()
    assert [r["id"] for r in cli("runs", "ls", "--json").json()] == [other, run_id]
    assert [r["id"] for r in cli("runs", "ls", "-n", "1", "--json").json()] == [other]
    assert [r["id"] for r in cli("runs", "ls", "--job", "clean", "--json").json()] == [run_id]
    assert "running" in cli("runs", "ls", "--job", "other").stdout
    assert "No runs of job 'x'." in cli("runs", "ls", "--job", "x").stdout
    assert "-n must be 1 or more, got -1" in cli("runs", "ls", "-n", "-1", code=2).error
    assert "-n must be 1 or more, got 0" in cli("runs", "ls", "-n", "0", code=2).error
    shown = cli("runs", "show", other).stdout
    assert "ended -" in shown and "still running" in shown


def test_runs_errors(run_id: str, cli: Cli) -> None:
    err = cli("runs", "show", "0123456789", code=2).error
    assert "No run with id '0123456789'" in err and "runs ls" in err
    assert "Did you mean" in cli("runs", "show", run_id[:4], code=2).error


def test_runs_ls_on_a_new_lake(project: Path, cli: Cli) -> None:
    assert cli("runs", "ls").stdout.strip() == "No runs yet."
    assert cli("runs", "ls", "--json").json() == []


# -- usage -----------------------------------------------------------------------------------


def test_usage_add_and_ls(notes: str, cli: Cli) -> None:
    cli("dataset", "tag", "notes@1", "prod")
    out = cli(
        "usage", "add", "notes@prod", "--consumer", "model:ft-notes@3", "--purpose", "training"
    )
    assert out.stdout.strip() == "Recorded: notes@1 used by model:ft-notes@3 for training"
    added = cli(
        "usage", "add", "notes", "--consumer", "deployment:chat", "--purpose", "retrieval", "--json"
    ).json()
    assert (added["ref"], added["consumer"]) == ("notes@2", "deployment:chat")
    listed = cli("usage", "ls", "--json").json()
    assert [u["ref"] for u in listed] == ["notes@2", "notes@1"]
    assert listed[1]["recorded_by"] == "test-author"
    assert [u["purpose"] for u in cli("usage", "ls", "--dataset", "notes", "--json").json()] == [
        "retrieval",
        "training",
    ]
    table = cli("usage", "ls").stdout
    assert "model:ft-notes@3" in table and "training" in table


def test_usage_add_explains_bad_input(notes: str, cli: Cli) -> None:
    err = cli("usage", "add", "notes", "--consumer", "robot:r2", "--purpose", "x", code=2).error
    assert "Unknown consumer kind 'robot'" in err
    assert "model, experiment, evaluation, deployment, application, other" in err
    err = cli("usage", "add", "notes", "--consumer", "ft", "--purpose", "x", code=2).error
    assert "is not KIND:NAME" in err
    err = cli("usage", "add", "notes", "--consumer", "model:a@1@2", "--purpose", "x", code=2)
    assert "'model:a@1@2' is not KIND:NAME or KIND:NAME@VERSION" in err.error
    err = cli("usage", "add", "nots", "--consumer", "model:m", "--purpose", "x", code=2).error
    assert "Did you mean: notes" in err
    assert (
        "Missing option '--purpose'"
        in cli("usage", "add", "notes", "--consumer", "model:m", code=2).error
    )
    assert cli("usage", "ls").stdout.strip() == "No usages yet."


# -- lineage ----------------------------------------------------------------------------------


def test_lineage_ref_as_json_table_dot_and_mermaid(run_id: str, cli: Cli) -> None:
    cli("usage", "add", "notes_clean", "--consumer", "model:m@1", "--purpose", "training")
    data = cli("lineage", "notes_clean", "--json").json()
    assert data["root"] == "notes_clean@1" and data["direction"] == "both"
    assert {n["id"]: n["type"] for n in data["nodes"]} == {
        "notes_clean@1": "dataset_version",
        f"run:{run_id}": "run",
        "consumer:model:m@1": "consumer",
        "notes@2": "dataset_version",
        "notes@1": "dataset_version",
    }
    assert {(e["source"], e["label"], e["target"]) for e in data["edges"]} == {
        (f"run:{run_id}", "wrote", "notes_clean@1"),
        ("notes_clean@1", "used by training", "consumer:model:m@1"),
        ("notes@2", "read", f"run:{run_id}"),
        ("notes@1", "next version", "notes@2"),
    }
    assert cli("lineage", "notes_clean", "--format", "json").json() == data
    assert cli("lineage", "show", "notes_clean", "--json").json() == data
    table = cli("lineage", "notes_clean").stdout
    assert "Lineage of notes_clean@1 (upstream and downstream, any depth): 5 nodes, 4 edges" in (
        " ".join(table.split())
    )
    assert "used by training" in table and "next version" in table
    dot = cli("lineage", "notes_clean", "--format", "dot").stdout
    assert dot.startswith("digraph lineage {") and '"notes@2" -> "run:' in dot
    mermaid = cli("lineage", "notes_clean", "-f", "mermaid").stdout
    assert mermaid.startswith("flowchart LR\n") and '-->|"used by training"|' in mermaid


def test_lineage_directions_and_depth(run_id: str, cli: Cli) -> None:
    up = cli("lineage", "notes@2", "--up", "--json").json()
    assert {n["id"] for n in up["nodes"]} == {"notes@2", "notes@1"}
    down = cli("lineage", "--down", "notes@2", "--json").json()
    assert {n["id"] for n in down["nodes"]} == {"notes@2", f"run:{run_id}", "notes_clean@1"}
    assert cli("lineage", "notes@2", "--up", "--down", "--json").json()["direction"] == "both"
    shallow = cli("lineage", "notes@2", "--down", "--depth", "1", "--json").json()
    assert {n["id"] for n in shallow["nodes"]} == {"notes@2", f"run:{run_id}"}
    by_run = cli("lineage", f"run:{run_id[:8]}", "--up", "--depth", "1", "--json").json()
    assert by_run["root"] == f"run:{run_id}"


def test_lineage_errors_are_bad_usage(notes: str, cli: Cli) -> None:
    assert "Did you mean: notes" in cli("lineage", "nots", code=2).error
    assert "Unknown --format 'png'" in cli("lineage", notes, "--format", "png", code=2).error
    assert "--depth must be zero or more" in cli("lineage", notes, "--depth", "-1", code=2).error
    assert "No such command" not in cli("lineage", "nosuch@3", code=2).error


def test_lineage_of_a_version_without_history(notes: str, cli: Cli) -> None:
    out = cli("lineage", "notes@1", "--up").stdout
    assert "0 edges" in out and "No runs, usages or other versions" in out


def test_a_dataset_named_export_is_reached_through_show(notes: str, cli: Cli) -> None:
    lake = curata.open(".")
    try:
        lake.create_dataset("export").append(pa.table({"x": [1]}))
    finally:
        lake.close()
    assert cli("lineage", "show", "export", "--json").json()["root"] == "export@1"
    # `lineage export` is the subcommand, which needs --openlineage.
    assert "Missing option '--openlineage'" in cli("lineage", "export", code=2).error


def test_lineage_export_to_a_file_and_stdout(run_id: str, cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "ol.jsonl"
    msg = cli("lineage", "export", "--openlineage", str(out)).stdout
    assert msg.strip() == f"Exported 2 OpenLineage events for 1 runs to {out}"
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert events[1]["outputs"][0]["name"] == "notes_clean"
    printed = cli("lineage", "export", "--openlineage", "-").stdout.splitlines()
    assert [json.loads(line)["eventType"] for line in printed] == ["START", "COMPLETE"]
    summary = cli("lineage", "export", "--openlineage", str(tmp_path / "j.jsonl"), "--json").json()
    assert summary == {"runs": 1, "events": 2, "target": str(tmp_path / "j.jsonl")}


def test_lineage_export_since(run_id: str, cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "ol.jsonl"
    cli("lineage", "export", "--openlineage", str(out), "--since", "1h")
    assert len(out.read_text().splitlines()) == 2
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    msg = cli("lineage", "export", "--openlineage", str(out), "--since", tomorrow).stdout
    assert "Exported 0 OpenLineage events for 0 runs" in msg
    err = cli("lineage", "export", "--openlineage", str(out), "--since", "soon", code=2).error
    assert "--since 'soon' is not a time" in err
    err = cli("lineage", "export", "--openlineage", "ftp://x/y", code=2).error
    assert "Cannot send OpenLineage events" in err


def test_parse_since() -> None:
    now = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)
    assert parse_since("7d", now) == datetime(2025, 6, 3, 12, 0, tzinfo=UTC)
    assert parse_since("30m", now) == datetime(2025, 6, 10, 11, 30, tzinfo=UTC)
    assert parse_since("2025-06-01") == datetime(2025, 6, 1, tzinfo=UTC)
    assert parse_since("2025-06-01T12:00:00+02:00") == datetime(2025, 6, 1, 10, tzinfo=UTC)


COMMANDS = {
    "runs ls": "--job -n --json",
    "runs show": "RUN_ID --json",
    "usage add": "DATASET_REF --consumer --purpose --json",
    "usage ls": "--dataset --json",
    "lineage show": "REF --up --down --depth --format --json",
    "lineage export": "--openlineage --since --json",
    "lineage": "show export REF",
    "runs": "ls show",
    "usage": "add ls",
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_help(command: str, cli: Cli) -> None:
    out = cli(*command.split(), "--help").stdout
    assert out.startswith(f"Usage: curata {command}")
    for word in COMMANDS[command].split():
        assert re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", out), word


def test_root_help_lists_the_groups(cli: Cli) -> None:
    out = cli("--help").stdout
    for group in ("runs", "usage", "lineage"):
        assert re.search(rf"^\s+{group}\s", out, re.MULTILINE), group
