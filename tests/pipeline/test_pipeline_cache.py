"""Incremental runs: work is keyed by (row content hash, step fingerprint), so only new or
changed rows reach a step; ``no_cache`` and ``recompute`` override it."""

from __future__ import annotations

import tempfile
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pytest
from pipeline_runner import ticket_rows

import curata
from curata.pipeline.run import RunResult, run_pipeline

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import CreateTickets, PipelineFile, StepLog

N = 2_000
BATCH = 500

SHOUT_THEN_ODD = """
name: shout-odd
input: src
steps:
  - step: python
    id: shout
    params: {function: "pipeline_steps:shout", kwargs: {suffix: "SUFFIX"}}
  - step: python
    id: odd
    params: {function: "pipeline_steps:odd_ids"}
  - step: sql
    id: english
    params: {query: "SELECT id, text FROM batch WHERE lang = 'en'"}
output: out
"""


def _run(lake: curata.Lake, path: Path, **options: Any) -> RunResult:
    """A run in this process (unless ``workers`` says otherwise), in batches of BATCH rows."""
    return run_pipeline(lake, path, **{"batch_rows": BATCH, "workers": 1, **options})


def _pipeline(pipeline_file: PipelineFile, suffix: str = "!") -> Path:
    return pipeline_file(SHOUT_THEN_ODD.replace("SUFFIX", suffix))


def _expected(lake: curata.Lake, suffix: str = "!") -> list[dict[str, object]]:
    return [
        {"id": r["id"], "text": r["text"].upper() + suffix}
        for r in lake.ref("src").to_arrow().to_pylist()
        if r["id"] % 2 == 1 and r["lang"] == "en"
    ]


