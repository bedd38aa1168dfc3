"""Reading the text files users write for curata: what each kind of bad file is told."""

from __future__ import annotations

from pathlib import Path

import pytest

from curata.errors import InvalidInput, NotFound
from curata.textfiles import read_text_file


def test_a_utf8_file_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "groups.yaml"
    path.write_text("groups:\n  old: [Großeltern, pensioner]\n", encoding="utf-8")
    assert read_text_file(path, "term groups") == "groups:\n  old: [Großeltern, pensioner]\n"


def test_a_missing_file_is_not_found_with_the_example(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"Rules file .*gone\.dqdl does not exist") as err:
        read_text_file(tmp_path / "gone.dqdl", "rules", example="Rules = [ RowCount > 0 ]")
    assert err.value.hint == "Rules = [ RowCount > 0 ]"


def test_a_folder_is_refused_as_a_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="is a folder, not a pipeline file"):
        read_text_file(tmp_path, "pipeline")


def test_text_in_another_encoding_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "clean.yaml"
    path.write_bytes("name: clean\n# Prüfung\n".encode("latin-1"))
    with pytest.raises(InvalidInput, match=r"clean\.yaml:2: not UTF-8 text \(byte 0xfc\)") as err:
        read_text_file(path, "pipeline")
    assert err.value.hint == "Save the pipeline file as UTF-8."
