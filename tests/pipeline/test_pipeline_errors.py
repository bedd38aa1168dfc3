"""When steps fail: transient errors are retried with backoff; terminal errors fail the run
(publishing nothing) or set the row aside per the step's ``on_error`` and the gates."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pipeline_runner import ticket_rows
from pipeline_steps import FLAKY_STATE

import curata
from curata.errors import InvalidInput, MissingDependency, NotFound, QualityGateFailed
from curata.pipeline import executor
from curata.pipeline.executor import StepFailed
from curata.pipeline.run import RunResult, run_pipeline

if TYPE_CHECKING:
    from conftest import CreateTickets, PipelineFile, StepLog

N = 400
BAD = {7, 150, 151, 399}


def _run(lake: curata.Lake, path: Path, **options: Any) -> RunResult:
    return run_pipeline(lake, path, **{"batch_rows": 100, "workers": 1, **options})


def _one_step_text(function: str, on_error: str = "fail") -> str:
    return f"""
        name: one-step
        input: src
        steps:
          - step: python
            id: shout
            on_error: {on_error}
            params: {{function: "pipeline_steps:{function}"}}
        output: out
        """


def _one_step(pipeline_file: PipelineFile, function: str, on_error: str = "fail") -> Path:
    return pipeline_file(_one_step_text(function, on_error))


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> float:
    """Backoff of 10 ms (then 40, 160) instead of 0.2 s, to keep the tests fast."""
    monkeypatch.setattr(executor, "BACKOFF_SECONDS", 0.01)
    return 0.01


def test_transient_errors_are_retried_with_growing_backoff(
    sqlite_lake: curata.Lake,
    tickets: CreateTickets,
    pipeline_file: PipelineFile,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fast_backoff: float,
) -> None:
    state = tmp_path / "flaky.state"
    monkeypatch.setenv(FLAKY_STATE, str(state))
    tickets(sqlite_lake, N)
    result = _run(sqlite_lake, _one_step(pipeline_file, "flaky"), batch_rows=N)
    assert result.status == "succeeded"
    assert result.steps[0].retries == 2
    assert result.steps[0].calls == 3
    times = [float(t) for t in state.read_text().split()]
    waits = [b - a for a, b in itertools.pairwise(times)]
    assert waits[0] >= fast_backoff
    assert waits[1] >= 4 * fast_backoff  # backoff grows
    assert sqlite_lake.ref("out").count_rows() == N


def test_a_step_that_keeps_timing_out_fails_the_run_after_the_retries(
    sqlite_lake: curata.Lake,
    tickets: CreateTickets,
    pipeline_file: PipelineFile,
    step_log: StepLog,
    fast_backoff: float,
) -> None:
    tickets(sqlite_lake, N)
    with pytest.raises(StepFailed) as err:
        _run(sqlite_lake, _one_step(pipeline_file, "always_times_out"))
    assert "Step 'shout' failed: TimeoutError: the model server did not answer" in str(err.value)
    assert step_log.calls() == [100] * (executor.RETRIES + 1)
    assert not sqlite_lake.has_dataset("out_quarantine")
    assert not sqlite_lake.has_dataset("out")


def test_a_terminal_error_fails_the_run_at_once_and_publishes_nothing(
    lake: curata.Lake, tickets: CreateTickets, pipeline_file: PipelineFile, step_log: StepLog
) -> None:
    src = tickets(lake, N)
    path = _one_step(pipeline_file, "reject_bad")
    first = _run(lake, path)
    assert first.outputs == ["out@1"]
    published = lake.ref("out").to_arrow()

    src.upsert(ticket_rows([390], bad={390}), message="a bad row, in the last batch")
    step_log.clear()
    with pytest.raises(StepFailed) as err:
        _run(lake, path)
    message = "Step 'shout' failed: ValueError: cannot shout 'coupon bad crash number390'"
    assert err.value.message == message
    assert err.value.hint is not None and "on_error: quarantine" in err.value.hint
    # Only the changed row reached the step (the others are cached), and only once: a
    # terminal error is not retried.
    assert step_log.calls("reject_bad") == [1]

    # Published state untouched; the run is recorded as failed, with the error.
    assert lake.dataset("out").info().version == 1
    assert lake.ref("out").to_arrow().equals(published)
    assert not lake.has_dataset("out_quarantine")
    failed = lake.runs()[0]
    assert (failed.status, failed.outputs) == ("failed", [])
    assert failed.error is not None and "cannot shout" in failed.error


def test_failing_rows_are_quarantined_with_step_and_error(
    lake: curata.Lake, tickets: CreateTickets, pipeline_file: PipelineFile, step_log: StepLog
) -> None:
    tickets(lake, N, bad=BAD)
    path = _one_step(pipeline_file, "reject_bad", on_error="quarantine")
    result = _run(lake, path)
    assert result.quarantined == len(BAD)
    assert result.steps[0].errors == len(BAD)
    assert sorted(result.outputs) == ["out@1", "out_quarantine@1"]
    out = lake.ref("out").to_arrow()
    assert out.num_rows == N - len(BAD)
    assert not {r["id"] for r in out.to_pylist()} & BAD
    quarantine = lake.ref("out_quarantine").to_arrow().to_pylist()
    source = {r["id"]: r for r in ticket_rows(range(N), bad=BAD).to_pylist()}
    assert sorted(json.loads(q["row"])["id"] for q in quarantine) == sorted(BAD)
    for q in quarantine:
        row = json.loads(q["row"])
        assert row == source[row["id"]]  # the row as the step received it
        assert q["step"] == "shout"
        assert q["error"] == f"ValueError: cannot shout {row['text']!r}"
    # Both versions were published together, by the run.
    commits = [lake.dataset(n).log()[0] for n in ("out", "out_quarantine")]
    assert {c.run_id for c in commits} == {result.id}

    # Rows that failed are not cached: a re-run tries them again, and only them.
    step_log.clear()
    again = _run(lake, path)
    assert step_log.rows("reject_bad") >= len(BAD)
    assert again.steps[0].cache_hits == N - len(BAD)
    assert again.outputs == []  # same output, same quarantine

    # Fixed upstream, the rows go through and the quarantine empties.
    lake.dataset("src").upsert(ticket_rows(sorted(BAD)), message="fixed")
    fixed = _run(lake, path)
    assert fixed.quarantined == 0
    assert lake.ref("out").count_rows() == N
    assert lake.ref("out_quarantine").count_rows() == 0
    assert lake.ref("out_quarantine@1").count_rows() == len(BAD)  # history keeps them


def test_warn_drops_failing_rows_without_a_quarantine(
    sqlite_lake: curata.Lake, tickets: CreateTickets, pipeline_file: PipelineFile
) -> None:
    tickets(sqlite_lake, N, bad=BAD)
    result = _run(sqlite_lake, _one_step(pipeline_file, "reject_bad", on_error="warn"))
    assert (result.warned, result.quarantined) == (len(BAD), 0)
    assert result.outputs == ["out@1"]
    assert sqlite_lake.ref("out").count_rows() == N - len(BAD)
    assert not sqlite_lake.has_dataset("out_quarantine")


GATED = """
name: gated
input: src
steps:
  - step: python
    id: shout
    params: {{function: "pipeline_steps:shout"}}
  - step: sql
    id: german
    params: {{query: "SELECT id, text, lang FROM batch WHERE lang <> 'fr'"}}
