"""The installed ``curata`` executable, run as a user runs it; and the CLI on PostgreSQL.

Each subprocess costs about half a second, so this file holds the few journeys that only a
real process shows: the console script, exit codes seen by a shell, lake discovery from the
working directory, and the demo.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq
import pytest

if TYPE_CHECKING:
    from conftest import Cli


def _executable() -> str:
    beside_python = Path(sys.executable).with_name("curata")
    found = str(beside_python) if beside_python.is_file() else shutil.which("curata")
    if found is None:
        pytest.skip("the curata script is not installed (pip install -e .)")
    return found


def curata(
    *args: str, cwd: Path, code: int = 0, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``curata`` in ``cwd``; asserts its exit code."""
    done = subprocess.run(
        [_executable(), *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == code, f"$ curata {' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(done.stdout)


def test_a_day_with_the_installed_cli(tmp_path: Path, samples: Path) -> None:
    project = tmp_path / "project"
    sub = project / "notebooks" / "eda"
    sub.mkdir(parents=True)
    init = curata("init", cwd=project)
    assert (
        init.stdout == f"Initialized empty curata lake in {project / '.curata'} (catalog: sqlite)\n"
    )

    # From a sub-folder: the nearest .curata is found, like git.
    created = curata("dataset", "import", "tickets", str(samples / "tickets.csv"),
                     "--key", "ticket_id", "-m", "helpdesk export", cwd=sub)  # fmt: skip
    assert created.stdout == "tickets@1  create: +150 rows\n"
    upsert = as_json(curata("dataset", "import", "tickets",
                            str(samples / "tickets_corrections.jsonl"), "--mode", "upsert",
                            "-m", "answers reviewed", "--json", cwd=sub))  # fmt: skip
    assert (upsert["version"], upsert["rows"], upsert["author"]) == (2, 155, "test-author")

    log = as_json(curata("log", "tickets", "--json", cwd=sub))
    assert [(c["version"], c["message"], c["operation"]) for c in log] == [
        (2, "answers reviewed", "upsert"),
        (1, "helpdesk export", "create"),
    ]
    assert log[0]["changes"]["rows_updated"] == 10

    diff = as_json(curata("diff", "tickets@1", "tickets", "--json", cwd=sub))
    assert (diff["rows_added"], diff["rows_updated"], diff["rows_deleted"]) == (5, 10, 0)

    sql = 'SELECT (SELECT count(*) FROM "tickets@1") AS v1, (SELECT count(*) FROM tickets) AS v2'
    assert as_json(curata("query", sql, "--json", cwd=sub)) == [{"v1": 150, "v2": 155}]

    reverted = curata("dataset", "revert", "tickets@1", "-m", "undo", cwd=sub)
    assert reverted.stdout == "tickets@3  revert: 10 updated (answer, status), -5 rows\n"

    # CURATA_LAKE from anywhere else.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = elsewhere / "tickets-v2.parquet"
    curata("dataset", "export", "tickets@2", str(out), cwd=elsewhere, CURATA_LAKE=str(project))
    assert pq.read_table(out).num_rows == 155

    # A failure is a message and exit code 2 for the shell, never a traceback.
    missing = curata("dataset", "show", "tickts", cwd=sub, code=2)
    assert missing.stderr == "error: No dataset named 'tickts'.\nDid you mean: tickets?\n"
    assert missing.stdout == ""


def test_python_dash_m_runs_the_cli(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "curata", "--version"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "curata 0.1.0\n")


def test_demo_runs_to_the_end(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    done = curata("demo", "--dir", str(folder), cwd=tmp_path, timeout=600)
    assert "Done. The lake is in" in done.stdout
    assert "error:" not in done.stderr
    assert pq.read_table(folder / "tickets-prod.parquet").num_rows == 155
    log = as_json(curata("log", "tickets", "--json", cwd=folder))
    assert [c["operation"] for c in log] == ["revert", "delete", "upsert", "create"]
    # the knowledge-base part, with the real local model
    assert "chunks: 4 added (1 embedded, 3 reused), 4 removed" in done.stdout
    assert "handbook@3: consistent" in done.stdout
    question = "How long are the nightly server backups kept?"
    hits = as_json(curata("kb", "search", "handbook", question, "-k", "1", "--at", "prod",
                          "--json", cwd=folder))  # fmt: skip
    assert hits[0]["doc_id"] == "server/backups.md" and "30 days" in hits[0]["text"]


def test_make_demo_leaves_the_checkout_clean() -> None:
    """`make demo` writes ./curata-demo in the checkout: git ignores it and `make clean`
    removes it."""
    root = Path(__file__).parents[2]
    if not (root / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "curata-demo/"], cwd=root, check=False, timeout=30
    )
    assert ignored.returncode == 0
    assert "curata-demo" in (root / "Makefile").read_text().split("\nclean:", 1)[1]


def test_demo_refuses_a_folder_it_did_not_make(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.md").write_text("precious")
    refused = cli("demo", "--dir", str(tmp_path / "mine"), code=2)
    assert "was not made by `curata demo`; not touching it" in refused.error
    assert (tmp_path / "mine" / "thesis.md").read_text() == "precious"


def test_cli_on_a_postgresql_catalog(
    pg_catalog_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli, samples: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli("init", "--catalog-url", pg_catalog_url).stdout == (
        f"Initialized empty curata lake in {tmp_path / '.curata'} (catalog: postgresql)\n"
    )
    assert not (tmp_path / ".curata" / "catalog.db").exists()
    # The URL is remembered by the lake: later commands need no option or variable.
    cli("dataset", "import", "tickets", str(samples / "tickets.csv"), "--key", "ticket_id")
    cli("dataset", "import", "tickets", str(samples / "tickets_corrections.jsonl"),
        "--mode", "upsert")  # fmt: skip
    cli("dataset", "tag", "tickets@1", "orig")
    assert [c["version"] for c in cli("log", "tickets", "--json").json()] == [2, 1]
    assert cli("diff", "tickets@orig", "tickets", "--json").json()["rows_updated"] == 10
    listing = cli("ls", "--json").json()
    assert [(d["name"], d["version"], d["rows"]) for d in listing] == [("tickets", 2, 155)]
    sql = 'SELECT count(*) AS n FROM "tickets@orig"'
    assert cli("query", sql, "--json").json() == [{"n": 150}]
    assert "No dataset named 'tickts'" in cli("dataset", "show", "tickts", code=2).error
