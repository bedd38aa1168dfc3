"""Pipeline files: what a valid one means, and errors that name the file, line and field,
before any work starts."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import curata
from curata.errors import InvalidInput, NotFound
from curata.pipeline.run import run_pipeline
from curata.pipeline.spec import DatasetInput, FilesInput, load_pipeline

if TYPE_CHECKING:
    from conftest import CreateTickets, PipelineFile


def test_a_pipeline_file_with_short_forms(pipeline_file: PipelineFile) -> None:
    path = pipeline_file(
        """
        name: clean
        input: tickets@prod
        steps:
          - step: sql
            params: {query: "SELECT id FROM batch"}
          - step: sql
            params: {query: "SELECT id FROM batch WHERE id > 1"}
          - step: select
            id: ids
            params: {columns: [id]}
        output: clean_tickets
        """
    )
    loaded = load_pipeline(path)
    spec = loaded.spec
    assert loaded.path == str(path)
    assert loaded.digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert spec.input == DatasetInput(dataset="tickets@prod")
    assert [s.id for s in spec.steps] == ["sql", "sql-2", "ids"]
    assert [s.on_error for s in spec.steps] == ["fail"] * 3
    assert [(o.dataset, o.mode, o.after) for o in spec.outputs] == [
        ("clean_tickets", "overwrite", None)
    ]
    assert spec.quarantine_dataset == "clean_tickets_quarantine"


def test_files_input(pipeline_file: PipelineFile) -> None:
    path = pipeline_file(
        """
        name: import
        input: {files: "data/*.jsonl"}
        output: raw
        """
    )
    assert load_pipeline(path).spec.input == FilesInput(files="data/*.jsonl", format=None)


def _error(path: Path) -> str:
    with pytest.raises(InvalidInput) as err:
        load_pipeline(path)
    return str(err.value)


def test_a_wrong_param_names_file_line_and_field(pipeline_file: PipelineFile) -> None:
    path = pipeline_file(
        """
        name: clean
        input: tickets
        steps:
          - step: sql
            params: {query: "SELECT * FROM batch"}
          - step: rename
            params:
              columns: [text, body]
        output: clean
        """
    )
    assert _error(path).startswith(
        f"{path}:8: steps[1].params.columns: Input should be a valid dictionary"
    )


def test_an_unknown_field_names_its_line(pipeline_file: PipelineFile) -> None:
    path = pipeline_file(
        """
        name: clean
        input: tickets
        steps:
          - step: sql
            on_eror: quarantine
            params: {query: "SELECT * FROM batch"}
        output: clean
        """
    )
    assert _error(path).startswith(f"{path}:5: steps[0].on_eror: Extra inputs are not permitted")


def test_a_bad_value_names_its_line(pipeline_file: PipelineFile) -> None:
    path = pipeline_file(
        """
        name: clean
        input: tickets
        steps:
          - step: sql
            params: {query: "SELECT * FROM batch"}
            on_error: retry
        output: clean
        """
    )
    message = _error(path)
    assert message.startswith(f"{path}:6: steps[0].on_error: Input should be 'fail'")
    assert "'quarantine' or 'warn'" in message


def test_an_unknown_step_names_its_line_and_the_registered_steps(
    pipeline_file: PipelineFile,
) -> None:
    path = pipeline_file(
        """
        name: clean
        input: tickets
        steps:
          - step: select
            params: {columns: [id]}
          - step: sqll
            params: {query: "SELECT * FROM batch"}
        output: clean
        """
    )
    message = _error(path)
    assert message.startswith(f"{path}:6: Unknown step 'sqll'.")
    assert "Did you mean sql?" in message
    assert "Registered steps: " in message
    assert all(
        step in message for step in ("cast", "python", "rename", "select", "sql", "chunk", "embed")
    )


def test_a_python_step_that_does_not_import_is_refused_before_any_work(
    pipeline_file: PipelineFile, lake: curata.Lake, tickets: CreateTickets
) -> None:
    tickets(lake, 10)
    path = pipeline_file(
        """
        name: clean
        input: src
        steps:
          - step: sql
            params: {query: "SELECT * FROM batch"}
          - step: python
            params:
              function: "ticket_cleaning.steps:normalise"
        output: clean
        """
    )
    message = _error(path)
    assert message.startswith(
        f"{path}:8: steps[1].params.function: Value error, Cannot import module "
        "'ticket_cleaning.steps' for 'ticket_cleaning.steps:normalise'"
    )
    with pytest.raises(InvalidInput):
        run_pipeline(lake, path)
    # Nothing was started: no run recorded, no dataset created, no cache written.
    assert lake.runs() == []
    assert [d.name for d in lake.datasets()] == ["src"]
    cache = Path(lake.uri) / "cache"
    assert not cache.exists() or not any(cache.iterdir())


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        ("name: x\ninput: t\n", 1, "pipeline: Value error, a pipeline needs at least one output"),
        (
            "name: x\ninput: t\noutputs:\n  - dataset: a\n    after: nope\n",
            1,
            "pipeline: Value error, output 'a': no step with id 'nope'",
        ),
        (
            "name: x\ninput: t\noutputs:\n  - {dataset: a, mode: upsert}\n",
            1,
            "pipeline: Value error, output 'a': mode upsert needs a key",
        ),
        ("name: x\ninput: t\noutput: bad/name\n", 3, "outputs[0].dataset: Value error"),
        (
            "name: x\ninput: t\noutputs:\n  - {dataset: a}\n  - {dataset: a, after: s}\n"
            "steps:\n  - {step: sql, id: s, params: {query: SELECT 1 FROM batch}}\n",
            1,
            "pipeline: Value error, output 'a' is listed twice",
        ),
        (
            "name: x\ninput: t\noutput: a\nsteps:\n"
            "  - {step: select, id: s, params: {columns: [a]}}\n"
            "  - {step: select, id: s, params: {columns: [a]}}\n",
            1,
            "pipeline: Value error, step id 's' is used twice",
        ),
        (
            "name: x\ninput: t\noutput: a\nquarantine: a\n",
            1,
            "pipeline: Value error, the quarantine dataset 'a' is also an output",
        ),
        (
            "name: x\ninput: t\noutputs:\n  - {dataset: a}\n  - {dataset: a_quarantine}\n",
            1,
            "the quarantine dataset 'a_quarantine' is also an output; name another with",
        ),
        (
            "name: x\ninput: t\noutput:\n  dataset: a\n  kind: tabel\n",
            5,
            "outputs[0].kind: Value error, Unknown dataset kind 'tabel'. Kinds: documents,",
        ),
        (
            "name: x\ninput: t\noutput:\n  dataset: a\n  key: 'ticket id'\n",
            5,
            "outputs[0].key: Value error, Invalid key column",
        ),
        ("name: x\ninput: 't@'\noutput: a\n", 2, "input.dataset: Value error, Reference 't@'"),
        ("name: x\ninput: {files: 3}\noutput: a\n", 2, "input.files: Input should be a valid str"),
        (
            "name: x\ninput: t\noutput: a\ngates:\n  - {name: g, where: 'x', after: nope}\n",
            1,
            "gate 'g': no step with id 'nope'",
        ),
    ],
)
def test_inconsistent_pipelines_are_refused(
    pipeline_file: PipelineFile, text: str, line: int, expected: str
) -> None:
    path = pipeline_file(text)
    message = _error(path)
    assert message.startswith(f"{path}:{line}: "), message
    assert expected in message


def test_yaml_syntax_errors_name_line_and_column(pipeline_file: PipelineFile) -> None:
    path = pipeline_file("name: x\ninput: t\nsteps:\n  - step: sql\n   params: {query: x}\n")
    assert _error(path).startswith(f"{path}:5:")
    path = pipeline_file("- just\n- a list\n")
    assert "a pipeline file is a mapping" in _error(path)


def test_a_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        load_pipeline(tmp_path / "nope.yaml")


def test_a_file_that_is_not_utf8_names_its_line(pipeline_file: PipelineFile) -> None:
    path = pipeline_file("name: x\ninput: t\n")
    path.write_bytes(b"name: x\ninput: t\ndescription: caf\xe9 tickets\noutput: a\n")  # Latin-1
    message = _error(path)
    assert message.startswith(f"{path}:3: not UTF-8 text"), message