def test_a_rerun_computes_nothing_and_publishes_nothing_new(
    lake: curata.Lake, tickets: CreateTickets, pipeline_file: PipelineFile, step_log: StepLog
) -> None:
    tickets(lake, N)
    path = _pipeline(pipeline_file)
    first = _run(lake, path)
    assert first.outputs == ["out@1"]
    assert step_log.rows("shout") == N
    assert step_log.rows("odd_ids") == N
    assert max(step_log.calls()) <= BATCH  # streamed in batches
    assert lake.ref("out").to_arrow().to_pylist() == _expected(lake)

    step_log.clear()
    again = _run(lake, path)
    assert step_log.rows() == 0
    assert [(s.id, s.rows_in, s.cache_hits, s.computed) for s in again.steps] == [
        ("shout", N, N, 0),
        ("odd", N, N, 0),
        ("english", N // 2, N // 2, 0),
    ]
    assert again.status == "succeeded"
    assert again.outputs == []  # same content: no new version
    assert lake.dataset("out").info().version == 1


def test_after_one_percent_of_rows_change_only_those_rows_are_computed(
    lake: curata.Lake, tickets: CreateTickets, pipeline_file: PipelineFile, step_log: StepLog
) -> None:
    src = tickets(lake, N)
    path = _pipeline(pipeline_file)
    _run(lake, path)
    step_log.clear()

    changed = list(range(0, N, 100))  # 1%: 20 rows get new text
    src.upsert(ticket_rows(changed, tag="-v2"), message="edit 1%")
    src.append(ticket_rows(range(N, N + 5)), message="5 new")
    src.delete(f"id IN ({N - 1}, {N - 2})", message="2 gone")
    result = _run(lake, path)

    assert step_log.rows("shout") == len(changed) + 5
    # odd_ids gets the rows shout computed: changed content means a new hash downstream too.
    assert step_log.rows("odd_ids") == len(changed) + 5
    shout = result.steps[0]
    assert (shout.rows_in, shout.cache_hits, shout.computed) == (N + 3, N - 2 - 20, 25)
    assert result.outputs == ["out@2"]
    assert lake.ref("out").to_arrow().to_pylist() == _expected(lake)


def test_no_cache_computes_every_row_and_neither_reads_nor_fills_the_cache(
    lake: curata.Lake, tickets: CreateTickets, pipeline_file: PipelineFile, step_log: StepLog
) -> None:
    tickets(lake, N)
    path = _pipeline(pipeline_file)
    result = _run(lake, path, no_cache=True)
    assert step_log.rows("shout") == N
    assert all(s.cache_hits == 0 for s in result.steps)
    step_log.clear()
    _run(lake, path)  # the cache is still empty
    assert step_log.rows("shout") == N
    step_log.clear()
    again = _run(lake, path, no_cache=True)
    assert step_log.rows("shout") == N
    assert again.outputs == []  # computed again, to the same content


def test_recompute_drops_the_cache_of_one_step_only(
    lake: curata.Lake, tickets: CreateTickets, pipeline_file: PipelineFile, step_log: StepLog
) -> None:
    tickets(lake, N)
    path = _pipeline(pipeline_file)
    _run(lake, path)
    step_log.clear()
    result = _run(lake, path, recompute=["shout"])
    assert step_log.rows("shout") == N
    # shout made the same rows again, so odd is served from its cache.
    assert step_log.rows("odd_ids") == 0
    assert [s.cache_hits for s in result.steps] == [0, N, N // 2]
    step_log.clear()
    _run(lake, path)
    assert step_log.rows() == 0


def test_recompute_in_a_dry_run_or_a_run_that_cannot_start_keeps_the_cache(
    lake: curata.Lake, tickets: CreateTickets, pipeline_file: PipelineFile, step_log: StepLog
) -> None:
    tickets(lake, N)
    path = _pipeline(pipeline_file)
    _run(lake, path)
    plan = _run(lake, path, recompute=["shout"], dry_run=True)
    assert plan.dry_run and lake.runs()[0].status == "succeeded"
    missing = pipeline_file(path.read_text().replace("input: src", "input: src@9"), "v9.yaml")
    with pytest.raises(curata.NotFound):
        _run(lake, missing, recompute=["shout"])
    step_log.clear()
    result = _run(lake, path)
    assert step_log.rows() == 0
    assert result.steps[0].cache_hits == N


def test_changed_params_miss_the_cache_and_old_params_still_hit_it(
    lake: curata.Lake, tickets: CreateTickets, pipeline_file: PipelineFile, step_log: StepLog
) -> None:
    tickets(lake, N)
    _run(lake, _pipeline(pipeline_file, "!"))
    step_log.clear()
    _run(lake, _pipeline(pipeline_file, "?"))
    assert step_log.rows("shout") == N
    assert lake.ref("out").to_arrow().to_pylist() == _expected(lake, "?")
    step_log.clear()
    result = _run(lake, _pipeline(pipeline_file, "!"))
    assert step_log.rows() == 0
    assert result.outputs == ["out@3"]
    assert lake.ref("out").to_arrow().to_pylist() == _expected(lake, "!")


def test_cached_expansions_and_filters_give_what_computing_gives(
    sqlite_lake: curata.Lake, pipeline_file: PipelineFile, step_log: StepLog
) -> None:
    # Rows repeat (whole rows: same id and text) within and across batches; words expands
    # each row to several, odd_ids keeps some and drops others, sql unnests again.
    rows = ticket_rows(range(300))
    repeated = pa.concat_tables([rows, rows.slice(0, 100), rows.slice(50, 30)])
    sqlite_lake.create_dataset("src").append(repeated)
    path = pipeline_file(
        """
        name: words
        input: src
        steps:
          - step: python
            id: odd
            params: {function: "pipeline_steps:odd_ids"}
          - step: python
            id: words
            params: {function: "pipeline_steps:words"}
          - step: sql
            id: letters
            params:
              query: "SELECT id, word, unnest(string_split(word, 'n')) AS part FROM batch"
        output: parts
        """
    )
    computed = _run(sqlite_lake, path, batch_rows=64, no_cache=True)
    expected = sqlite_lake.ref("parts").to_arrow()
    assert computed.steps[-1].rows_out == expected.num_rows > repeated.num_rows
    first = _run(sqlite_lake, path, batch_rows=64)
    # Repeats within a batch reach the step once.
    assert step_log.rows("odd_ids") < 2 * repeated.num_rows
    assert first.outputs == []  # same rows, in the same order, as computing them all
    step_log.clear()
    cached = _run(sqlite_lake, path, batch_rows=64)
    assert step_log.rows() == 0
    assert cached.outputs == []
    assert [s.cache_hits for s in cached.steps] == [s.rows_in for s in cached.steps]
    assert sqlite_lake.ref("parts").to_arrow().equals(expected)
    # Other batch sizes: the same result from the cache.
    _run(sqlite_lake, path, batch_rows=1000)
    assert step_log.rows() == 0
    assert sqlite_lake.ref("parts").to_arrow().equals(expected)


def test_steps_that_need_the_whole_input_run_every_time(
    sqlite_lake: curata.Lake, tickets: CreateTickets, pipeline_file: PipelineFile, step_log: StepLog
) -> None:
    tickets(sqlite_lake, 1000)
    path = pipeline_file(
        """
        name: counts
        input: src
        steps:
          - step: python
            id: shout
            params: {function: "pipeline_steps:shout"}
          - step: sql
            id: per-lang
            params: {query: "SELECT lang, count(*) AS n FROM batch GROUP BY lang ORDER BY lang"}
          - step: python
            id: count
            params: {function: "pipeline_steps:count_rows", row_wise: false}
        outputs:
          - dataset: langs
            after: per-lang
          - dataset: count
        """
    )
    for _ in range(2):
        step_log.clear()
        result = _run(sqlite_lake, path, batch_rows=100)
        assert step_log.calls("count_rows") == [2]  # once, with all rows of per-lang
    assert step_log.rows("shout") == 0
    assert [s.cache_hits for s in result.steps] == [1000, 0, 0]
    assert sqlite_lake.ref("langs").to_arrow().to_pylist() == [
        {"lang": "de", "n": 200},
        {"lang": "en", "n": 800},
    ]
    assert sqlite_lake.ref("count").to_arrow().to_pylist() == [{"rows": 2}]


def test_a_step_with_cache_off_is_computed_every_run(
    sqlite_lake: curata.Lake, tickets: CreateTickets, pipeline_file: PipelineFile, step_log: StepLog
) -> None:
    tickets(sqlite_lake, 300)
    path = pipeline_file(
        """
        name: uncached
        input: src
        steps:
          - step: python
            params: {function: "pipeline_steps:shout"}
            cache: false
          - step: python
            params: {function: "pipeline_steps:odd_ids"}
        output: out
        """
    )
    for _ in range(2):
        step_log.clear()
        _run(sqlite_lake, path, batch_rows=100)
        assert step_log.rows("shout") == 300
    assert step_log.rows("odd_ids") == 0


def test_worker_processes_share_the_cache(
    sqlite_lake: curata.Lake,
    tickets: CreateTickets,
    pipeline_file: PipelineFile,
    step_log: StepLog,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    workers = 2
    src = tickets(sqlite_lake, N)
    path = _pipeline(pipeline_file)
    in_process = _run(sqlite_lake, path, workers=1, no_cache=True)
    pooled = _run(sqlite_lake, path, workers=workers)
    assert pooled.outputs == []  # the same rows as computed in this process
    assert len(step_log.pids("shout")) == 1 + workers
    assert [s.rows_out for s in pooled.steps] == [s.rows_out for s in in_process.steps]
    step_log.clear()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    again = _run(sqlite_lake, path, workers=workers)
    assert step_log.rows() == 0
    assert again.steps[0].cache_hits == N

    # The workers look up through one index the run built: only changed rows are computed.
    changed = list(range(0, N, 100))
    src.upsert(ticket_rows(changed, tag="-v2"), message="edit 1%")
    edited = _run(sqlite_lake, path, workers=workers)
    assert step_log.rows("shout") == len(changed)
    shout = edited.steps[0]
    assert (shout.cache_hits, shout.computed) == (N - len(changed), len(changed))
    assert sqlite_lake.ref("out").to_arrow().to_pylist() == _expected(sqlite_lake)
    assert list(scratch.iterdir()) == []  # the index files went with the run


def test_two_steps_with_one_fingerprint_share_a_cache_in_worker_processes(
    sqlite_lake: curata.Lake, tickets: CreateTickets, pipeline_file: PipelineFile, step_log: StepLog
) -> None:
    tickets(sqlite_lake, N)
    twice = """
        name: shout-twice
        input: src
        steps:
          - {step: python, id: once, params: {function: "pipeline_steps:shout"}}
          - {step: python, id: twice, params: {function: "pipeline_steps:shout"}}
        output: out
        """
    path = pipeline_file(twice)
    _run(sqlite_lake, path, workers=2)
    step_log.clear()
    again = _run(sqlite_lake, path, workers=2)
    assert step_log.rows() == 0
    assert [(s.cache_hits, s.computed) for s in again.steps] == [(N, 0), (N, 0)]
    texts = sqlite_lake.ref("out").to_arrow().column("text").to_pylist()
    assert texts == [
        r["text"].upper() + "!!" for r in sqlite_lake.ref("src").to_arrow().to_pylist()
    ]
