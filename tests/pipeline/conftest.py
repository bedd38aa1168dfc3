"""Fixtures for the pipeline tests: the test step functions on the path, a log of the rows
they receive, pipeline files, and a small input dataset.

``python`` steps import ``pipeline_steps:FUNCTION`` from tests/cases. The folder goes on
``sys.path`` (this process and, through multiprocessing's spawn, its worker processes) and on
``PYTHONPATH`` (subprocesses such as the ``curata`` script, and Ray workers).
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import curata

CASES = Path(__file__).parent.parent / "cases"
if str(CASES) not in sys.path:
    sys.path.insert(0, str(CASES))

import pipeline_steps  # noqa: E402 - needs CASES on the path
from pipeline_runner import ticket_rows  # noqa: E402


@pytest.fixture(autouse=True)
def _step_functions_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(CASES))
    current = os.environ.get("PYTHONPATH")
    monkeypatch.setenv(
        "PYTHONPATH", str(CASES) if not current else os.pathsep.join([str(CASES), current])
    )


class StepLog:
    """What the counting step functions of tests/cases/pipeline_steps.py received."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _lines(self, function: str | None) -> list[tuple[str, int, int]]:
        if not self.path.exists():
            return []
        rows = []
        for line in self.path.read_text().splitlines():
            name, n, pid = line.split()
            if function is None or name == function:
                rows.append((name, int(n), int(pid)))
        return rows

    def rows(self, function: str | None = None) -> int:
        """Rows received in all calls (of ``function``)."""
        return sum(n for _, n, _ in self._lines(function))

    def calls(self, function: str | None = None) -> list[int]:
        """Rows received per call (of ``function``), in call order."""
        return [n for _, n, _ in self._lines(function)]

    def pids(self, function: str | None = None) -> set[int]:
        """Processes that ran the calls."""
        return {pid for _, _, pid in self._lines(function)}

    def clear(self) -> None:
        """Forget the calls so far."""
        self.path.unlink(missing_ok=True)


@pytest.fixture
def step_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StepLog:
    """The log the counting step functions write to (in every process)."""
    path = tmp_path / "step-calls.log"
    monkeypatch.setenv(pipeline_steps.STEP_LOG, str(path))
    return StepLog(path)


PipelineFile = Callable[..., Path]


@pytest.fixture
def pipeline_file(tmp_path: Path) -> PipelineFile:
    """``pipeline_file(yaml_text, name="pipeline.yaml")`` writes a pipeline file (dedented)."""

    def write(text: str, name: str = "pipeline.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    return write


CreateTickets = Callable[..., curata.Dataset]


@pytest.fixture
def tickets() -> CreateTickets:
    """``tickets(lake, n, bad=...)`` creates dataset ``src`` (key ``id``) with ``n`` rows."""

    def create(lake: curata.Lake, n: int, *, bad: set[int] = frozenset()) -> curata.Dataset:
        ds = lake.create_dataset("src", key="id")
        ds.append(ticket_rows(range(n), bad=bad), message="tickets")
        return ds

    return create


def rows_of(lake: curata.Lake, ref: str) -> list[dict[str, Any]]:
    """The rows of a dataset version, in stored order."""
    return lake.ref(ref).to_arrow().to_pylist()
