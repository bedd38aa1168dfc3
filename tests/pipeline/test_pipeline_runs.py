"""Runs are recorded with what reproduces them, and publish all of their outputs at once."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from pipeline_runner import QUARANTINE, expected_outputs, published_outputs, reference_pipeline

import curata
from curata.lake import schema as catalog_schema
from curata.pipeline import run as run_module
from curata.pipeline.run import run_pipeline

if TYPE_CHECKING:
    from conftest import CreateTickets, PipelineFile

N = 600
BAD = {4, 333}
STEP_IDS = ["shout", "keep", "words", "long-words"]


def test_a_run_is_recorded_with_what_reproduces_it(
    lake: curata.Lake, tickets: CreateTickets, pipeline_file: PipelineFile
) -> None:
    src = tickets(lake, N, bad=BAD)
    src.tag("prod", 1)
    text = reference_pipeline().replace("input: src", "input: src@prod")
    path = pipeline_file(text)
    started = datetime.now(UTC)
    result = run_pipeline(lake, path, batch_rows=200, workers=1)
    ended = datetime.now(UTC)

    run = lake.run(result.id)
    assert (run.job, run.status, run.executor, run.error) == (
        "support-words",
        "succeeded",
        "local",
        None,
    )
    assert run.code_version == curata.__version__
    assert run.params["digest"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert run.params["file"] == str(path)
    assert [s["id"] for s in run.params["pipeline"]["steps"]] == STEP_IDS
    assert run.params["pipeline"]["steps"][0]["params"]["kwargs"] == {"suffix": "!", "seconds": 0}
    assert started <= run.started_at <= run.ended_at <= ended
    assert run.inputs == ["src@1"]  # the tag, resolved
    assert (
        sorted(run.outputs)
        == sorted(result.outputs)
        == [
            "shouted@1",
            f"{QUARANTINE}@1",
            "words@1",
        ]
    )
    steps = run.metrics["steps"]
    assert [s["id"] for s in steps] == STEP_IDS
    assert [s["name"] for s in steps] == ["python", "select", "python", "sql"]
    assert steps[0]["rows_in"] == N
    assert steps[0]["rows_out"] == steps[1]["rows_in"] == N - len(BAD)
    assert steps[2]["rows_out"] == steps[3]["rows_in"] > N
    assert all(s["cache_hits"] == 0 and s["seconds"] >= 0 for s in steps)
    assert run.metrics["rows_in"] == N
    assert run.metrics["quarantined"] == result.quarantined == len(BAD) + _crash_words(lake)
    assert [s.to_dict() for s in result.steps] == steps

    # What was published is what the pipeline means.
    source = lake.ref("src@prod").to_arrow().to_pylist()
    assert published_outputs(lake) == expected_outputs(source)

    # A second run records its cache hits (rows that failed are never cached: tried again).
    again = lake.run(run_pipeline(lake, path, batch_rows=200, workers=1).id)
    hits = [s["cache_hits"] for s in again.metrics["steps"]]
    assert hits == [N - len(BAD)] + [s["rows_in"] for s in again.metrics["steps"][1:]]
    assert again.outputs == []
    assert lake.dataset("words").log()[0].run_id == result.id


def _crash_words(lake: curata.Lake) -> int:
    rows = lake.ref("shouted").to_arrow().column("text").to_pylist()
    return sum(w.startswith("CRASH") for text in rows for w in text.split(" "))


def test_all_outputs_of_a_run_publish_in_one_catalog_transaction(
    lake: curata.Lake, tickets: CreateTickets, pipeline_file: PipelineFile
) -> None:
    tickets(lake, N, bad=BAD)
    result = run_pipeline(lake, pipeline_file(reference_pipeline()), batch_rows=200, workers=1)
    with lake.catalog.engine.connect() as conn:
        rows = conn.execute(
            sa.select(catalog_schema.commits.c.run_id, catalog_schema.commits.c.publish_id).where(
                catalog_schema.commits.c.run_id == result.id
            )
        ).all()
    assert len(rows) == 3
    assert len({r.publish_id for r in rows}) == 1


def test_outputs_are_streamed_to_data_files_while_the_run_goes(
    sqlite_lake: curata.Lake,
    tickets: CreateTickets,
    pipeline_file: PipelineFile,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(run_module, "STAGE_ROWS", 500)
    tickets(sqlite_lake, 3000)
    staged: list[int] = []
    real = sqlite_lake.stage_overwrite

    def spy(name: str, reader: pa.RecordBatchReader) -> object:
        out = real(name, reader)
        staged.append(out.rows)
        return out

    monkeypatch.setattr(sqlite_lake, "stage_overwrite", spy)
    path = pipeline_file(reference_pipeline())
    run_pipeline(sqlite_lake, path, batch_rows=250, workers=1)
    # Each output was written in pieces of about STAGE_ROWS rows, not held to the end.
    assert len(staged) >= 3000 // 500
    assert max(staged) < 500 + 250 * 4
    source = sqlite_lake.ref("src").to_arrow().to_pylist()
    assert published_outputs(sqlite_lake) == expected_outputs(source)


@pytest.mark.parametrize("stage_rows", [100, run_module.STAGE_ROWS])
def test_an_output_takes_new_columns_and_types_when_the_pipeline_changes(
    lake: curata.Lake,
    tickets: CreateTickets,
    pipeline_file: PipelineFile,
    monkeypatch: pytest.MonkeyPatch,
    stage_rows: int,
) -> None:
    monkeypatch.setattr(run_module, "STAGE_ROWS", stage_rows)  # staged in pieces, or at the end
    tickets(lake, N)
    text = """
        name: columns
        input: src
        steps:
          - step: sql
            params: {query: "SELECT id, text FROM batch"}
        output: {dataset: out, key: id}
        """
    run_pipeline(lake, pipeline_file(text), batch_rows=50, workers=1)
    changed = text.replace("SELECT id, text", "SELECT id, text, CAST(id AS VARCHAR) AS code")
    result = run_pipeline(lake, pipeline_file(changed, "changed.yaml"), batch_rows=50, workers=1)
    assert result.outputs == ["out@2"]
    out = lake.ref("out@2").to_arrow()
    assert out.column_names == ["id", "text", "code"]
    assert out.column("code").to_pylist() == [str(i) for i in range(N)]
    assert lake.ref("out@1").to_arrow().column_names == ["id", "text"]  # history intact


def test_a_pipeline_over_files_records_them_as_inputs(
    sqlite_lake: curata.Lake, pipeline_file: PipelineFile, tmp_path: Path
) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    pq.write_table(pa.table({"id": [1, 2], "text": ["a b", "c"]}), folder / "part-1.parquet")
    pq.write_table(pa.table({"id": [3], "text": ["d e f"]}), folder / "part-2.parquet")
    path = pipeline_file(
        f"""
        name: from-files
        input: {{files: "{folder}/*.parquet"}}
        steps:
          - step: sql
            params: {{query: "SELECT id, unnest(string_split(text, ' ')) AS word FROM batch"}}
        output: words
        """
    )
    result = run_pipeline(sqlite_lake, path, workers=1)
    assert result.rows_in == 3
    assert sqlite_lake.ref("words").to_arrow().column("word").to_pylist() == list("abcdef")
    assert sqlite_lake.run(result.id).inputs == [
        (folder / "part-1.parquet").as_uri(),
        (folder / "part-2.parquet").as_uri(),
    ]


def test_a_pipeline_without_steps_copies_its_input(
    sqlite_lake: curata.Lake, tickets: CreateTickets, pipeline_file: PipelineFile
) -> None:
    tickets(sqlite_lake, 50)
    path = pipeline_file("name: copy\ninput: src\noutput: copy\n")
    result = run_pipeline(sqlite_lake, path)
    assert result.outputs == ["copy@1"]
    assert sqlite_lake.ref("copy").to_arrow().equals(sqlite_lake.ref("src").to_arrow())


def test_upsert_and_append_outputs(
    sqlite_lake: curata.Lake, tickets: CreateTickets, pipeline_file: PipelineFile
) -> None:
    src = tickets(sqlite_lake, 100)
    path = pipeline_file(
        """
        name: modes
        input: src
        steps:
          - step: python
            params: {function: "pipeline_steps:shout"}
        outputs:
          - {dataset: latest, mode: upsert, key: id}
          - {dataset: history, mode: append}
        """
    )
    run_pipeline(sqlite_lake, path, workers=1)
    src.delete("id >= 50", message="half gone")
    src.upsert(pa.table({"id": [1], "text": ["new text"], "lang": ["en"]}), message="edit")
    run_pipeline(sqlite_lake, path, workers=1)
    latest = {r["id"]: r["text"] for r in sqlite_lake.ref("latest").to_arrow().to_pylist()}
    assert len(latest) == 100  # upsert keeps rows the input no longer has
    assert latest[1] == "NEW TEXT!"
    assert sqlite_lake.ref("history").count_rows() == 150
    assert sqlite_lake.dataset("latest").info().key == "id"