outputs:
  - dataset: shouted
    after: shout
  - dataset: final
gates:
  - name: no-german
    where: "lang = 'de'"
    action: {action}
  - name: short-ids
    after: shout
    where: "id < 3"
    action: {early}
quarantine: held
"""


def test_gates_fail_quarantine_or_warn(
    lake: curata.Lake, tickets: CreateTickets, pipeline_file: PipelineFile
) -> None:
    tickets(lake, N)
    german = {i for i in range(N) if i % 5 == 0}

    with pytest.raises(QualityGateFailed) as err:
        _run(lake, pipeline_file(GATED.format(action="fail", early="warn")))
    assert f"Gate 'no-german' failed: {len(german & set(range(100)))} row(s) match" in str(
        err.value
    )
    assert not lake.has_dataset("final")
    assert not lake.has_dataset("shouted")

    result = _run(lake, pipeline_file(GATED.format(action="quarantine", early="warn")))
    assert (result.quarantined, result.warned) == (len(german), 3)
    final = {r["id"] for r in lake.ref("final").to_arrow().to_pylist()}
    assert final == set(range(N)) - german
    # warn keeps the rows: 0, 1 and 2 are in both outputs.
    assert {0, 1, 2} <= {r["id"] for r in lake.ref("shouted").to_arrow().to_pylist()}
    held = lake.ref("held").to_arrow().to_pylist()
    assert {h["step"] for h in held} == {"gate:no-german"}
    assert {h["error"] for h in held} == {"lang = 'de'"}
    assert sorted(json.loads(h["row"])["id"] for h in held) == sorted(german)
    assert sorted(result.outputs) == ["final@1", "held@1", "shouted@1"]


def test_a_failed_run_publishes_none_of_the_rows_it_staged(
    lake: curata.Lake,
    tickets: CreateTickets,
    pipeline_file: PipelineFile,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from curata.pipeline import run as run_module

    monkeypatch.setattr(run_module, "STAGE_ROWS", 100)  # data files written along the way
    src = tickets(lake, N)
    path = pipeline_file(GATED.format(action="quarantine", early="warn"))
    _run(lake, path)
    before = {n: lake.ref(n).to_arrow() for n in ("shouted", "final", "held")}
    lance_versions = {n: _lance_version(lake, n) for n in before}
    files = _data_files(lake, "final")

    src.upsert(ticket_rows([395], bad={395}), message="bad row in the last batch")
    failing = path.read_text().replace("pipeline_steps:shout", "pipeline_steps:reject_bad")
    with pytest.raises(StepFailed):
        _run(lake, pipeline_file(failing, name="failing.yaml"))
    for name, table in before.items():
        assert lake.dataset(name).info().version == 1
        assert lake.ref(name).to_arrow().equals(table)
        assert _lance_version(lake, name) == lance_versions[name]
    assert lake.runs()[0].status == "failed"
    assert len(_data_files(lake, "final")) > len(files)  # rows were staged, never committed


def _data_files(lake: curata.Lake, name: str) -> list[Path]:
    return list((Path(lake.uri) / "data" / f"{name}.lance" / "data").iterdir())


def _lance_version(lake: curata.Lake, name: str) -> int:
    import lance

    return int(lance.dataset(str(Path(lake.uri) / "data" / f"{name}.lance")).latest_version)


def test_a_failed_first_run_leaves_no_empty_output_behind(
    lake: curata.Lake, tickets: CreateTickets, pipeline_file: PipelineFile
) -> None:
    tickets(lake, N)
    with pytest.raises(NotFound, match="No dataset named 'srcc'"):
        _run(lake, pipeline_file(_one_step_text("shout").replace("input: src", "input: srcc")))
    with pytest.raises(StepFailed):
        _run(lake, _one_step(pipeline_file, "always_times_out"))
    assert [d.name for d in lake.datasets()] == ["src"]


def test_a_first_run_failing_after_it_staged_rows_leaves_no_output_behind(
    lake: curata.Lake,
    tickets: CreateTickets,
    pipeline_file: PipelineFile,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from curata.pipeline import run as run_module

    monkeypatch.setattr(run_module, "STAGE_ROWS", 100)  # data files written along the way
    tickets(lake, N, bad={395})  # the last batch fails, after three hundred rows were staged
    failing = GATED.format(action="quarantine", early="warn").replace(
        "pipeline_steps:shout", "pipeline_steps:reject_bad"
    )
    with pytest.raises(StepFailed):
        _run(lake, pipeline_file(failing))
    # The outputs and the quarantine are created by the publish that never came.
    assert [d.name for d in lake.datasets()] == ["src"]
    assert _data_files(lake, "final")  # rows were staged, in files nobody sees


def test_an_output_key_that_is_not_a_column_is_refused_by_name(
    lake: curata.Lake, tickets: CreateTickets, pipeline_file: PipelineFile
) -> None:
    tickets(lake, N)
    text = _one_step_text("shout").replace("output: out", "output: {dataset: out, key: idd}")
    with pytest.raises(InvalidInput) as err:
        _run(lake, pipeline_file(text))
    assert err.value.message == "Output 'out': key column 'idd' is not among its columns."
    assert err.value.hint is not None and "id, text, lang" in err.value.hint
    assert not lake.has_dataset("out")

    # Fixed in the file, the run creates the output with the right key.
    _run(lake, pipeline_file(text.replace("key: idd", "key: id")))
    assert lake.dataset("out").info().key == "id"

    # An existing keyed output whose new rows lack the key: refused, nothing published.
    dropped = """
        name: drop-key
        input: src
        steps:
          - step: select
            params: {columns: [text]}
        output: out
        """
    with pytest.raises(InvalidInput, match="Key column 'id' is not in the input for 'out'"):
        _run(lake, pipeline_file(dropped))
    assert lake.dataset("out").info().version == 1

    # A file whose key disagrees with the existing output's: refused before any work.
    other_key = text.replace("key: idd", "key: lang")
    runs = len(lake.runs())
    for dry_run in (True, False):
        with pytest.raises(InvalidInput) as err:
            run_pipeline(lake, pipeline_file(other_key), dry_run=dry_run, workers=1)
        assert err.value.message == (
            "Output 'out' has primary key 'id', but the pipeline gives it key 'lang'."
        )
        assert "Use key: id" in (err.value.hint or "")
    assert lake.dataset("out").info().version == 1
    assert len(lake.runs()) == runs  # no run recorded for the refused ones


def test_the_ray_executor_without_ray_says_what_to_install_before_any_work(
    sqlite_lake: curata.Lake,
    tickets: CreateTickets,
    pipeline_file: PipelineFile,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    tickets(sqlite_lake, N)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(MissingDependency) as err:
        _run(sqlite_lake, _one_step(pipeline_file, "shout"), executor="ray")
    assert err.value.hint == 'Install it with: pip install "curata[ray]"'
    assert sqlite_lake.runs() == []
    assert [d.name for d in sqlite_lake.datasets()] == ["src"]


CODES = """
name: codes
input: codes
steps:
  - step: STEP
    id: to-int
    on_error: ON_ERROR
    params: PARAMS
