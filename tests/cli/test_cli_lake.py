"""`curata init`, finding the lake (--lake > CURATA_LAKE > nearest .curata) and commit authors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Cli, DataFiles


def test_init_creates_a_lake_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("init")
    lake = tmp_path / ".curata"
    assert result.stdout == f"Initialized empty curata lake in {lake} (catalog: sqlite)\n"
    assert json.loads((lake / "lake.json").read_text())["catalog_url"] is None
    assert (lake / "catalog.db").is_file()


def test_init_is_idempotent_and_keeps_the_data(notes: str, cli: Cli) -> None:
    result = cli("init")
    assert result.stdout.startswith(
        f"Reinitialized existing curata lake in {Path.cwd() / '.curata'}"
    )
    assert cli("dataset", "show", notes, "--json").json()["rows"] == 4


def test_init_path_makes_the_lake_in_that_folder(tmp_path: Path, cli: Cli) -> None:
    cli("init", str(tmp_path / "elsewhere"))
    assert (tmp_path / "elsewhere" / ".curata" / "lake.json").is_file()


@pytest.mark.parametrize("how", ["--lake", "CURATA_LAKE"])
def test_init_without_path_uses_the_lake_given(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "team"
    lake_args: list[str] = []
    if how == "--lake":
        lake_args = ["--lake", str(target)]
    else:
        monkeypatch.setenv("CURATA_LAKE", str(target))
    cli(*lake_args, "init")
    cli(*lake_args, "dataset", "create", "docs")
    assert (target / ".curata" / "lake.json").is_file()
    assert not (tmp_path / ".curata").exists()
    assert [d["name"] for d in cli("--lake", str(target), "ls", "--json").json()] == ["docs"]


def test_commands_find_the_nearest_lake_from_a_sub_folder(
    project: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    cli("dataset", "create", "docs")
    deep = project / "src" / "deep"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert [d["name"] for d in cli("ls", "--json").json()] == ["docs"]


def test_lake_precedence_is_option_then_environment_then_nearest(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    cli("dataset", "create", "nearest")
    cli("init", str(tmp_path / "env"))
    cli("--lake", str(tmp_path / "env"), "dataset", "create", "from_env")
    cli("init", str(tmp_path / "opt"))
    cli("--lake", str(tmp_path / "opt" / ".curata"), "dataset", "create", "from_option")

    def names(*args: str) -> list[str]:
        return [d["name"] for d in cli(*args, "ls", "--json").json()]

    assert names() == ["nearest"]
    monkeypatch.setenv("CURATA_LAKE", str(tmp_path / "env"))
    assert names() == ["from_env"]
    assert names("--lake", str(tmp_path / "opt")) == ["from_option"]


def test_no_lake_is_bad_usage_with_a_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("ls", code=2)
    assert f"No curata lake here: no .curata/ folder in {tmp_path} or any parent." in result.error
    assert "curata init" in result.error
    assert "CURATA_LAKE" in result.error
    assert result.stdout == ""


def test_a_lake_path_that_is_not_a_lake_is_bad_usage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    monkeypatch.setenv("CURATA_LAKE", str(tmp_path))
    result = cli("ls", code=2)
    assert f"{tmp_path} is not a curata lake" in result.error


def test_author_comes_from_option_then_environment(
    project: Path, cli: Cli, files: DataFiles
) -> None:
    path = files.jsonl("a.jsonl", [{"id": 1}])
    cli("dataset", "import", "a", str(path))
    cli("dataset", "import", "a", str(files.jsonl("b.jsonl", [{"id": 2}])), "--author", "alice")
    log = cli("log", "a", "--json").json()
    assert [c["author"] for c in log] == ["alice", "test-author"]


def test_author_falls_back_to_git_then_the_os_user(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli, files: DataFiles
) -> None:
    monkeypatch.delenv("CURATA_AUTHOR")
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text("[user]\n\tname = Grace Git\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    cli("dataset", "import", "a", str(files.jsonl("a.jsonl", [{"id": 1}])))
    gitconfig.write_text("")
    monkeypatch.setenv("LOGNAME", "os-user")
    cli("dataset", "import", "a", str(files.jsonl("b.jsonl", [{"id": 2}])))
    assert [c["author"] for c in cli("log", "a", "--json").json()] == ["os-user", "Grace Git"]


def test_version_option(cli: Cli) -> None:
    from curata import __version__

    assert cli("--version").stdout == f"curata {__version__}\n"
