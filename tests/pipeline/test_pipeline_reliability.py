"""A run killed at any moment publishes nothing or everything, and the next run gives what an
uninterrupted run gives; two runs at once publish no duplicate rows. Real run processes,
killed with SIGKILL, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fork_client import ForkServerClient
from pipeline_runner import (
    OUTPUTS,
    QUARANTINE,
    expected_outputs,
    published_outputs,
    reference_pipeline,
    ticket_rows,
)
from pipeline_steps import STEP_LOG

import curata
from curata.lake import schema as catalog_schema
from curata.pipeline.run import run_pipeline

CASES = Path(__file__).parent.parent / "cases"
RUNNER_SCRIPT = CASES / "pipeline_runner.py"
KILL_TRIALS = 10
N = 300
BATCH_ROWS = 50
STAGE_ROWS = 100  # outputs are written to data files while the run goes
SLEEP_PER_BATCH = 0.01
DATASETS = (*OUTPUTS, QUARANTINE)

pytestmark = pytest.mark.slow


class RunnerServer(ForkServerClient):
    """The fork server of tests/cases/pipeline_runner.py: starts run processes in milliseconds."""

    def __init__(self) -> None:
        super().__init__(RUNNER_SCRIPT, author="run-process")

    def start_run(
        self,
        lake: curata.Lake,
        pipeline: Path,
        log: Path,
        workers: int | None = 1,
        env: dict[str, str] | None = None,
    ) -> int:
        """Fork a process running ``pipeline`` on ``lake`` (with ``env`` set); its pid."""
        answer = self.ask(
            cmd="run",
            lake=lake.uri,
            pipeline=str(pipeline),
            log=str(log),
            batch_rows=BATCH_ROWS,
            stage_rows=STAGE_ROWS,
            workers=workers,
            env=env or {},
        )
        pid: int = answer["pid"]
        return pid

    def wait(self, pid: int) -> int:
        """Reap a run process; its wait status."""
        status: int = self.ask(cmd="wait", pid=pid)["status"]
        return status


@pytest.fixture(scope="module")
def runner_server() -> Iterator[RunnerServer]:
    server = RunnerServer()
    yield server
    server.close()


def _versions(lake: curata.Lake) -> dict[str, int | None]:
    return {n: lake.dataset(n).info().version if lake.has_dataset(n) else None for n in DATASETS}


def _publishes_since(lake: curata.Lake, before: dict[str, int | None]) -> set[tuple[str, str]]:
    """(run id, publish id) of every commit of the outputs made after ``before``."""
    c = catalog_schema.commits
    d = catalog_schema.datasets
    found = set()
    with lake.catalog.engine.connect() as conn:
        for name, version in before.items():
            rows = conn.execute(
                sa.select(c.c.run_id, c.c.publish_id)
                .join(d, d.c.id == c.c.dataset_id)
                .where(d.c.name == name, c.c.version > (version or 0))
            ).all()
            found |= {(r.run_id, r.publish_id) for r in rows}
    return found


def test_kill_9_at_random_moments_never_half_publishes_a_run(
    runner_server: RunnerServer, lake: curata.Lake, tmp_path: Path
) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    src = lake.create_dataset("src", key="id")
    src.append(ticket_rows(range(N), bad={17, 255}), message="tickets")
    log = tmp_path / "runs.log"

    # An uninterrupted run tells how long a run takes (a forked run starts a little colder
    # than one in this process, hence the margin below).
    pipeline = tmp_path / "pipeline-0.yaml"
    pipeline.write_text(reference_pipeline("!0", SLEEP_PER_BATCH))
    assert runner_server.wait(runner_server.start_run(lake, pipeline, log)) == 0, log.read_text()
    source = lake.ref("src").to_arrow().to_pylist()
    assert published_outputs(lake) == expected_outputs(source, "!0")
    duration = 1.0

    outcomes: list[str] = []
    for trial in range(1, KILL_TRIALS + 1):
        # New work for the run: 2% of rows change (one becomes bad); every third trial the
        # step params change too, so the run starts from empty caches.
        ids = rng.sample(range(N), N // 50)
        src.upsert(ticket_rows(ids, bad={ids[0]}, tag=f"t{trial}"), message=f"trial {trial}")
        suffix = f"!{trial // 3}"
        pipeline = tmp_path / f"pipeline-{trial}.yaml"
        pipeline.write_text(reference_pipeline(suffix, SLEEP_PER_BATCH))
        before, published_before = _versions(lake), published_outputs(lake)
        expected = expected_outputs(lake.ref("src").to_arrow().to_pylist(), suffix)

        pid = runner_server.start_run(lake, pipeline, log)
        # Half the kills aim at the end of the run, where it stages and publishes.
        time.sleep(duration * (rng.uniform(0.0, 1.0) if trial % 2 else rng.uniform(0.8, 1.4)))
        os.kill(pid, signal.SIGKILL)
        status = runner_server.wait(pid)
        context = f"trial {trial}, seed {seed}, run log:\n{log.read_text()[-3000:]}"
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        assert killed or status == 0, context

        # All or nothing: either the published state is untouched, or every output (and the
        # quarantine) moved together, in one publish, to exactly what the run means.
        publishes = _publishes_since(lake, before)
        after = published_outputs(lake)
        if publishes:
            assert len(publishes) == 1, context
            assert after == expected, context
            outcomes.append("published" if killed else "finished")
        else:
            assert _versions(lake) == before, context
            assert after == published_before, context
            # Killed inside the publish: Lance holds versions the catalog never published.
            outcomes.append("in publish" if _unpublished_lance_versions(lake) else "nothing")

        if outcomes[-1] == "finished":
            continue  # the run was not interrupted: nothing to recover from
        # The next run completes and gives what an uninterrupted run gives.
        began = time.monotonic()
        result = run_pipeline(lake, pipeline, batch_rows=BATCH_ROWS, workers=1)
        duration = time.monotonic() - began
        assert result.status == "succeeded", context
        assert published_outputs(lake) == expected, context

    # Cached results written by killed runs are results: computing everything again from
    # scratch gives the same rows, in the same order, so nothing new is published.
    scratch = run_pipeline(lake, pipeline, batch_rows=BATCH_ROWS, workers=1, no_cache=True)
    assert scratch.outputs == []
    print(f"seed {seed}: outcomes {outcomes}")
    # The kills interrupted real work in many trials.
    assert sum(o in ("nothing", "in publish") for o in outcomes) >= KILL_TRIALS // 3, outcomes


def _unpublished_lance_versions(lake: curata.Lake) -> bool:
    """Whether an output's Lance dataset is ahead of the version its catalog head names."""
    import lance

    for name in DATASETS:
        path = Path(lake.uri) / "data" / f"{name}.lance"
        log = lake.dataset(name).log() if lake.has_dataset(name) else []
        if log and path.exists() and lance.dataset(str(path)).latest_version > log[0].lance_version:
            return True
    return False


