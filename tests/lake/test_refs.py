"""References (``name``, ``name@7``, ``name@v7``, ``name@TAG``, ``name@branch:NAME``): one parser,
and errors that name what exists when a reference points at nothing."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

import curata
from curata.lake.refs import MAIN, Ref, parse_ref


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tickets", Ref("tickets", branch=MAIN)),
        ("tickets@7", Ref("tickets", version=7)),
        ("tickets@v7", Ref("tickets", version=7)),
        ("tickets@0", Ref("tickets", version=0)),
        ("tickets@prod", Ref("tickets", tag="prod")),
        ("tickets@v7-rc", Ref("tickets", tag="v7-rc")),
        ("tickets@2024.05", Ref("tickets", tag="2024.05")),
        ("tickets@branch:exp", Ref("tickets", branch="exp")),
        ("tickets@branch:feat/dedup", Ref("tickets", branch="feat/dedup")),
        ("kb_chunks.v2-Model", Ref("kb_chunks.v2-Model", branch=MAIN)),
        ("  tickets@3 ", Ref("tickets", version=3)),
    ],
)
def test_parse_ref_reads_every_form(text: str, expected: Ref) -> None:
    assert parse_ref(text) == expected


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("tickets", "tickets"),
        ("tickets@v7", "tickets@7"),
        ("tickets@prod", "tickets@prod"),
        ("tickets@branch:exp", "tickets@branch:exp"),
        ("tickets@branch:main", "tickets"),
    ],
)
def test_a_parsed_ref_prints_in_its_canonical_form(text: str, shown: str) -> None:
    assert str(parse_ref(text)) == shown
    assert parse_ref(shown) == parse_ref(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "@",
        "@7",
        "tickets@",
        "a/b",
        "a\\b",
        "../tickets",
        "..",
        "a..b",
        "my tickets",
        "tickets@x y",
        "tickets@@7",
        "tickets@a@b",
        "tickets@branch:",
        "tickets@branch:12",
        "tickets@branch:v12",
        "tickets@branch:../x",
        "tickets@../prod",
        "ti:ckets",
        "_tickets",
        "-tickets",
        "x" * 129,
    ],
)
def test_parse_ref_refuses_what_is_not_a_reference(text: str) -> None:
    with pytest.raises(curata.InvalidInput) as err:
        parse_ref(text)
    assert err.value.hint  # every refusal says what a valid name looks like


@pytest.mark.parametrize("name", ["a/b", "../escape", "..", "a..b", "with space", "", "a@b", "a:b"])
def test_invalid_dataset_names_are_refused_and_nothing_is_created(
    sqlite_lake: curata.Lake, name: str
) -> None:
    with pytest.raises(curata.InvalidInput, match="Invalid dataset name"):
        sqlite_lake.create_dataset(name)
    assert sqlite_lake.datasets() == []
    assert list((Path(sqlite_lake.uri) / "data").iterdir()) == []


@pytest.fixture
def tickets(lake: curata.Lake) -> curata.Dataset:
    """``tickets`` with versions 1 and 2, tag ``prod`` on 1, branch ``exp`` at 1."""
    ds = lake.create_dataset("tickets", key="id")
    ds.append(pa.table({"id": [1, 2], "answer": ["a", "b"]}))
    ds.append(pa.table({"id": [3], "answer": ["c"]}))
    ds.tag("prod", 1)
    ds.branch("exp", 1)
    return ds


def test_lake_ref_resolves_every_form(lake: curata.Lake, tickets: curata.Dataset) -> None:
    forms = {
        "tickets": 2,
        "tickets@1": 1,
        "tickets@v2": 2,
        "tickets@prod": 1,
        "tickets@branch:exp": 1,
        "tickets@exp": 1,  # a branch name after @ works when no tag has it
        "tickets@branch:main": 2,
    }
    for text, version in forms.items():
        snap = lake.ref(text)
        assert snap.version == version, text
        assert snap.count_rows() == {1: 2, 2: 3}[version], text


def test_dataset_at_takes_the_part_after_the_at_sign(tickets: curata.Dataset) -> None:
    forms: dict[str | int | None, int] = {
        None: 2,
        1: 1,
        "1": 1,
        "v1": 1,
        "prod": 1,
        "branch:exp": 1,
        "tickets@prod": 1,
    }
    for ref, version in forms.items():
        assert tickets.at(ref).version == version, ref
    assert tickets.head.version == 2


def test_dataset_at_refuses_a_reference_to_another_dataset(tickets: curata.Dataset) -> None:
    with pytest.raises(curata.InvalidInput, match="names dataset 'other'"):
        tickets.at("other@1")


def test_an_unknown_dataset_lists_the_nearest_names(
    lake: curata.Lake, tickets: curata.Dataset
) -> None:
    lake.create_dataset("ticket_labels")
    lake.create_dataset("zzz")
    with pytest.raises(curata.NotFound) as err:
        lake.ref("tickest@1")
    assert err.value.message == "No dataset named 'tickest'."
    assert err.value.hint is not None
    assert err.value.hint.startswith("Did you mean: tickets")
    assert "zzz" not in err.value.hint
    assert "tickets" in str(err.value)


def test_an_unknown_dataset_without_a_close_name_lists_the_existing_ones(
    lake: curata.Lake, tickets: curata.Dataset
) -> None:
    lake.create_dataset("labels")
    with pytest.raises(curata.NotFound) as err:
        lake.dataset("qqqqqqq")
    assert err.value.hint == "Existing datasets: labels, tickets"


def test_an_unknown_tag_lists_the_nearest_tags_and_branches(
    lake: curata.Lake, tickets: curata.Dataset
) -> None:
    with pytest.raises(curata.NotFound) as err:
        lake.ref("tickets@prdo")
    assert err.value.message == "Dataset 'tickets' has no tag or branch 'prdo'."
    assert err.value.hint == "Did you mean: prod?"


def test_an_unknown_branch_lists_the_nearest_branches(
    lake: curata.Lake, tickets: curata.Dataset
) -> None:
    with pytest.raises(curata.NotFound) as err:
        lake.ref("tickets@branch:exq")
    assert err.value.message == "Dataset 'tickets' has no branch 'exq'."
    assert err.value.hint == "Did you mean: exp?"


def test_an_unknown_version_says_which_versions_exist(
    lake: curata.Lake, tickets: curata.Dataset
) -> None:
    with pytest.raises(curata.NotFound) as err:
        lake.ref("tickets@9")
    assert err.value.message == "Dataset 'tickets' has no version 9."
    assert err.value.hint == "Its versions are 1 to 2."


def test_a_dataset_without_versions_says_to_write_first(lake: curata.Lake) -> None:
    lake.create_dataset("empty")
    with pytest.raises(curata.NotFound, match="has no versions yet"):
        lake.ref("empty")
    with pytest.raises(curata.NotFound, match="no version 1"):
        lake.ref("empty@1")
