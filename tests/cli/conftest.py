"""Fixtures for the command line: an in-process runner and small lakes to run it on.

``cli(...)`` runs ``curata.cli.main`` in this process, the way the ``curata`` script does, so
curata's errors become a message on stderr and an exit code, exactly as a user sees them.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curata.cli import main

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class Result:
    """What one command printed and how it exited."""

    args: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """stdout parsed as JSON (the whole of it: --json prints nothing else)."""
        return json.loads(self.stdout)

    @property
    def error(self) -> str:
        """stderr with runs of whitespace folded, for matching messages."""
        return " ".join(self.stderr.split())

    def __str__(self) -> str:
        return (
            f"$ curata {' '.join(self.args)}\nexit {self.exit_code}\n"
            f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
        )


Cli = Callable[..., Result]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run ``curata ARGS...`` in-process; asserts exit code 0 unless ``code=`` says otherwise."""

    def run(*args: str, code: int = 0) -> Result:
        capsys.readouterr()
        try:
            main(list(args))
            exit_code = 0
        except SystemExit as exit_:
            exit_code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
        out, err = capsys.readouterr()
        result = Result(args, exit_code, _ANSI.sub("", out), _ANSI.sub("", err))
        assert result.exit_code == code, str(result)
        return result

    return run


class DataFiles:
    """Writes small input files into one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def csv(self, name: str, rows: list[dict[str, Any]]) -> Path:
        path = self.folder / name
        with path.open("w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return path

    def jsonl(self, name: str, rows: list[dict[str, Any]]) -> Path:
        path = self.folder / name
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        return path

    def parquet(self, name: str, rows: list[dict[str, Any]]) -> Path:
        path = self.folder / name
        pq.write_table(pa.Table.from_pylist(rows), path)
        return path

    def text(self, name: str, text: str) -> Path:
        path = self.folder / name
        path.write_text(text)
        return path


@pytest.fixture
def samples() -> Path:
    """The bundled support-tickets sample (tickets.csv, tickets_corrections.jsonl)."""
    return Path(str(resources.files("curata.samples")))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli) -> Path:
    """A project folder holding an empty lake, made the working directory."""
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.chdir(folder)
    cli("init")
    return folder


@pytest.fixture
def files(tmp_path: Path) -> DataFiles:
    """Input files, written outside the project."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    return DataFiles(folder)


def _run(*args: str) -> None:
    try:
        main(list(args))
    except SystemExit as exit_:
        assert exit_.code == 0, f"curata {' '.join(args)} exited with {exit_.code}"


@pytest.fixture(scope="session")
def _notes_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project behind ``notes``, built once through the CLI and copied for each test."""
    folder = tmp_path_factory.mktemp("template") / "project"
    inputs = DataFiles(folder.parent)
    v1 = inputs.csv(
        "v1.csv",
        [
            {"id": 1, "text": "alpha", "status": "open"},
            {"id": 2, "text": "beta", "status": "open"},
            {"id": 3, "text": "gamma", "status": "spam"},
        ],
    )
    fix = inputs.jsonl(
        "fix.jsonl",
        [
            {"id": 2, "text": "beta", "status": "closed"},
            {"id": 4, "text": "delta", "status": "open"},
        ],
    )
    lake = ["--lake", str(folder)]
    with pytest.MonkeyPatch.context() as env:
        env.delenv("CURATA_LAKE", raising=False)
        env.delenv("CURATA_CATALOG_URL", raising=False)
        env.setenv("CURATA_AUTHOR", "test-author")
        _run("init", str(folder))
        _run(*lake, "dataset", "create", "notes", "--key", "id", "--owner", "ana", "--tag",
             "demo", "--description", "Short notes")  # fmt: skip
        _run(*lake, "dataset", "import", "notes", str(v1), "-m", "first")
        _run(*lake, "dataset", "import", "notes", str(fix), "--mode", "upsert", "-m", "second")
    return folder


@pytest.fixture
def notes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _notes_template: Path) -> str:
    """A project (the working directory) whose lake holds dataset ``notes``, keyed by ``id``:

    - notes@1 (message "first"): ids 1 alpha open, 2 beta open, 3 gamma spam;
    - notes@2 (message "second", an upsert): id 2 becomes closed, id 4 delta open is added.
    """
    folder = tmp_path / "project"
    shutil.copytree(_notes_template, folder)
    monkeypatch.chdir(folder)
    return "notes"
