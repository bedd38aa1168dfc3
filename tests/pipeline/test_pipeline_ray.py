"""The ray executor gives exactly what the local one gives: same rows in the same order, same
quarantine, same step metrics, also when most rows come from the cache. One local Ray with 2
CPUs for the module, two Ray runs in all (Ray's start-up dominates the time)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

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
from curata.pipeline.run import RunResult, run_pipeline

CASES = Path(__file__).parent.parent / "cases"
pytestmark = pytest.mark.ray

N = 3_000
BATCH_ROWS = 500


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A local Ray with 2 CPUs whose workers can import the test step functions."""
    import ray

    with pytest.MonkeyPatch.context() as env:
        # Ray's workers are started with the environment ray.init sees.
        env.setenv("PYTHONPATH", str(CASES))
        env.setenv("RAY_AUTH_MODE", "disabled")
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
    yield
    ray.shutdown()


def _stats(result: RunResult) -> list[tuple[str, int, int, int]]:
    return [(s.id, s.rows_in, s.rows_out, s.cache_hits) for s in result.steps]


def test_ray_and_local_executors_publish_identical_outputs(local_ray: None, tmp_path: Path) -> None:
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
    local_ray: None, tmp_path: Path
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
