"""SQL that users write (queries, sql steps, rules) runs in UTC, whatever the machine's time
zone: the same query over the same version gives the same rows and types everywhere."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pytest

import curata
from curata.pipeline.run import run_pipeline
from curata.quality.rules import evaluate_rules

NOON_UTC = datetime(2025, 1, 1, 12, 30, tzinfo=UTC)
EVENTS = pa.table({"id": [1], "ts": pa.array([NOON_UTC], pa.timestamp("us", tz="UTC"))})


@pytest.fixture
def in_tokyo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process runs in Asia/Tokyo (UTC+9), where 12:30 UTC is 21:30."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_query_runs_in_utc(sqlite_lake: curata.Lake, in_tokyo: None) -> None:
    sqlite_lake.create_dataset("events").append(EVENTS)

    out = sqlite_lake.query(
        'SELECT ts, hour(ts) AS h, ts::DATE AS d, ts::VARCHAR AS s FROM "events"'
    )

    assert out.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    row = out.to_pylist()[0]
    assert (row["h"], row["d"], row["s"]) == (12, date(2025, 1, 1), "2025-01-01 12:30:00+00")


def test_a_sql_step_runs_in_utc(sqlite_lake: curata.Lake, in_tokyo: None, tmp_path: Path) -> None:
    sqlite_lake.create_dataset("events", key="id").append(EVENTS)
    pipeline = tmp_path / "hours.yaml"
    pipeline.write_text(
        "name: hours\n"
        "input: events\n"
        "steps:\n"
        "  - step: sql\n"
        '    params: {query: "SELECT id, ts, hour(ts) AS h FROM batch"}\n'
        "output: hours\n"
    )

    run_pipeline(sqlite_lake, pipeline, workers=1)

    out = sqlite_lake.ref("hours").to_arrow()
    assert out.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert out.to_pylist() == [{"id": 1, "ts": NOON_UTC, "h": 12}]


def test_rules_run_in_utc(in_tokyo: None) -> None:
    report = evaluate_rules('Rules = [ CustomSql "SELECT hour(ts) FROM primary" = 12 ]', EVENTS)
    assert report.score == 1.0
