"""Tables at 80 columns (a narrow terminal, or any pipe): names, refs, ids and numbers are
printed whole, free text wraps, and no line is wider than the terminal."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pyarrow as pa
import pytest
from rich.text import Text

import curata
from curata.cli.records import RecordColumn, print_records

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Cli

DATASET = "tickets_clean"
JOB = "clean-support-tickets"
CONSUMERS = {
    "model:support-classifier@2024-06-01": "training",
    "deployment:support-triage-eu-west-1": "serving",
}


@pytest.fixture(autouse=True)
def _eighty_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")


@pytest.fixture
def used_output(notes: str, cli: Cli) -> str:
    """A run of job JOB that read notes@2 and wrote DATASET@1, which CONSUMERS used."""
    lake = curata.open(".")
    try:
        rid = lake.start_run(JOB, params={}, code_version=None, executor=None, inputs=["notes@2"])
        lake.create_dataset(DATASET, key="id")
        with lake.publish(message="cleaned", run_id=rid) as pub:
            pub.append(DATASET, pa.table({"id": [1, 2], "text": ["alpha", "beta"]}))
        lake.finish_run(rid, status="succeeded", metrics={}, outputs=[f"{DATASET}@1"])
    finally:
        lake.close()
    for consumer, purpose in CONSUMERS.items():
        cli("usage", "add", DATASET, "--consumer", consumer, "--purpose", purpose)
    return rid


def _fits(lines: str) -> bool:
    return max(map(len, lines.splitlines())) <= 80


def _table(lineage: str) -> str:
    """The output of `curata lineage` without its first line (prose, which a terminal wraps)."""
    return lineage.split("\n", 1)[1]


def test_lineage_keeps_nodes_and_edges_whole(used_output: str, cli: Cli) -> None:
    out = cli("lineage", DATASET).stdout
    run = f"run:{used_output[:12]}"
    for name in (run, f"{DATASET}@1", "notes@2", "notes@1", *CONSUMERS):
        assert name in out, out
    for label in ("wrote", "read", "next version", "used by training", "used by serving"):
        assert label in out, out
    for word in (JOB, "succeeded", "upsert", "second", "first"):
        assert word in out, out
    assert "…" not in out and _fits(_table(out)), out

    up = cli("lineage", DATASET, "--up").stdout
    assert run in up and f"{DATASET}@1" in up and "notes@2" in up
    assert "…" not in up and _fits(_table(up)), up


def test_usage_ls_keeps_versions_and_consumers_whole(used_output: str, cli: Cli) -> None:
    out = cli("usage", "ls").stdout
    for consumer, purpose in CONSUMERS.items():
        assert consumer in out and purpose in out, out
    assert out.count(f"{DATASET}@1") == 2 and "test-author" in out
    assert "…" not in out and _fits(out), out


def test_ls_keeps_names_whole_and_wraps_descriptions(notes: str, cli: Cli) -> None:
    name, description = "customer_feedback_normalized", "Feedback forms with the PII removed"
    cli("dataset", "create", name, "--kind", "labels", "--owner", "data-platform-team",
        "--tag", "feedback", "--description", description)  # fmt: skip
    out = cli("ls").stdout
    for value in (name, "labels", "data-platform-team", "feedback", "notes", "ana", "demo"):
        assert value in out, out
    for word in description.split():
        assert word in out, out
    assert "…" not in out and _fits(out), out


def test_show_keeps_column_names_whole(notes: str, cli: Cli) -> None:
    long_name = "customer_lifetime_value_estimate_next_90_days"
    scores = pa.list_(pa.struct([("model", pa.string()), ("score", pa.float64())]))
    lake = curata.open(".")
    try:
        lake.create_dataset("scored").append(
            pa.table({long_name: [1.5], "scores": pa.array([[("m", 0.5)]], scores)})
        )
    finally:
        lake.close()
    out = cli("dataset", "show", "scored").stdout
    assert long_name in out and "double" in out, out
    for word in str(scores).split():
        assert word in out, out
    assert "…" not in out, out


def test_run_table_keeps_step_ids_and_counts_whole(notes: str, cli: Cli, tmp_path: Path) -> None:
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(
        "name: lower-notes\ninput: notes\noutput: lowered\nsteps:\n"
        "  - step: sql\n    id: lowercase-note-texts\n"
        "    params: {query: 'SELECT id, lower(text) AS text FROM batch'}\n"
    )
    out = cli("run", str(pipeline)).stdout
    assert "lowercase-note-texts" in out and "│ 4 │" in " ".join(out.split()), out
    assert "…" not in out and _fits(out), out


# -- the layout ---------------------------------------------------------------------------------

COLUMNS = (
    RecordColumn("id"),
    RecordColumn("rows", justify="right"),
    RecordColumn("note", free_text=True),
)


def test_free_text_wraps_beside_identifiers_that_stay_whole(
    capsys: pytest.CaptureFixture[str],
) -> None:
    note = "a note that is too long for the width that is left and so wraps"
    print_records(COLUMNS, [["x" * 40, "1,234", Text(note)]], title="records")
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].strip() == "records" and "┃ id" in lines[2]
    assert "x" * 40 in out and "1,234" in out and _fits(out)
    assert all(word in out for word in note.split())
    assert sum("│" in line for line in lines) >= 3  # the note takes several lines of the table


def test_without_room_for_free_text_it_goes_on_indented_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    print_records(COLUMNS, [["x" * 62, "7", "first note"], ["y", "12", None]])
    assert capsys.readouterr().out.splitlines() == [
        f"{'id':<62}  rows",
        f"{'x' * 62}  {'7':>4}",
        "    first note",
        f"{'y':<62}  {'12':>4}",
    ]


def test_headers_wrap_before_values_do(capsys: pytest.CaptureFixture[str]) -> None:
    columns = [RecordColumn(f"long header {n}", justify="right") for n in range(8)]
    print_records(columns, [[str(n) for n in range(8)]])
    out = capsys.readouterr().out
    assert "┃ header ┃" in out and "long" in out and _fits(out), out


def test_head_of_a_wide_dataset_prints_one_record_per_row(notes: str, cli: Cli) -> None:
    wide = {
        "ticket_id": ["T-1001", "T-1002"],
        "created_at": ["2025-01-06 10:19:39+00:00", "2025-01-06 10:27:15+00:00"],
        "channel": ["email", "phone"],
        "product_area": ["account", "billing"],
        "language": ["en", "de"],
        "priority": ["low", "normal"],
        "subject": ["Export all notes to Markdown", "Phone: account locked"],
        "status": ["solved", "open"],
    }
    lake = curata.open(".")
    try:
        lake.create_dataset("wide", key="ticket_id")
        with lake.publish(message="wide") as pub:
            pub.append("wide", pa.table(wide))
    finally:
        lake.close()

    out = cli("dataset", "head", "wide").stdout

    assert _fits(out) and out.startswith("wide@1 (2 rows)")
    assert "-- row 1 " in out and "-- row 2 " in out
    for name, values in wide.items():
        for value in values:  # every value whole, after its column's name
            assert re.search(rf"^{name}\s+{re.escape(value)}\s*$", out, re.M), (name, value)
    # A narrow table still prints as a table.
    assert "┃" in cli("dataset", "head", "notes").stdout