def test_two_runs_at_once_publish_no_duplicate_rows(
    runner_server: RunnerServer, lake: curata.Lake, tmp_path: Path
) -> None:
    src = lake.create_dataset("src", key="id")
    src.append(ticket_rows(range(N), bad={3}), message="tickets")
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(reference_pipeline("!", 0.0))
    for round_ in range(2):
        # Round 0: outputs and caches do not exist yet; round 1: both exist.
        if round_:
            src.upsert(ticket_rows(range(0, N, 7), tag="r1"), message="round 1")
        logs = [tmp_path / f"run-{round_}-{n}.log" for n in range(2)]
        before = _versions(lake)
        # Round 0 as `curata run` does by default: each run with its pool of worker processes.
        workers = None if round_ == 0 else 1
        pids = [runner_server.start_run(lake, pipeline, log, workers) for log in logs]
        statuses = [runner_server.wait(pid) for pid in pids]
        assert statuses == [0, 0], "\n".join(log.read_text() for log in logs)

        results = [json.loads(log.read_text().splitlines()[-1]) for log in logs]
        assert [r["status"] for r in results] == ["succeeded", "succeeded"]
        expected = expected_outputs(lake.ref("src").to_arrow().to_pylist(), "!")
        assert published_outputs(lake) == expected
        # Every version the two runs published holds exactly one run's rows (no duplicates,
        # no mix of the two): one or two new versions per output, each equal to the expected.
        for name in OUTPUTS:
            new = [c for c in lake.dataset(name).log() if c.version > (before[name] or 0)]
            assert 1 <= len(new) <= 2
            for commit in new:
                assert lake.ref(commit.ref).to_arrow().to_pylist() == expected[name]


@pytest.mark.parametrize("moment", ["starting", "working"])
def test_worker_processes_end_when_their_run_is_killed(
    runner_server: RunnerServer, sqlite_lake: curata.Lake, tmp_path: Path, moment: str
) -> None:
    lake = sqlite_lake
    lake.create_dataset("src", key="id").append(ticket_rows(range(N)), message="tickets")
    pipeline = tmp_path / "slow.yaml"
    pipeline.write_text(reference_pipeline("!", 1.0))  # a second per batch: still running
    calls = tmp_path / "calls.log"
    log = tmp_path / "run.log"
    pid = runner_server.start_run(lake, pipeline, log, workers=2, env={STEP_LOG: str(calls)})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        # Killed as soon as worker processes exist, or once two of them are in a step.
        workers = _children(pid)
        working = (
            {line.split()[2] for line in calls.read_text().splitlines()}
            if calls.exists()
            else set()
        )
        if (moment == "starting" and workers) or len(working) == 2:
            break
        time.sleep(0.05)
    assert workers, log.read_text()
    os.kill(pid, signal.SIGKILL)
    runner_server.wait(pid)
    deadline = time.monotonic() + 10
    while (alive := [w for w in workers if _alive(w)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive == []
    assert not lake.has_dataset("words")  # nothing published, not even an empty dataset


def _children(pid: int) -> list[int]:
    """Pids of the processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
