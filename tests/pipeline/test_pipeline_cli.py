"""``curata run``: in-process through ``curata.cli.main``, and once end to end through the
installed ``curata`` script."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pipeline_runner import expected_outputs, published_outputs, reference_pipeline

import curata
from curata.cli import main

if TYPE_CHECKING:
    from conftest import CreateTickets, PipelineFile

N = 300
STEP_KEYS = {"name", "rows_in", "rows_out", "cache_hits", "seconds"}
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str], lake: curata.Lake, tickets: CreateTickets) -> Any:
    """``run_cli(*args, code=0)``: ``curata --lake LAKE run ARGS...`` in this process, on a lake
    holding ``src`` (N tickets)."""
    tickets(lake, N, bad={13})

    def run(*args: str, code: int = 0) -> Result:
        capsys.readouterr()
        try:
            main(["--lake", lake.uri, "run", *args])
            exit_code = 0
        except SystemExit as exit_:
            exit_code = exit_.code if isinstance(exit_.code, int) else 1
        out, err = capsys.readouterr()
        result = Result(exit_code, _ANSI.sub("", out), " ".join(_ANSI.sub("", err).split()))
        assert result.exit_code == code, result
        return result

    return run


def _check_steps(steps: list[dict[str, Any]]) -> None:
    assert [s["id"] for s in steps] == ["shout", "keep", "words", "long-words"]
    for s in steps:
        assert set(s) >= STEP_KEYS
        assert isinstance(s["seconds"], float | int)


def test_run_json_then_again_from_the_cache(
    run_cli: Any, pipeline_file: PipelineFile, lake: curata.Lake
) -> None:
    path = str(pipeline_file(reference_pipeline()))
    first = run_cli(path, "--json", "--workers", "1").json()
    assert first["status"] == "succeeded"
    assert re.fullmatch(r"[0-9a-f]{32}", first["id"])
    assert sorted(first["outputs"]) == ["shouted@1", "support_quarantine@1", "words@1"]
    _check_steps(first["steps"])
    assert first["steps"][0]["rows_in"] == N
    assert all(s["cache_hits"] == 0 for s in first["steps"])
    assert first["quarantined"] > 1
    source = lake.ref("src").to_arrow().to_pylist()
    assert published_outputs(lake) == expected_outputs(source)

    again = run_cli(path, "--json", "--workers", "1").json()
    assert again["outputs"] == []
    assert [s["cache_hits"] for s in again["steps"]][1:] == [s["rows_in"] for s in again["steps"]][
        1:
    ]

    no_cache = run_cli(path, "--json", "--no-cache", "--workers", "1").json()
    assert [s["cache_hits"] for s in no_cache["steps"]] == [0, 0, 0, 0]

    recomputed = run_cli(path, "--json", "--recompute", "words", "--workers", "1").json()
    hits = {s["id"]: (s["cache_hits"], s["rows_in"]) for s in recomputed["steps"]}
    assert hits["words"] == (0, N - 1)
    assert hits["keep"][0] == hits["keep"][1] > 0
    # words made the same rows again, so long-words is served from its cache.
    assert hits["long-words"][0] == hits["long-words"][1] > N


def test_run_prints_a_table_of_steps(run_cli: Any, pipeline_file: PipelineFile) -> None:
    out = run_cli(str(pipeline_file(reference_pipeline())), "--workers", "1").stdout
    for header in ("step", "rows in", "rows out", "cache hits", "seconds"):
        assert header in out
    assert re.search(r"run [0-9a-f]{32} succeeded in [0-9.]+s: ", out)
    assert "row(s) quarantined" in out


def test_dry_run_shows_the_plan_and_touches_nothing(
    run_cli: Any, pipeline_file: PipelineFile, lake: curata.Lake
) -> None:
    path = str(pipeline_file(reference_pipeline()))
    plan = run_cli(path, "--dry-run", "--json").json()
    assert plan["dry_run"] is True
    assert plan["status"] == "planned"
    assert [(p["id"], p["row_wise"], p["cached"]) for p in plan["plan"]] == [
        ("shout", True, True),
        ("keep", True, True),
        ("words", True, True),
        ("long-words", True, True),
    ]
    text = run_cli(path, "--dry-run").stdout
    assert "dry run, nothing read or written" in text
    assert "outputs: shouted, words" in text
    assert lake.runs() == []
    assert [d.name for d in lake.datasets()] == ["src"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--recompute", "nope"], 2, "--recompute names no step of this pipeline: nope."),
        (["--executor", "spark"], 2, "Unknown executor 'spark'"),
    ],
)
def test_bad_options_exit_2(
    run_cli: Any, pipeline_file: PipelineFile, args: list[str], code: int, message: str
) -> None:
    result = run_cli(str(pipeline_file(reference_pipeline())), *args, code=code)
    assert message in result.stderr


def test_a_bad_pipeline_file_exits_2_naming_the_line(
    run_cli: Any, pipeline_file: PipelineFile, lake: curata.Lake
) -> None:
    path = pipeline_file(reference_pipeline().replace("step: select", "step: selekt"))
    result = run_cli(str(path), code=2)
    assert f"{path}:10: Unknown step 'selekt'." in result.stderr
    assert "Registered steps: " in result.stderr
    assert all(
        step in result.stderr
        for step in ("cast", "python", "rename", "select", "sql", "chunk", "embed")
    )
    assert lake.runs() == []


def test_a_failed_run_exits_1_and_is_recorded(
    run_cli: Any, pipeline_file: PipelineFile, lake: curata.Lake
) -> None:
    text = reference_pipeline().replace("on_error: quarantine", "on_error: fail")
    result = run_cli(str(pipeline_file(text)), "--workers", "1", code=1)
    assert "Step 'shout' failed: ValueError: cannot shout" in result.stderr
    assert [r.status for r in lake.runs()] == ["failed"]
    assert not lake.has_dataset("words")


def test_the_installed_script_runs_a_pipeline_end_to_end(
    sqlite_lake: curata.Lake, tickets: CreateTickets, pipeline_file: PipelineFile
) -> None:
    lake = sqlite_lake
    tickets(lake, N)
    script = shutil.which("curata", path=str(Path(sys.executable).parent)) or "curata"
    path = str(pipeline_file(reference_pipeline()))

    def run(*args: str) -> dict[str, Any]:
        done = subprocess.run(
            [script, "--lake", lake.uri, "run", path, "--json", *args],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ},
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    # The default for a pipeline with python steps: a pool of worker processes.
    first = run()
    assert sorted(first["outputs"]) == ["shouted@1", "support_quarantine@1", "words@1"]
    # A new process finds the cache: fingerprints do not depend on the process.
    second = run("--workers", "1")
    assert [s["cache_hits"] for s in second["steps"]] == [s["rows_in"] for s in second["steps"]]
    assert second["outputs"] == []
    source = lake.ref("src").to_arrow().to_pylist()
    assert published_outputs(lake) == expected_outputs(source)
    runs = lake.runs()
    assert [r.id for r in runs] == [second["id"], first["id"]]
    assert {r.status for r in runs} == {"succeeded"}


def test_a_terminal_shows_a_bar_per_step_that_ends_full(
    sqlite_lake: curata.Lake, tickets: CreateTickets, pipeline_file: PipelineFile
) -> None:
    tickets(sqlite_lake, N)
    path = pipeline_file(
        """
        name: bars
        input: src
        steps:
          - step: sql
            id: english
            params: {query: "SELECT id, text FROM batch WHERE lang = 'en'"}
          - step: select
            id: ids
            params: {columns: [id]}
        output: out
        """
    )
    script = shutil.which("curata", path=str(Path(sys.executable).parent)) or "curata"
    primary, secondary = os.openpty()  # a terminal: progress bars are drawn
    with subprocess.Popen(
        [script, "--lake", sqlite_lake.uri, "run", str(path)],
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env={**os.environ, "COLUMNS": "120", "TERM": "xterm"},
    ) as proc:
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the terminal closed: the process ended
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=120) == 0
    os.close(primary)
    screen = _ANSI.sub("", b"".join(chunks).decode()).replace("\r", "\n")
    english = N - len(range(0, N, 5))
    last = {
        step: [line for line in screen.splitlines() if line.startswith(step)][-1]
        for step in ("english", "ids")
    }
    assert f"{N}/{N}" in last["english"]
    # The second step sees only the rows the first kept: its bar still ends full.
    assert f"{english}/{english}" in last["ids"]
