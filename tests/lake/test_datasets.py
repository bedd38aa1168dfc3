"""Lakes and datasets: finding the lake, creating datasets, and what the catalog says about them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

import curata
from curata.lake import KINDS

# -- finding the lake -----------------------------------------------------------------------------


def _lake_with(path: Path, dataset: str) -> str:
    """A lake at ``path/.curata`` holding one dataset; returns the lake folder."""
    with curata.init(str(path)) as lake:
        lake.create_dataset(dataset)
        return lake.uri


def _names(lake: curata.Lake) -> list[str]:
    with lake:
        return [d.name for d in lake.datasets()]


def test_open_finds_the_nearest_lake_walking_up_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outer = _lake_with(tmp_path, "outer_ds")
    inner = _lake_with(tmp_path / "project", "inner_ds")
    deep = tmp_path / "project" / "src" / "deep"
    deep.mkdir(parents=True)

    monkeypatch.chdir(deep)
    lake = curata.open()
    assert lake.uri == inner
    assert _names(lake) == ["inner_ds"]

    monkeypatch.chdir(tmp_path / "project" / "..")
    assert _names(curata.open()) == ["outer_ds"]
    assert outer == str((tmp_path / ".curata").resolve())


def test_curata_lake_overrides_discovery_and_an_explicit_path_overrides_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = _lake_with(tmp_path / "here", "here_ds")
    env = _lake_with(tmp_path / "env", "env_ds")
    explicit = _lake_with(tmp_path / "explicit", "explicit_ds")
    monkeypatch.chdir(tmp_path / "here")
    assert _names(curata.open()) == ["here_ds"]

    monkeypatch.setenv("CURATA_LAKE", env)
    assert _names(curata.open()) == ["env_ds"]
    assert _names(curata.open(explicit)) == ["explicit_ds"]
    # A folder holding a .curata lake is as good as the lake folder itself.
    assert _names(curata.open(str(tmp_path / "explicit"))) == ["explicit_ds"]
    assert here != env != explicit


def test_no_lake_anywhere_says_how_to_create_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(curata.NotFound) as err:
        curata.open()
    assert "No curata lake here" in err.value.message
    assert err.value.hint is not None and "`curata init`" in err.value.hint
    assert err.value.exit_code == 2


def test_a_path_that_is_not_a_lake_says_how_to_create_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(curata.NotFound) as err:
        curata.open(str(tmp_path / "plain"))
    assert err.value.hint is not None and "`curata init`" in err.value.hint
    monkeypatch.setenv("CURATA_LAKE", str(tmp_path / "plain"))
    with pytest.raises(curata.NotFound, match="is not a curata lake"):
        curata.open()


def test_init_is_idempotent_and_keeps_the_data(tmp_path: Path) -> None:
    with curata.init(str(tmp_path)) as lake:
        lake.create_dataset("t").append(pa.table({"x": [1, 2]}))
    with curata.init(str(tmp_path)) as again:
        assert again.dataset("t").head.count_rows() == 2


def test_a_lake_on_postgresql_remembers_its_catalog(tmp_path: Path, pg_catalog_url: str) -> None:
    with curata.init(str(tmp_path), catalog_url=pg_catalog_url) as lake:
        lake.create_dataset("t").append(pa.table({"x": [1]}))
    assert not (tmp_path / ".curata" / "catalog.db").exists()
    with curata.open(str(tmp_path)) as lake:
        assert lake.catalog.engine.dialect.name == "postgresql"
        assert lake.ref("t@1").count_rows() == 1


# -- creating datasets ----------------------------------------------------------------------------


def test_create_dataset_of_every_kind(lake: curata.Lake) -> None:
    for kind in KINDS:
        ds = lake.create_dataset(f"ds_{kind}", kind=kind)
        assert ds.info().kind == kind
    infos = lake.datasets()
    assert [i.name for i in infos] == sorted(f"ds_{k}" for k in KINDS)
    assert all(i.version is None and i.rows == 0 and i.columns == [] for i in infos)


def test_create_dataset_records_what_describes_it(lake: curata.Lake) -> None:
    before = datetime.now(UTC)
    lake.create_dataset(
        "docs",
        kind="documents",
        key="doc_id",
        description="Support articles",
        owner="ana",
        tags=["rag", "support", "rag"],
    )
    info = lake.dataset("docs").info()
    assert (info.kind, info.key, info.description, info.owner) == (
        "documents",
        "doc_id",
        "Support articles",
        "ana",
    )
    assert info.tags == ["rag", "support"]
    assert info.created_by == "test-author"
    created = info.created_at.replace(tzinfo=UTC)
    assert before - timedelta(seconds=1) <= created <= datetime.now(UTC)
    assert info.branches == {"main": None}
    assert info.to_dict()["created_at"].endswith("Z")


def test_a_bad_kind_is_refused_with_the_list_of_kinds(lake: curata.Lake) -> None:
    with pytest.raises(curata.InvalidInput) as err:
        lake.create_dataset("t", kind="tabular")
    assert err.value.message == "Unknown dataset kind 'tabular'."
    assert err.value.hint == f"Kinds: {', '.join(KINDS)}."
    assert not lake.has_dataset("t")


def test_a_bad_key_column_name_is_refused(lake: curata.Lake) -> None:
    with pytest.raises(curata.InvalidInput, match="Invalid key column"):
        lake.create_dataset("t", key="my key")
    assert not lake.has_dataset("t")


def test_a_taken_name_is_refused_unless_exist_ok(lake: curata.Lake) -> None:
    original = lake.create_dataset("tickets", kind="logs", key="id")
    original.append(pa.table({"id": [1]}))
    with pytest.raises(curata.AlreadyExists, match="'tickets' exists already"):
        lake.create_dataset("tickets")

    again = lake.create_dataset("tickets", kind="records", exist_ok=True)
    assert again.name == "tickets"
    info = again.info()
    assert (info.kind, info.key, info.version) == ("logs", "id", 1)
    assert [d.name for d in lake.datasets()] == ["tickets"]


def test_the_next_dataset_after_a_refused_duplicate_is_created(lake: curata.Lake) -> None:
    lake.create_dataset("a")
    with pytest.raises(curata.AlreadyExists):
        lake.create_dataset("a")
    lake.create_dataset("b").append(pa.table({"x": [1]}))
    assert lake.ref("b").count_rows() == 1


def test_dataset_lookup(lake: curata.Lake) -> None:
    lake.create_dataset("tickets")
    assert lake.has_dataset("tickets")
    assert not lake.has_dataset("ticket")
    assert repr(lake.dataset("tickets")) == "<Dataset tickets>"
    with pytest.raises(curata.NotFound, match="Did you mean: tickets"):
        lake.dataset("ticket")


def test_a_new_dataset_has_no_snapshot_yet(lake: curata.Lake) -> None:
    ds = lake.create_dataset("empty")
    with pytest.raises(curata.NotFound) as err:
        _ = ds.head
    assert err.value.message == "Dataset 'empty' has no versions yet."
    assert ds.log() == []


def test_datasets_search_looks_at_names_tags_descriptions_owners_and_columns(
    lake: curata.Lake,
) -> None:
    lake.create_dataset("tickets", tags=["support"]).append(pa.table({"ticket_id": [1]}))
    lake.create_dataset("chunks", description="Chunks of the Handbook")
    lake.create_dataset("labels", owner="Labeling-Team")
    lake.create_dataset("other")

    def found(text: str) -> list[str]:
        return [d.name for d in lake.datasets(search=text)]

    assert found("SUPPORT") == ["tickets"]
    assert found("handbook") == ["chunks"]
    assert found("labeling") == ["labels"]
    assert found("ticket_id") == ["tickets"]
    assert found("nothing-like-it") == []
    assert len(found("")) == 4


def test_info_reports_the_main_head(lake: curata.Lake) -> None:
    ds = lake.create_dataset("t", key="id")
    ds.append(pa.table({"id": [1, 2, 3], "text": ["a", "b", "c"]}))
    ds.delete("id = 1")
    info = ds.info()
    assert info.version == 2
    assert info.rows == 2
    assert info.columns == [{"name": "id", "type": "int64"}, {"name": "text", "type": "string"}]


def test_set_changes_metadata_and_refuses_unknown_columns(lake: curata.Lake) -> None:
    ds = lake.create_dataset("users", owner="ana", tags=["a"])
    ds.append(pa.table({"email": ["x@example.com"], "name": ["X"]}))
    info = ds.set(owner="bob", description="People", tags=["pii", " ", "crm"])
    assert (info.owner, info.description, info.tags) == ("bob", "People", ["crm", "pii"])

    ds.set(classifications={"email": "pii:email", "name": "pii:name"})
    assert ds.set(classifications={"name": ""}).classifications == {"email": "pii:email"}
    with pytest.raises(curata.InvalidInput, match="no column"):
        ds.set(classifications={"phone": "pii:phone"})
    assert ds.info().classifications == {"email": "pii:email"}