output: ints
"""
CAST = ("cast", "{columns: {n: int8}}")
SQL_CAST = ("sql", '{query: "SELECT id, CAST(n AS TINYINT) AS n FROM batch"}')


@pytest.mark.parametrize(("step", "params"), [CAST, SQL_CAST], ids=["cast", "sql"])
def test_built_in_steps_that_fail_on_some_values_follow_on_error(
    lake: curata.Lake, pipeline_file: PipelineFile, step: str, params: str
) -> None:
    import pyarrow as pa

    codes = pa.table({"id": [1, 2, 3, 4], "n": ["1", "x", "3", "300"]})
    lake.create_dataset("codes").append(codes)
    text = CODES.replace("STEP", step).replace("PARAMS", params)
    with pytest.raises(StepFailed) as err:
        _run(lake, pipeline_file(text.replace("ON_ERROR", "fail")))
    assert err.value.message.startswith("Step 'to-int' failed: ValueError: ")
    assert "on_error: quarantine" in (err.value.hint or "")

    result = _run(lake, pipeline_file(text.replace("ON_ERROR", "quarantine"), "q.yaml"))
    assert result.quarantined == 2
    assert lake.ref("ints").to_arrow().to_pylist() == [{"id": 1, "n": 1}, {"id": 3, "n": 3}]
    held = sorted(lake.ref("ints_quarantine").to_arrow().to_pylist(), key=lambda r: r["row"])
    assert [json.loads(h["row"])["id"] for h in held] == [2, 4]
    assert {h["step"] for h in held} == {"to-int"}
    assert all(h["error"].startswith("ValueError: ") for h in held)


def test_a_step_over_the_whole_input_that_raises_fails_the_run_by_name(
    lake: curata.Lake, tickets: CreateTickets, pipeline_file: PipelineFile
) -> None:
    tickets(lake, N, bad={3})
    text = _one_step_text("reject_bad", on_error="quarantine").replace(
        'params: {function: "pipeline_steps:reject_bad"}',
        'params: {function: "pipeline_steps:reject_bad", row_wise: false}',
    )
    with pytest.raises(StepFailed) as err:
        _run(lake, pipeline_file(text))
    assert err.value.message.startswith("Step 'shout' failed: ValueError: cannot shout")
    assert "whole input" in (err.value.hint or "")
    assert lake.runs()[0].status == "failed"
