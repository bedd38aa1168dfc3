"""Runs and usages in the catalog: what an executor records, and what people read back."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

import curata
from curata.lake.runs import CONSUMER_KINDS, parse_consumer


def _tickets(lake: curata.Lake, versions: int = 1) -> None:
    ds = lake.create_dataset("tickets", key="id")
    for v in range(versions):
        ds.append(pa.table({"id": [v * 10 + 1, v * 10 + 2], "text": ["a", "b"]}))


def _start(lake: curata.Lake, job: str = "clean", **kw: object) -> str:
    args: dict[str, object] = {
        "params": {},
        "code_version": None,
        "executor": "local",
        "inputs": [],
    }
    args.update(kw)
    return lake.start_run(job, **args)  # type: ignore[arg-type]


# -- runs ------------------------------------------------------------------------------------


def test_a_run_is_recorded_running_with_concrete_inputs(lake: curata.Lake) -> None:
    _tickets(lake, versions=3)
    lake.dataset("tickets").tag("prod", 2)
    before = datetime.now(UTC)
    run_id = lake.start_run(
        "clean-tickets",
        params={"lower": True, "limit": 5},
        code_version="fp-1234",
        executor="local",
        inputs=["tickets@prod", "tickets", "file:///data/raw.csv"],
    )
    assert re.fullmatch(r"[0-9a-f]{32}", run_id)
    run = lake.run(run_id)
    assert run.status == "running"
    assert run.job == "clean-tickets"
    assert run.params == {"lower": True, "limit": 5}
    assert (run.code_version, run.executor) == ("fp-1234", "local")
    # A tag or a branch is stored as the version it names when the run starts.
    assert run.inputs == ["tickets@2", "tickets@3", "file:///data/raw.csv"]
    assert run.outputs == [] and run.metrics == {} and run.error is None
    assert run.ended_at is None and run.seconds is None
    assert run.started_at.tzinfo is not None
    assert before - timedelta(seconds=1) <= run.started_at <= datetime.now(UTC)


def test_finishing_a_run_records_outputs_including_stamped_commits(lake: curata.Lake) -> None:
    _tickets(lake)
    lake.create_dataset("clean")
    lake.create_dataset("report")
    run_id = _start(lake, inputs=["tickets@1"])
    with lake.publish(message="clean", run_id=run_id) as pub:
        pub.append("clean", pa.table({"id": [1], "text": ["A"]}))
        pub.append("report", pa.table({"n": [1]}))
    # The caller lists one output; the other commit it published is found by its run id.
    run = lake.finish_run(run_id, status="succeeded", metrics={"rows": 1}, outputs=["clean"])
    assert run.status == "succeeded"
    assert run.outputs == ["clean@1", "report@1"]
    assert run.metrics == {"rows": 1}
    assert run.ended_at is not None and run.seconds is not None and run.seconds >= 0
    assert lake.run(run_id) == run
    assert {c.run_id for c in lake.dataset("clean").log()} == {run_id}


def test_a_failed_run_keeps_its_error(lake: curata.Lake) -> None:
    run_id = _start(lake)
    run = lake.finish_run(run_id, status="failed", metrics={}, outputs=[], error="gate failed")
    assert (run.status, run.error, run.outputs) == ("failed", "gate failed", [])
    with pytest.raises(curata.InvalidInput, match="finished already"):
        lake.finish_run(run_id, status="succeeded", metrics={}, outputs=[])


def test_finish_refuses_bad_status_and_unknown_runs(lake: curata.Lake) -> None:
    run_id = _start(lake)
    with pytest.raises(curata.InvalidInput, match="'succeeded' or 'failed'"):
        lake.finish_run(run_id, status="running", metrics={}, outputs=[])  # type: ignore[arg-type]
    with pytest.raises(curata.NotFound, match="No run"):
        lake.finish_run("0" * 32, status="failed", metrics={}, outputs=[])
    assert lake.run(run_id).status == "running"


def test_runs_are_listed_newest_first_by_job_and_limit(lake: curata.Lake) -> None:
    ids = [_start(lake, job=job) for job in ("a", "b", "a")]
    assert [r.id for r in lake.runs()] == ids[::-1]
    assert [r.id for r in lake.runs(job="a")] == [ids[2], ids[0]]
    assert [r.id for r in lake.runs(limit=2)] == [ids[2], ids[1]]
    assert lake.runs(job="nosuch") == []


def test_runs_survive_reopening_the_lake(lake: curata.Lake) -> None:
    run_id = _start(lake, params={"k": [1, 2]})
    lake.finish_run(run_id, status="succeeded", metrics={"m": 0.5}, outputs=[])
    again = curata.open(lake.uri)
    try:
        assert again.run(run_id).to_dict() == lake.run(run_id).to_dict()
    finally:
        again.close()


def test_a_run_is_found_by_a_unique_prefix_like_git(lake: curata.Lake) -> None:
    for run_id in ("abcdef01", "abcdef02", "fedcba99"):
        _start(lake, run_id=run_id)
    assert lake.run("fedcba").id == "fedcba99"
    assert lake.run("run:fedcba99").id == "fedcba99"
    with pytest.raises(curata.InvalidInput, match="ambiguous") as ambiguous:
        lake.run("abcdef")
    assert "abcdef01" in str(ambiguous.value) and "abcdef02" in str(ambiguous.value)
    with pytest.raises(curata.NotFound, match="at least 6") as short:
        lake.run("fed")
    assert "fedcba99" in str(short.value)
    with pytest.raises(curata.NotFound, match="Did you mean: fedcba99"):
        lake.run("fedcba98")


def test_unknown_run_with_no_runs_says_so(lake: curata.Lake) -> None:
    with pytest.raises(curata.NotFound, match="no runs yet"):
        lake.run("0123456789")


def test_start_validates_what_it_stores(lake: curata.Lake) -> None:
    _tickets(lake)
    with pytest.raises(curata.InvalidInput, match="job name"):
        _start(lake, job=" ")
    with pytest.raises(curata.InvalidInput, match="Invalid run id"):
        _start(lake, run_id="has space")
    with pytest.raises(curata.NotFound, match="No dataset named 'tickts'"):
        _start(lake, inputs=["tickts@1"])
    with pytest.raises(curata.NotFound, match="no version 9"):
        _start(lake, inputs=["tickets@9"])
    with pytest.raises(curata.InvalidInput, match="list of references"):
        _start(lake, inputs="tickets")
    with pytest.raises(curata.InvalidInput, match="holds a object"):
        _start(lake, params={"x": object()})
    with pytest.raises(curata.InvalidInput, match="at most 32"):
        _start(lake, executor="x" * 40)
    _start(lake, run_id="fixed-id")
    with pytest.raises(curata.InvalidInput, match="exists already"):
        _start(lake, run_id="fixed-id")
    assert [r.id for r in lake.runs()] == ["fixed-id"]


def test_params_and_metrics_become_plain_json(lake: curata.Lake) -> None:
    when = datetime(2025, 1, 2, 3, 4, 5)
    run_id = _start(lake, params={"nan": float("nan"), "at": when, "tags": ("a", "b")})
    run = lake.finish_run(
        run_id, status="succeeded", metrics={"inf": float("inf"), "n": {"x": 1.5}}, outputs=[]
    )
    assert run.params == {"nan": None, "at": "2025-01-02T03:04:05", "tags": ["a", "b"]}
    assert run.metrics == {"inf": None, "n": {"x": 1.5}}


def test_a_run_of_a_live_process_is_running(lake: curata.Lake) -> None:
    run_id = _start(lake)
    # Nothing finished it yet: it is shown as running, with no end and no duration.
    [run] = lake.runs()
    assert (run.id, run.status, run.ended_at) == (run_id, "running", None)
    assert run.to_dict()["seconds"] is None
    assert run.owner is not None and run.owner["pid"] == os.getpid()


def test_a_run_whose_process_was_killed_is_abandoned(
    lake: curata.Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    from curata.cli import main

    script = (
        "import os, signal, sys, curata\n"
        "lake = curata.open(sys.argv[1])\n"
        "print(lake.start_run('sync', params={}, code_version=None, executor='local',"
        " inputs=[]), flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", script, str(lake.uri)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    run_id = child.stdout.strip()

    run = lake.run(run_id)

    assert (run.status, run.ended_at) == ("abandoned", None)
    assert run.owner is not None and run.owner["host"] == socket.gethostname()
    assert lake.runs()[0].status == "abandoned"
    node = lake.lineage(f"run:{run_id}").node(f"run:{run_id}")
    assert node.attributes["status"] == "abandoned"
    # Only shown so: the catalog keeps it running, so a late finish_run would still work.
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(["--lake", str(lake.uri), "runs", "show", run_id])
    assert exit_.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert f"run {run_id} sync abandoned" in shown
    assert f"(its process, pid {run.owner['pid']} on {socket.gethostname()}, ended" in shown


def _set_owner(lake: curata.Lake, run_id: str, owner: dict[str, object]) -> None:
    import sqlalchemy as sa

    from curata.lake import schema

    with lake.catalog.write() as conn:
        conn.execute(sa.update(schema.runs).where(schema.runs.c.id == run_id).values(owner=owner))


def test_a_run_of_another_machine_or_an_older_curata_stays_running(lake: curata.Lake) -> None:
    elsewhere, unknown = _start(lake), _start(lake)
    _set_owner(lake, elsewhere, {"host": "some-other-host", "pid": 2**22 + 1})
    _set_owner(lake, unknown, {})

    assert {r.id: r.status for r in lake.runs()} == {elsewhere: "running", unknown: "running"}


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_a_run_whose_pid_now_names_another_process_is_abandoned(lake: curata.Lake) -> None:
    run_id = _start(lake)
    owner = lake.run(run_id).owner
    assert owner is not None and "started" in owner
    _set_owner(lake, run_id, {**owner, "started": owner["started"] - 1})

    assert lake.run(run_id).status == "abandoned"


# -- usages ----------------------------------------------------------------------------------


def test_a_usage_stores_the_version_a_tag_names(lake: curata.Lake) -> None:
    _tickets(lake, versions=3)
    lake.dataset("tickets").tag("prod", 2)
    usage = lake.record_usage("tickets@prod", consumer="deployment:prod-chat", purpose="retrieval")
    assert usage.ref == "tickets@2"
    assert (usage.consumer_kind, usage.consumer_name, usage.consumer_version) == (
        "deployment",
        "prod-chat",
        None,
    )
    assert usage.consumer == "deployment:prod-chat"
    assert usage.recorded_by == "test-author"
    # Moving the tag later does not move what was recorded.
    lake.dataset("tickets").tag("prod", 3)
    assert [u.ref for u in lake.usages()] == ["tickets@2"]


def test_usages_are_listed_newest_first_and_by_dataset(lake: curata.Lake) -> None:
    _tickets(lake)
    lake.create_dataset("kb").append(pa.table({"x": [1]}))
    first = lake.record_usage("tickets", consumer="model:ft-support@3", purpose="training")
    second = lake.record_usage("kb@1", consumer="evaluation:faith@v2", purpose="evaluation")
    assert [u.id for u in lake.usages()] == [second.id, first.id]
    assert [u.to_dict()["consumer"] for u in lake.usages("tickets")] == ["model:ft-support@3"]
    with pytest.raises(curata.NotFound, match="Did you mean: tickets"):
        lake.usages("tickts")


def test_recording_the_same_usage_twice_keeps_one(lake: curata.Lake) -> None:
    _tickets(lake)
    a = lake.record_usage("tickets@1", consumer="model:ft@3", purpose="training")
    b = lake.record_usage("tickets", consumer="model:ft@3", purpose="training")
    c = lake.record_usage("tickets", consumer="model:ft@4", purpose="training")
    assert a.id == b.id != c.id
    assert len(lake.usages()) == 2


@pytest.mark.parametrize(
    ("consumer", "message"),
    [
        ("ft-support", "is not KIND:NAME"),
        ("model:", "is not KIND:NAME"),
        ("model:a b", "is not KIND:NAME"),
        ("robot:r2", "Unknown consumer kind 'robot'"),
    ],
)
def test_bad_consumers_are_refused_with_the_kinds(
    sqlite_lake: curata.Lake, consumer: str, message: str
) -> None:
    _tickets(sqlite_lake)
    with pytest.raises(curata.InvalidInput, match=message) as err:
        sqlite_lake.record_usage("tickets", consumer=consumer, purpose="training")
    assert "model, experiment, evaluation, deployment, application, other" in str(err.value)
    assert sqlite_lake.usages() == []


def test_usage_needs_a_purpose_and_an_existing_version(sqlite_lake: curata.Lake) -> None:
    sqlite_lake.create_dataset("empty")
    _tickets(sqlite_lake)
    with pytest.raises(curata.InvalidInput, match="needs a purpose"):
        sqlite_lake.record_usage("tickets", consumer="model:m", purpose=" ")
    with pytest.raises(curata.NotFound, match="no versions yet"):
        sqlite_lake.record_usage("empty", consumer="model:m", purpose="training")
    with pytest.raises(curata.NotFound, match="no tag or branch 'prod'"):
        sqlite_lake.record_usage("tickets@prod", consumer="model:m", purpose="training")


def test_parse_consumer() -> None:
    assert parse_consumer("model:org/llama-ft@2024-06") == ("model", "org/llama-ft", "2024-06")
    assert parse_consumer(" other:x ") == ("other", "x", None)
    assert "model" in CONSUMER_KINDS


def test_run_records_need_no_lance_data(tmp_path: Path) -> None:
    """Runs and usages live in the catalog only: a lake with no datasets can hold runs."""
    lake = curata.init(str(tmp_path / "p"))
    try:
        run_id = _start(lake, inputs=["s3://bucket/raw/part-0.parquet"])
        assert lake.run(run_id).inputs == ["s3://bucket/raw/part-0.parquet"]
        assert not any((Path(lake.uri) / "data").iterdir())
    finally:
        lake.close()
