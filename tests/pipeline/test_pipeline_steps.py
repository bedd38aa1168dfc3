"""Steps: validated params, fingerprints, the built-in steps, and the registry with its
``curata.steps`` entry-point plug-ins."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest

import curata
from curata.errors import InvalidInput
from curata.pipeline import step as step_module
from curata.pipeline.builtin import parse_arrow_type
from curata.pipeline.run import run_pipeline
from curata.pipeline.spec import parse_pipeline
from curata.pipeline.sql_rowwise import compile_row_wise
from curata.pipeline.step import get_step, make_step, registered_steps

BUILTINS = {"sql", "python", "rename", "select", "cast"}


def test_the_registry_holds_the_builtin_steps() -> None:
    assert set(registered_steps()) >= BUILTINS


def test_unknown_step_names_the_registered_ones_and_the_nearest() -> None:
    with pytest.raises(InvalidInput) as err:
        get_step("renam")
    assert "Unknown step 'renam'" in err.value.message
    assert err.value.hint is not None
    assert "Did you mean rename?" in err.value.hint
    assert "Registered steps: " in err.value.hint
    assert all(
        step in err.value.hint
        for step in ("cast", "python", "rename", "select", "sql", "chunk", "embed")
    )


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("rename", {"columns": "text"}, "columns: Input should be a valid dictionary"),
        ("select", {"columns": []}, "columns: List should have at least 1 item"),
        ("sql", {}, "query: Field required"),
        ("sql", {"query": "SELECT * FROM batch", "mode": "x"}, "mode: Extra inputs"),
        ("cast", {"columns": {"n": "int65"}}, "Unknown Arrow type 'int65'"),
        ("python", {"function": "pipeline_steps"}, "is not a function path"),
    ],
)
def test_params_are_validated_and_the_error_names_the_field(
    name: str, params: dict[str, object], expected: str
) -> None:
    with pytest.raises(InvalidInput) as err:
        make_step(name, params)
    assert f"Invalid params for step {name!r}" in err.value.message
    assert expected in err.value.message


def test_fingerprint_is_equal_for_equal_configuration_and_changes_with_params() -> None:
    a = make_step("sql", {"query": "SELECT id FROM batch"})
    b = make_step("sql", {"query": "SELECT id FROM batch"}, id="other-id")
    c = make_step("sql", {"query": "SELECT id, text FROM batch"})
    assert a.fingerprint == b.fingerprint  # the id is a name in the pipeline, not behaviour
    assert a.fingerprint != c.fingerprint
    assert len(a.fingerprint) == 64

    shout = {"function": "pipeline_steps:shout", "kwargs": {"suffix": "!"}}
    base = make_step("python", shout).fingerprint
    assert make_step("python", shout).fingerprint == base
    assert make_step("python", {**shout, "kwargs": {"suffix": "?"}}).fingerprint != base
    assert make_step("python", {**shout, "version": "2"}).fingerprint != base
    assert make_step("python", {**shout, "function": "pipeline_steps:words"}).fingerprint != base


def test_editing_a_python_step_function_changes_its_fingerprint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "edited_step.py"
    module.write_text("def clean(batch):\n    return batch\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "edited_step", raising=False)
    params = {"function": "edited_step:clean"}
    before = make_step("python", params).fingerprint

    module.write_text("def clean(batch):\n    return batch.slice(0, 1)\n")
    importlib.reload(importlib.import_module("edited_step"))
    assert make_step("python", params).fingerprint != before


def test_a_python_step_that_returns_no_arrow_fails_clearly() -> None:
    step = make_step("python", {"function": "pipeline_steps:not_a_batch"}, id="bad-fn")
    with pytest.raises(InvalidInput, match="returned list, not a pyarrow RecordBatch or Table"):
        step.process(pa.table({"x": [1]}))


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        ("no_such_module_anywhere:fn", "Cannot import module 'no_such_module_anywhere'"),
        ("pipeline_steps:no_such_function", "has no attribute 'no_such_function'"),
        ("pipeline_steps:NOT_CALLABLE", "is not callable"),
    ],
)
def test_a_python_step_path_that_does_not_resolve_is_refused(function: str, expected: str) -> None:
    with pytest.raises(InvalidInput, match=expected):
        make_step("python", {"function": function})


def test_builtin_rename_select_cast() -> None:
    batch = pa.table({"id": ["1", "2"], "text": ["a", "b"], "extra": [True, False]})
    renamed = make_step("rename", {"columns": {"text": "body"}}).process(batch)
    assert renamed.column_names == ["id", "body", "extra"]
    selected = make_step("select", {"columns": ["text", "id"]}).process(batch)
    assert selected.column_names == ["text", "id"]
    cast = make_step("cast", {"columns": {"id": "int64"}}).process(batch)
    assert cast.schema.field("id").type == pa.int64()
    assert cast.column("id").to_pylist() == [1, 2]

    with pytest.raises(InvalidInput) as err:
        make_step("select", {"columns": ["nope"]}, id="pick").process(batch)
    assert "Step 'pick': no column(s) nope" in err.value.message
    assert err.value.hint == "Columns: id, text, extra."
    # A value that does not convert is the row's error (on_error applies); a cast no value
    # can make is the pipeline's.
    with pytest.raises(ValueError, match="Failed to parse string"):
        make_step("cast", {"columns": {"text": "int64"}}, id="to-int").process(batch)
    with pytest.raises(InvalidInput, match="Step 'to-list'"):
        make_step("cast", {"columns": {"extra": "list<string>"}}, id="to-list").process(batch)


def test_arrow_type_names() -> None:
    assert parse_arrow_type("timestamp[ms, tz=UTC]") == pa.timestamp("ms", tz="UTC")
    assert parse_arrow_type("list<string>") == pa.list_(pa.string())
    assert parse_arrow_type("decimal(10,2)") == pa.decimal128(10, 2)


@pytest.mark.parametrize(
    ("query", "row_wise"),
    [
        ("SELECT id, lower(text) AS text FROM batch WHERE lang = 'en'", True),
        ("SELECT * FROM batch", True),
        ("SELECT id, unnest(string_split(text, ' ')) AS word FROM batch", True),
        ("SELECT lang, count(*) AS n FROM batch GROUP BY lang", False),
        ("SELECT count(*) AS n FROM batch", False),
        ("SELECT * FROM batch ORDER BY id", False),
        ("SELECT * FROM batch LIMIT 3", False),
        ("SELECT DISTINCT lang FROM batch", False),
        ("SELECT id, row_number() OVER () AS n FROM batch", False),
        ("SELECT * FROM batch WHERE id IN (SELECT max(id) FROM batch)", False),
        ("WITH b AS (SELECT * FROM batch) SELECT * FROM b", False),
    ],
)
def test_sql_steps_know_whether_they_are_row_wise(query: str, row_wise: bool) -> None:
    assert make_step("sql", {"query": query}).is_row_wise is row_wise
    compiled = compile_row_wise(query)
    assert (compiled is not None) is row_wise
    if compiled is not None and "*" not in query:
        assert "_row" in compiled


def test_sql_step_takes_one_select() -> None:
    with pytest.raises(InvalidInput, match="exactly one SELECT"):
        make_step("sql", {"query": "DELETE FROM batch"})
    with pytest.raises(InvalidInput, match="does not parse"):
        make_step("sql", {"query": "SELEC id FROM batch"})


# -- plug-ins ---------------------------------------------------------------------------------

PLUGIN_MODULE = '''
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel

from curata.pipeline.step import Step


class ReverseParams(BaseModel):
    column: str


class ReverseStep(Step):
    """Reverse the text of one column."""

    name = "reverse"
    Params = ReverseParams

    def process(self, batch):
        i = batch.schema.get_field_index(self.params.column)
        return batch.set_column(i, self.params.column, pc.utf8_reverse(batch.column(i)))


class NotAStep:
    pass
'''


def _install_plugin(root: Path, entry_points: str) -> None:
    """A distribution ``curata-test-plugin`` with ``entry_points``, importable from ``root``."""
    (root / "curata_test_plugin.py").write_text(textwrap.dedent(PLUGIN_MODULE))
    info = root / "curata_test_plugin-1.0.dist-info"
    info.mkdir()
    metadata = "Metadata-Version: 2.1\nName: curata-test-plugin\nVersion: 1.0\n"
    (info / "METADATA").write_text(metadata)
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A registry that loads entry points again, from a folder on the path (returned)."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delitem(sys.modules, "curata_test_plugin", raising=False)
    monkeypatch.setattr(step_module, "_REGISTRY", dict(step_module._REGISTRY))
    monkeypatch.setattr(step_module, "_ENTRY_POINTS_LOADED", False)
    return root


def test_a_plugin_step_registered_by_entry_point_runs_in_a_pipeline(
    fresh_registry: Path, sqlite_lake: curata.Lake
) -> None:
    _install_plugin(fresh_registry, "[curata.steps]\nreverse = curata_test_plugin:ReverseStep\n")
    assert "reverse" in registered_steps()
    with pytest.raises(InvalidInput, match="column: Field required"):
        make_step("reverse", {})

    sqlite_lake.create_dataset("src").append(pa.table({"id": [1, 2], "text": ["abc", "xy"]}))
    spec = parse_pipeline(
        {
            "name": "plugin",
            "input": "src",
            "steps": [{"step": "reverse", "params": {"column": "text"}}],
            "output": "reversed",
        }
    )
    result = run_pipeline(sqlite_lake, spec)
    assert result.outputs == ["reversed@1"]
    assert sqlite_lake.ref("reversed").to_arrow().to_pylist() == [
        {"id": 1, "text": "cba"},
        {"id": 2, "text": "yx"},
    ]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("broken = curata_test_plugin:Missing", "(curata_test_plugin:Missing) failed to load"),
        ("odd = curata_test_plugin:NotAStep", "(curata_test_plugin:NotAStep) is not a Step"),
    ],
)
def test_a_broken_plugin_is_reported_by_name(
    fresh_registry: Path, entry: str, expected: str
) -> None:
    _install_plugin(fresh_registry, f"[curata.steps]\n{entry}\n")
    with pytest.raises(InvalidInput) as err:
        registered_steps()
    assert f"Step plug-in {entry.split(maxsplit=1)[0]!r} {expected}" in err.value.message


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            "SELECT * EXCLUDE (lang), upper(text) AS loud FROM batch WHERE id > 1",
            [{"id": 2, "text": "xy", "loud": "XY"}, {"id": 3, "text": "q", "loud": "Q"}],
        ),
        (
            "SELECT * EXCLUDE (batch.lang) FROM batch WHERE id <> 2",
            [{"id": 1, "text": "abc"}, {"id": 3, "text": "q"}],
        ),
        (
            "SELECT COLUMNS('.*') FROM batch WHERE lang = 'en'",
            [{"id": 1, "text": "abc", "lang": "en"}, {"id": 3, "text": "q", "lang": "en"}],
        ),
        (
            "SELECT COLUMNS('^(id|text)$') FROM batch WHERE lang = 'en'",
            [{"id": 1, "text": "abc"}, {"id": 3, "text": "q"}],
        ),
    ],
)
def test_sql_steps_with_star_variants_run_and_rerun_from_the_cache(
    sqlite_lake: curata.Lake, query: str, expected: list[dict[str, object]]
) -> None:
    source = pa.table({"id": [1, 2, 3], "text": ["abc", "xy", "q"], "lang": ["en", "de", "en"]})
    sqlite_lake.create_dataset("src").append(source)
    step = {"step": "sql", "params": {"query": query}}
    spec = parse_pipeline({"name": "stars", "input": "src", "steps": [step], "output": "picked"})
    assert make_step("sql", {"query": query}).is_row_wise
    first = run_pipeline(sqlite_lake, spec)
    assert first.outputs == ["picked@1"]
    assert sqlite_lake.ref("picked").to_arrow().to_pylist() == expected

    sqlite_lake.dataset("src").append(pa.table({"id": [4], "text": ["zz"], "lang": ["fr"]}))
    again = run_pipeline(sqlite_lake, spec)
    assert again.steps[0].cache_hits == 3
    assert sqlite_lake.ref("picked").to_arrow().to_pylist()[: len(expected)] == expected
