"""The ray executor gives exactly what the local one gives: same rows in the same order, same
quarantine, same step metrics, also when most rows come from the cache; and it streams, with a
bounded number of batches in flight. One local Ray with 2 CPUs for the module (Ray's start-up
dominates the time)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from pipeline_runner import (
    OUTPUTS,
    QUARANTINE,
    expected_outputs,
    published_outputs,
    reference_pipeline,
    ticket_rows,
)

import curata
from curata.pipeline.executor import PlannedStep, Segment
from curata.pipeline.local import map_batches
from curata.pipeline.run import RunResult, run_pipeline
from curata.pipeline.step import make_step

CASES = Path(__file__).parent.parent / "cases"
pytestmark = pytest.mark.ray

N = 3_000
BATCH_ROWS = 500


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A local Ray with 2 CPUs whose workers can import the test step functions; the file
    those functions log their calls to in the Ray workers."""
    import pipeline_steps
    import ray

    log = tmp_path_factory.mktemp("ray") / "step-calls.log"
    with pytest.MonkeyPatch.context() as env:
        # Ray's workers are started with the environment ray.init sees.
        env.setenv("PYTHONPATH", str(CASES))
        env.setenv("RAY_AUTH_MODE", "disabled")
        env.setenv(pipeline_steps.STEP_LOG, str(log))
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
    yield log
    ray.shutdown()


def _calls(log: Path, function: str) -> list[int]:
    """Rows received per call of a step function of tests/cases/pipeline_steps.py."""
    lines = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
    return [int(n) for name, n, _ in lines if name == function]


def _stats(result: RunResult) -> list[tuple[str, int, int, int]]:
    return [(s.id, s.rows_in, s.rows_out, s.cache_hits) for s in result.steps]


def test_ray_and_local_executors_publish_identical_outputs(local_ray: Path, tmp_path: Path) -> None:
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(reference_pipeline())
    lakes = {name: curata.init(str(tmp_path / name)) for name in ("local", "ray")}
    for lake in lakes.values():
        lake.create_dataset("src", key="id").append(
            ticket_rows(range(N), bad={5, 1234, 2999}), message="tickets"
        )

    for round_ in range(2):
        if round_:  # 1% of the rows change: the second ray run is mostly cache hits
            for lake in lakes.values():
                changed = ticket_rows(range(0, N, 100), bad={1000}, tag="v2")
                lake.dataset("src").upsert(changed, message="1% changed")
        local = run_pipeline(lakes["local"], pipeline, batch_rows=BATCH_ROWS, workers=1)
        on_ray = run_pipeline(lakes["ray"], pipeline, batch_rows=BATCH_ROWS, executor="ray")

        assert _stats(on_ray) == _stats(local)
        assert (on_ray.quarantined, on_ray.rows_in) == (local.quarantined, local.rows_in)
        assert sorted(on_ray.outputs) == sorted(local.outputs)
        for name in (*OUTPUTS, QUARANTINE):
            assert lakes["ray"].ref(name).to_arrow().equals(lakes["local"].ref(name).to_arrow())
        source = lakes["ray"].ref("src").to_arrow().to_pylist()
        assert published_outputs(lakes["ray"]) == expected_outputs(source)
        assert lakes["ray"].run(on_ray.id).executor == "ray"

    assert on_ray.steps[0].cache_hits >= N - N // 100 - 3
    for lake in lakes.values():
        lake.close()


def test_a_failing_step_on_ray_fails_the_run_with_curatas_error(
    local_ray: Path, tmp_path: Path
) -> None:
    from curata.pipeline.executor import StepFailed

    pipeline = tmp_path / "failing.yaml"
    pipeline.write_text(reference_pipeline().replace("on_error: quarantine", "on_error: fail"))
    lake = curata.init(str(tmp_path / "lake"))
    lake.create_dataset("src", key="id").append(ticket_rows(range(N), bad={1234}))
    with pytest.raises(StepFailed, match="Step 'shout' failed: ValueError: cannot shout"):
        run_pipeline(lake, pipeline, batch_rows=BATCH_ROWS, executor="ray")
    assert [d.name for d in lake.datasets()] == ["src"]
    assert lake.runs()[0].status == "failed"
    lake.close()


def test_ray_streams_the_batches_with_two_per_cpu_in_flight(local_ray: Path) -> None:
    """The driver reads the input only a few batches ahead of the results it has yielded."""
    segment = Segment(
        [PlannedStep(make_step("sql", {"query": "SELECT id, upper(text) AS text FROM batch"}))],
        taps={"out": 0},
        gates=[],
        offset=0,
    )
    batches = [ticket_rows(range(n * 5, n * 5 + 5)) for n in range(200)]
    read = 0

    def source() -> Iterator[pa.Table]:
        nonlocal read
        for batch in batches:
            read += 1
            yield batch

    read_at_result: list[int] = []
    tables = []
    for result in map_batches(segment, source(), "ray", None):
        read_at_result.append(read)
        tables.append(result.tables["out"])

    assert read_at_result[0] <= 4
    assert max(r - n for n, r in enumerate(read_at_result)) <= 4
    assert tables == [segment.apply(batch).tables["out"] for batch in batches]


def test_a_ray_run_reports_progress_while_batches_are_still_to_come(
    local_ray: Path, tmp_path: Path
) -> None:
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(reference_pipeline())
    lake = curata.init(str(tmp_path / "lake"))
    lake.create_dataset("src", key="id").append(ticket_rows(range(600)))
    local_ray.unlink(missing_ok=True)
    calls_at_progress: list[int] = []

    def progress(step: str, done: int, total: int | None) -> None:
        if step == "shout":
            calls_at_progress.append(len(_calls(local_ray, "reject_bad")))

    run_pipeline(lake, pipeline, batch_rows=10, executor="ray", progress=progress)

    assert len(calls_at_progress) == 60
    assert calls_at_progress[0] <= 4  # two batches per CPU in flight, not the whole input
    assert _calls(local_ray, "reject_bad") == [10] * 60
    lake.close()


def test_ray_runs_steps_after_a_whole_input_step_like_local(
    local_ray: Path, tmp_path: Path
) -> None:
    """Three segments, each with its own actors: a segment's actors give their CPUs back
    before the next segment needs them."""
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(
        """
name: langs
input: src
steps:
  - step: python
    id: shout
    params: {function: "pipeline_steps:shout"}
  - step: sql
    id: per-lang
    params: {query: "SELECT lang, count(*) AS n FROM batch GROUP BY lang ORDER BY lang"}
  - step: sql
    id: double
    params: {query: "SELECT lang, n * 2 AS twice FROM batch"}
outputs:
  - dataset: langs
"""
    )
    lakes = {name: curata.init(str(tmp_path / name)) for name in ("local", "ray")}
    for lake in lakes.values():
        lake.create_dataset("src", key="id").append(ticket_rows(range(300)))
    local = run_pipeline(lakes["local"], pipeline, batch_rows=50, workers=1)
    on_ray = run_pipeline(lakes["ray"], pipeline, batch_rows=50, executor="ray")

    assert _stats(on_ray) == _stats(local)
    assert lakes["ray"].ref("langs").to_arrow().equals(lakes["local"].ref("langs").to_arrow())
    assert lakes["ray"].ref("langs").to_arrow().column("twice").to_pylist() == [120, 480]
    for lake in lakes.values():
        lake.close()
