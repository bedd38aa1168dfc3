"""Branches (writable lines of versions) and tags (movable names for one version)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

import curata


def _ids(snapshot: curata.Snapshot) -> list[Any]:
    return sorted(snapshot.to_arrow().column("id").to_pylist())


@pytest.fixture
def tickets(lake: curata.Lake) -> curata.Dataset:
    """Main: v1 ids 1-3, v2 adds 4."""
    ds = lake.create_dataset("tickets", key="id")
    ds.append(pa.table({"id": [1, 2, 3], "answer": ["a", "b", "c"]}))
    ds.append(pa.table({"id": [4], "answer": ["d"]}))
    return ds


# -- branches -------------------------------------------------------------------------------------


def test_a_branch_takes_writes_and_main_is_unaffected(
    lake: curata.Lake, tickets: curata.Dataset
) -> None:
    assert tickets.branch("fix", 1) == 1
    assert tickets.branches() == {"fix": 1, "main": 2}

    c3 = tickets.upsert(pa.table({"id": [2, 10], "answer": ["B", "j"]}), branch="fix")
    c4 = tickets.delete("id = 1", branch="fix")
    assert c3 is not None and c4 is not None
    assert (c3.version, c3.branch, c3.parent, c3.rows) == (3, "fix", 1, 4)
    assert (c4.version, c4.branch, c4.parent, c4.rows) == (4, "fix", 3, 3)

    assert _ids(tickets.at("branch:fix")) == [2, 3, 10]
    assert _ids(lake.ref("tickets@branch:fix")) == [2, 3, 10]
    assert _ids(tickets.head) == [1, 2, 3, 4]
    assert tickets.head.version == 2

    # Main moves on from its own head, not from the branch's Lance versions.
    c5 = tickets.append(pa.table({"id": [5], "answer": ["e"]}))
    assert c5 is not None and (c5.version, c5.branch, c5.parent, c5.rows) == (5, "main", 2, 5)
    assert _ids(tickets.head) == [1, 2, 3, 4, 5]
    rows = sorted(tickets.head.to_arrow().to_pylist(), key=lambda r: r["id"])
    assert rows[1] == {"id": 2, "answer": "b"}  # the branch's upsert stayed on the branch
    # And the branch from its own.
    c6 = tickets.append(pa.table({"id": [6], "answer": ["f"]}), branch="fix")
    assert c6 is not None and c6.parent == 4
    assert _ids(tickets.at("branch:fix")) == [2, 3, 6, 10]
    assert tickets.branches() == {"fix": 6, "main": 5}


def test_log_of_a_branch_follows_its_chain_of_parents(tickets: curata.Dataset) -> None:
    tickets.branch("exp", 1)
    tickets.append(pa.table({"id": [7], "answer": ["g"]}), branch="exp")  # v3
    tickets.append(pa.table({"id": [5], "answer": ["e"]}))  # v4 on main
    tickets.append(pa.table({"id": [8], "answer": ["h"]}), branch="exp")  # v5

    assert [c.version for c in tickets.log()] == [5, 4, 3, 2, 1]
    assert [c.version for c in tickets.log(branch="exp")] == [5, 3, 1]
    assert [c.version for c in tickets.log(branch="main")] == [4, 2, 1]
    assert [c.branch for c in tickets.log(branch="exp")] == ["exp", "exp", "main"]


def test_a_branch_from_a_tag_or_the_head(tickets: curata.Dataset) -> None:
    tickets.tag("prod", 1)
    assert tickets.branch("hotfix", "prod") == 1
    assert tickets.branch("next") == 2
    assert tickets.branch("again", "branch:next") == 2


def test_revert_on_a_branch(tickets: curata.Dataset) -> None:
    tickets.branch("exp")
    tickets.delete("id > 1", branch="exp")
    commit = tickets.revert(1, branch="exp")
    assert commit is not None and (commit.branch, commit.rows) == ("exp", 3)
    assert _ids(tickets.at("branch:exp")) == [1, 2, 3]
    assert _ids(tickets.head) == [1, 2, 3, 4]


def test_a_write_to_a_branch_that_does_not_exist_is_refused(tickets: curata.Dataset) -> None:
    tickets.branch("exp")
    with pytest.raises(curata.NotFound) as err:
        tickets.append(pa.table({"id": [9], "answer": ["i"]}), branch="epx")
    assert err.value.hint == "Did you mean: exp?"
    assert [c.version for c in tickets.log()] == [2, 1]


def test_branch_names_are_checked(tickets: curata.Dataset) -> None:
    tickets.branch("exp")
    with pytest.raises(curata.AlreadyExists, match="already has a branch 'exp'"):
        tickets.branch("exp", 1)
    with pytest.raises(curata.AlreadyExists):
        tickets.branch("main")
    for bad in ("", "12", "a b", "../x", "x@y"):
        with pytest.raises(curata.InvalidInput):
            tickets.branch(bad)
    assert tickets.branches() == {"exp": 2, "main": 2}


def test_a_dataset_without_versions_cannot_branch(lake: curata.Lake) -> None:
    ds = lake.create_dataset("empty")
    with pytest.raises(curata.InvalidInput, match="no versions yet"):
        ds.branch("exp")


def test_a_branch_from_an_unknown_version_is_not_found(tickets: curata.Dataset) -> None:
    with pytest.raises(curata.NotFound, match="no version 9"):
        tickets.branch("exp", 9)
    assert "exp" not in tickets.branches()


def test_log_of_an_unknown_branch_is_not_found(tickets: curata.Dataset) -> None:
    with pytest.raises(curata.NotFound, match="no branch 'nope'"):
        tickets.log(branch="nope")


# -- tags -----------------------------------------------------------------------------------------


def test_a_tag_names_a_version_and_moves_atomically(
    lake: curata.Lake, tickets: curata.Dataset
) -> None:
    assert tickets.tag("prod", 1) == 1
    assert lake.ref("tickets@prod").count_rows() == 3
    assert tickets.tags() == {"prod": 1}

    assert tickets.tag("prod") == 2  # moved to the head
    assert lake.ref("tickets@prod").count_rows() == 4
    assert tickets.tags() == {"prod": 2}
    assert [c.tags for c in tickets.log()] == [["prod"], []]
    assert tickets.info().version_tags == {"prod": 2}


def test_several_tags_on_one_version(tickets: curata.Dataset) -> None:
    tickets.tag("prod", 2)
    tickets.tag("eval-2024", "v2")
    tickets.tag("release/1.0", "prod")
    assert tickets.log()[0].tags == ["eval-2024", "prod", "release/1.0"]
    assert tickets.at("release/1.0").version == 2


def test_untag_removes_the_name_and_keeps_the_version(
    lake: curata.Lake, tickets: curata.Dataset
) -> None:
    tickets.tag("prod", 1)
    tickets.untag("prod")
    assert tickets.tags() == {}
    with pytest.raises(curata.NotFound):
        lake.ref("tickets@prod")
    assert lake.ref("tickets@1").count_rows() == 3
    with pytest.raises(curata.NotFound, match="no tag 'prod'"):
        tickets.untag("prod")


def test_tags_and_branches_cannot_share_a_name(lake: curata.Lake, tickets: curata.Dataset) -> None:
    tickets.branch("exp", 1)
    tickets.tag("prod", 2)
    with pytest.raises(curata.AlreadyExists, match="has a branch named 'exp'"):
        tickets.tag("exp", 2)
    with pytest.raises(curata.AlreadyExists, match="has a tag named 'prod'"):
        tickets.branch("prod", 1)
    assert tickets.tags() == {"prod": 2}
    assert tickets.branches() == {"exp": 1, "main": 2}
    assert lake.ref("tickets@exp").version == 1
    assert lake.ref("tickets@prod").version == 2


def test_tag_names_are_checked(tickets: curata.Dataset) -> None:
    for bad in ("", "7", "a b", "../x", "x@y", "-x"):
        with pytest.raises(curata.InvalidInput):
            tickets.tag(bad, 1)
    assert tickets.tags() == {}


def test_a_tag_or_branch_cannot_look_like_a_version(
    lake: curata.Lake, tickets: curata.Dataset
) -> None:
    # "tickets@v2" reads version 2: a tag "v2" on version 1 could never be read back.
    with pytest.raises(curata.InvalidInput, match="not a version number"):
        tickets.tag("v2", 1)
    with pytest.raises(curata.InvalidInput, match="not a version number"):
        tickets.branch("v1", 2)
    assert tickets.tags() == {}
    assert lake.ref("tickets@v2").version == 2
    tickets.tag("v2.0", 1)
    tickets.tag("v", 1)
    assert lake.ref("tickets@v2.0").version == 1
    assert lake.ref("tickets@v").version == 1


def test_tagging_an_unknown_version_or_an_empty_dataset_fails(lake: curata.Lake) -> None:
    ds = lake.create_dataset("empty")
    with pytest.raises(curata.InvalidInput, match="no versions yet"):
        ds.tag("prod")
    ds.append(pa.table({"x": [1]}))
    with pytest.raises(curata.NotFound, match="no version 5"):
        ds.tag("prod", 5)
    assert ds.tags() == {}


def test_a_tag_set_on_a_branch_version_reads_that_version(
    lake: curata.Lake, tickets: curata.Dataset
) -> None:
    tickets.branch("exp", 1)
    tickets.append(pa.table({"id": [9], "answer": ["i"]}), branch="exp")
    tickets.tag("candidate", "branch:exp")
    assert _ids(lake.ref("tickets@candidate")) == [1, 2, 3, 9]
