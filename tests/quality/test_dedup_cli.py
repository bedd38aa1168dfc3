"""``curata dedup``, run in-process as a user runs it (errors become messages and exit codes)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from curata.cli import app
from curata.cli.dedup_cmds import dedup


def _cli_fixtures() -> Any:
    """tests/cli/conftest.py (its fixtures: ``cli``, ``project``, ``files``)."""
    path = Path(__file__).parent.parent / "cli" / "conftest.py"
    spec = importlib.util.spec_from_file_location("cli_fixtures", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


_fixtures = _cli_fixtures()
cli, project, files = _fixtures.cli, _fixtures.project, _fixtures.files
Cli, DataFiles = _fixtures.Cli, _fixtures.DataFiles


@pytest.fixture(autouse=True)
def _dedup_registered() -> None:
    """Until cli/__init__.py registers the command, register it here the same way."""
    if not any(c.name == "dedup" for c in app.registered_commands):
        app.command("dedup")(dedup)


ROWS = [
    {"id": 3, "body": "Refunds take five days"},
    {"id": 1, "body": "refunds   take five DAYS"},
    {"id": 2, "body": "Shipping is free above 50 euros"},
    {"id": 4, "body": "shipping is free above 50 euros"},
    {"id": 5, "body": "Reset your password from the login page"},
]


@pytest.fixture
def docs(cli: Cli, project: Path, files: DataFiles) -> str:
    path = files.jsonl("docs.jsonl", ROWS)
    cli("dataset", "create", "docs", "--key", "id")
    cli("dataset", "import", "docs", str(path), "-m", "load")
    return "docs"


def test_dedup_json_lists_key_clusters_and_the_new_version(cli: Cli, docs: str) -> None:
    out = cli("dedup", docs, "--column", "body", "--json", "-m", "dedup").json()
    assert (out["rows_in"], out["rows_out"], out["version"]) == (5, 3, "docs@2")
    assert out["clusters"] == [[1, 3], [2, 4]] and out["canonical"] == [1, 2]
    log = cli("log", docs, "--json").json()
    assert log[0]["message"] == "dedup" and log[0]["changes"]["rows_deleted"] == 2
    again = cli("dedup", docs, "--column", "body", "--json").json()
    assert again["version"] is None and again["clusters"] == []


def test_dedup_dry_run_keep_longest_and_html(cli: Cli, docs: str, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    res = cli("dedup", docs, "-c", "body", "--keep", "longest", "--dry-run", "--html", str(page))
    assert "4 duplicate rows" not in res.stdout and "2 duplicate rows in 2 clusters" in res.stdout
    assert "keep 1: drop 3" in res.stdout  # 1 is two characters longer
    assert "Clusters by size" in page.read_text()
    assert len(cli("log", docs, "--json").json()) == 1


def test_dedup_near_and_semantic(cli: Cli, docs: str) -> None:
    near = cli("dedup", docs, "-c", "body", "--method", "near", "--json").json()
    assert near["clusters"] == [[1, 3], [2, 4]] and near["signatures_computed"] == 5
    sem = cli("dedup", docs, "-c", "body", "--method", "semantic", "--embedder", "hash:64",
              "--threshold", "0.9", "--json").json()  # fmt: skip
    assert sem["rows_in"] == 3 and sem["clusters"] == []


def test_dedup_errors(cli: Cli, docs: str) -> None:
    res = cli("dedup", docs, "-c", "text", code=2)
    assert "no column 'text'" in res.error and "id, body" in res.error
    res = cli("dedup", docs, "-c", "id", code=2)
    assert "needs a text column" in res.error
    res = cli("dedup", docs, "-c", "body", "--method", "fuzzy", code=2)
    assert "Unknown dedup method" in res.error
    res = cli("dedup", docs, "-c", "body", "--method", "near", "--threshold", "2", code=2)
    assert "Jaccard" in res.error
    assert "Traceback" not in res.stderr
    res = cli("dedup", f"{docs}@1", "-c", "body", code=2)
    assert f"'{docs}@1': it names a version of '{docs}'" in res.error
    assert f"Give the name ({docs})." in res.error
