"""Every command explains itself: --help exits 0 and names each of its options."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Cli

COMMANDS = {
    "init": "PATH --catalog-url CURATA_CATALOG_URL",
    "dataset create": "NAME --kind --key --description --owner --tag",
    "dataset import": "NAME FILE --format --mode --key --kind --branch --message -m --author "
    "CURATA_AUTHOR --json",
    "dataset delete-rows": "NAME --where --branch --message --author --json",
    "dataset ls": "--search --json",
    "dataset show": "REF --json",
    "dataset head": "REF -n --json",
    "dataset log": "NAME --branch -n --json",
    "dataset diff": "REF_A REF_B --rows --limit --json",
    "dataset tag": "REF TAG --author",
    "dataset branch create": "NAME BRANCH --from --author",
    "dataset branch ls": "NAME --json",
    "dataset revert": "REF --branch --message --author --json",
    "dataset export": "REF PATH --format hf --overwrite",
    "dataset set": "NAME --owner --description --tag --classify --json",
    "query": "SQL --json",
    "gc": "--keep-versions --dry-run --json",
    "demo": "--dir",
    "ls": "--search --json",
    "log": "NAME --json",
    "diff": "REF_A REF_B --rows --json",
    "dataset": "create import delete-rows ls show head log diff tag branch revert export set",
    "dataset branch": "create ls",
    "": "--lake CURATA_LAKE --version init dataset query gc demo ls log diff",
}


@pytest.mark.parametrize("command", list(COMMANDS), ids=lambda c: c or "curata")
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help(command: str, flag: str, cli: Cli) -> None:
    out = cli(*command.split(), flag).stdout
    assert out.startswith(f"Usage: curata {command}".replace("  ", " ").rstrip())
    for word in COMMANDS[command].split():
        # A whole word: "-n" must not be found inside "--no-x" nor "--json".
        assert re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", out), (
            f"{word} missing from `curata {command} --help`"
        )


def test_no_arguments_prints_help(cli: Cli) -> None:
    result = cli(code=2)
    assert "Usage: curata" in result.stdout + result.stderr


def test_unknown_command_and_option_are_bad_usage(cli: Cli) -> None:
    assert "No such command 'nosuch'" in cli("nosuch", code=2).error
    assert "No such option: --nosuch" in cli("ls", "--nosuch", code=2).error
