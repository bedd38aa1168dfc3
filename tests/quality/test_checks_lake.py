"""Checks of lake datasets: rules and bias over stored versions, results stored as reports with
runs and lineage, on SQLite and PostgreSQL catalogs."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pytest

import curata
from curata.errors import InvalidInput, NotFound
from curata.formats import read_table
from curata.lake.snapshot import Snapshot
from curata.quality.checks import bias_dataset, check_dataset, load_ruleset

REPO = Path(__file__).resolve().parents[2]
TICKET_RULES = REPO / "examples" / "rules" / "tickets.dqdl"


def tickets_table() -> pa.Table:
    return read_table(Path(str(resources.files("curata.samples"))) / "tickets.csv")


@pytest.fixture
def tickets(lake: curata.Lake) -> str:
    """``tickets@1``: the 150 sample tickets."""
    lake.create_dataset("tickets", key="ticket_id")
    lake.dataset("tickets").append(tickets_table(), message="sample")
    return "tickets"


def statuses(result: object) -> dict[str, str]:
    return {o.rule: o.status for o in result.rules.outcomes}  # type: ignore[attr-defined]


# -- rules -------------------------------------------------------------------------------------


def test_check_of_the_tickets_sample_stores_a_report_with_run_and_lineage(
    lake: curata.Lake, tickets: str
) -> None:
    result = check_dataset(lake, tickets, TICKET_RULES)

    assert result.checked == "tickets@1" and result.rows == 150
    found = statuses(result)
    assert len(found) == 13
    assert found['PiiCount "body" = 0'] == "FAIL"
    assert [r for r, s in found.items() if s != "PASS"] == ['PiiCount "body" = 0']
    assert result.score == pytest.approx(12 / 13)
    assert not result.passed and result.status == "FAIL"
    pii = result.rules.outcomes[-1]
    assert pii.metrics["Column.body.PiiCount"] > 0

    assert result.report is not None and result.report.ref == "tickets.check@1"
    stored = lake.ref("tickets.check@1").to_arrow().to_pylist()
    assert [row["rule"] for row in stored] == list(found)
    assert [row["status"] for row in stored] == list(found.values())
    assert {row["checked"] for row in stored} == {"tickets@1"}
    assert {m["name"] for m in stored[-1]["metrics"]} == {
        "Column.body.PiiCount",
        "Column.body.PiiRows",
    }
    assert lake.dataset_info("tickets.check").kind == "report"

    run = lake.run(result.report.run_id)
    assert (run.status, run.inputs, run.outputs) == (
        "succeeded",
        ["tickets@1"],
        ["tickets.check@1"],
    )
    assert run.metrics["score"] == pytest.approx(12 / 13) and run.metrics["failed"] == 1
    assert run.params["rules_text"] == TICKET_RULES.read_text()

    up = lake.lineage("tickets.check@1", direction="up")
    assert {n.id for n in up.nodes} >= {"tickets.check@1", f"run:{run.id}", "tickets@1"}
    down = lake.lineage("tickets@1", direction="down")
    assert "tickets.check@1" in {n.id for n in down.nodes}


def test_each_check_is_a_new_report_version_naming_the_version_it_checked(
    lake: curata.Lake, tickets: str
) -> None:
    rules = 'Rules = [ ColumnValues "language" in ["en", "de", "fr", "es"], RowCount > 100 ]'
    lake.dataset("tickets").tag("prod", 1)
    first = check_dataset(lake, "tickets@prod", rules)
    assert first.passed and first.checked == "tickets@1"

    extra = tickets_table().slice(0, 1).to_pylist()[0] | {"ticket_id": "T-9999", "language": "it"}
    lake.dataset("tickets").append(pa.Table.from_pylist([extra], schema=tickets_table().schema))
    second = check_dataset(lake, "tickets", rules)

    assert second.checked == "tickets@2"
    assert statuses(second) == {
        'ColumnValues "language" in ["en", "de", "fr", "es"]': "FAIL",
        "RowCount > 100": "PASS",
    }
    assert second.report is not None and second.report.ref == "tickets.check@2"
    assert second.report.created
    history = [c.ref for c in lake.dataset("tickets.check").log()]
    assert history == ["tickets.check@2", "tickets.check@1"]
    assert lake.ref("tickets.check@1").to_arrow().column("checked").to_pylist() == ["tickets@1"] * 2
    assert lake.run(second.report.run_id).inputs == ["tickets@2"]


def test_a_recheck_with_the_same_outcomes_confirms_the_report_version(
    lake: curata.Lake, tickets: str
) -> None:
    rules = "Rules = [ RowCount > 100 ]"
    first = check_dataset(lake, tickets, rules)
    lake.dataset("tickets").tag("prod", 1)
    again = check_dataset(lake, "tickets@prod", rules)  # the same version, the same outcomes

    assert first.report is not None and again.report is not None
    assert (again.report.ref, again.report.created) == ("tickets.check@1", False)
    assert [c.ref for c in lake.dataset("tickets.check").log()] == ["tickets.check@1"]
    run = lake.run(again.report.run_id)
    assert run.id != first.report.run_id
    assert (run.status, run.inputs, run.outputs) == (
        "succeeded",
        ["tickets@1"],
        ["tickets.check@1"],
    )
    assert run.metrics["passed"] == 1
    down = lake.lineage("tickets@1", direction="down")
    assert {f"run:{first.report.run_id}", f"run:{run.id}"} <= {n.id for n in down.nodes}

    other = check_dataset(lake, tickets, "Rules = [ RowCount > 200 ]")  # new outcomes
    assert other.report is not None
    assert (other.report.ref, other.report.created) == ("tickets.check@2", True)
    third = check_dataset(lake, tickets, rules)  # back to the first outcomes: a new version
    assert third.report is not None and third.report.ref == "tickets.check@3"


def test_no_store_leaves_the_lake_untouched(lake: curata.Lake, tickets: str) -> None:
    result = check_dataset(lake, tickets, "Rules = [ RowCount = 150 ]", store=False)
    assert result.passed and result.report is None
    assert not lake.has_dataset("tickets.check") and lake.runs() == []


def test_rules_read_the_lance_files_in_place(
    lake: curata.Lake, tickets: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_copy(*args: object, **kwargs: object) -> None:
        raise AssertionError("the check copied the whole snapshot into memory")

    monkeypatch.setattr(Snapshot, "to_arrow", no_copy)
    result = check_dataset(lake, tickets, 'Rules = [ IsUnique "ticket_id", Mean "x" > 0 ]')
    assert statuses(result) == {'IsUnique "ticket_id"': "PASS", 'Mean "x" > 0': "ERROR"}


def test_unknown_columns_are_errors_that_list_the_columns(lake: curata.Lake, tickets: str) -> None:
    result = check_dataset(lake, tickets, 'Rules = [ RowCount > 0, Completeness "bodyy" > 0.9 ]')
    error = result.rules.outcomes[1]
    assert error.status == "ERROR"
    assert "column 'bodyy' does not exist" in error.message.lower()
    assert "ticket_id, created_at, channel" in error.message

    with pytest.raises(InvalidInput, match="No rule of <rules> could be evaluated") as raised:
        check_dataset(lake, tickets, 'Rules = [ IsComplete "nope", Mean "body" > 1 ]')
    hint = raised.value.hint or ""
    assert "IsComplete \"nope\": Column 'nope' does not exist" in hint
    assert 'Mean "body" > 1: Mean needs a numeric column; body is string.' in hint
    assert lake.dataset("tickets.check").log()[0].ref == "tickets.check@1"  # only the first


def test_data_freshness_measures_from_the_given_now(lake: curata.Lake, tickets: str) -> None:
    rules = 'Rules = [ DataFreshness "created_at" <= 400 days ]'
    newest = tickets_table().column("created_at").to_pylist()
    assert max(newest) < datetime(2025, 12, 31, tzinfo=UTC)
    assert check_dataset(lake, tickets, rules, now=datetime(2025, 12, 31), store=False).passed
    late = check_dataset(lake, tickets, rules, now=datetime(2030, 1, 1), store=False)
    assert statuses(late) == {'DataFreshness "created_at" <= 400 days': "FAIL"}


def test_referential_integrity_reads_other_datasets_of_the_lake(lake: curata.Lake) -> None:
    lake.create_dataset("users", key="id")
    lake.dataset("users").append(pa.table({"id": [1, 2, 3]}))
    lake.dataset("users").append(pa.table({"id": [4]}))
    lake.dataset("users").tag("prod", 1)
    lake.create_dataset("orders")
    lake.dataset("orders").append(pa.table({"order": [10, 11, 12, 13], "user_id": [1, 2, 3, 4]}))

    def rule(target: str) -> str:
        return f'Rules = [ ReferentialIntegrity "user_id" "{target}.id" = 1.0 ]'

    head = check_dataset(lake, "orders", rule("users"))
    assert head.passed and head.references == {"users": "users@2"}
    prod = check_dataset(lake, "orders", rule("users@prod"))
    (outcome,) = prod.rules.outcomes
    assert outcome.status == "FAIL"
    assert outcome.metrics == {"Column.users@prod.ReferentialIntegrity": 0.75}
    assert prod.references == {"users@prod": "users@1"}
    assert prod.report is not None
    run = lake.run(prod.report.run_id)
    assert run.params["references"] == {"users@prod": "users@1"}
    assert run.inputs == ["orders@1", "users@1"]  # lineage comes from the run's inputs
    assert head.report is not None
    assert lake.run(head.report.run_id).inputs == ["orders@1", "users@2"]
    down = {n.id for n in lake.lineage("users@1", direction="down", depth=1).nodes}
    assert f"run:{run.id}" in down
    assert f"run:{head.report.run_id}" not in down  # it read users@2
    assert prod.report.ref in {n.id for n in lake.lineage("users@1", direction="down").nodes}

    mixed = check_dataset(lake, "orders", rule("customers")[:-2] + ", RowCount = 4 ]")
    missing = mixed.rules.outcomes[0]
    assert missing.status == "ERROR"
    assert "No dataset named 'customers'" in missing.message
    assert "Datasets in this lake: orders, users." in missing.message
    assert "orders.check" not in missing.message  # reports are not offered as references
    no_version = check_dataset(lake, "orders", rule("users@7")[:-2] + ", RowCount = 4 ]")
    assert "has no version 7" in no_version.rules.outcomes[0].message
    assert "1 to 2" in no_version.rules.outcomes[0].message


def test_rules_files_that_cannot_be_used(lake: curata.Lake, tickets: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.dqdl"
    bad.write_text('Rules = [\n    RowCount > 0,\n    Completeness "body" >> 0.9\n]\n')
    with pytest.raises(InvalidInput, match=r"bad\.dqdl:3:\d+: .*expected"):
        check_dataset(lake, tickets, bad)
    with pytest.raises(NotFound, match=r"Rules file .*missing\.dqdl does not exist"):
        check_dataset(lake, tickets, tmp_path / "missing.dqdl")
    with pytest.raises(InvalidInput, match="has no rules"):
        load_ruleset("Rules = [ ]")
    with pytest.raises(NotFound, match="No dataset named 'ticket'"):
        check_dataset(lake, "ticket", "Rules = [ RowCount > 0 ]")
    assert not lake.has_dataset("tickets.check")


# -- bias --------------------------------------------------------------------------------------


def test_bias_of_the_tickets_text_is_stored_as_a_report(lake: curata.Lake, tickets: str) -> None:
    result = bias_dataset(lake, tickets, column="body")
    rep = result.representation
    assert rep is not None and rep.rows == 150
    # The sample mentions she/her/... 9 times in 4 tickets, he/his/... 9 times in 7.
    assert [(g.group, g.mentions, g.rows) for g in rep.groups] == [
        ("female", 9, 4),
        ("male", 9, 7),
    ]
    assert rep.ratio == 1.0 and result.labels is None
    assert result.report is not None and result.report.ref == "tickets.bias@1"
    rows = lake.ref("tickets.bias@1").to_arrow().to_pylist()
    assert [(r["kind"], r["column"], r["value"], r["mentions"]) for r in rows] == [
        ("group", "body", "female", 9),
        ("group", "body", "male", 9),
    ]
    assert lake.run(result.report.run_id).inputs == ["tickets@1"]


def test_bias_with_a_groups_file(lake: curata.Lake, tickets: str, tmp_path: Path) -> None:
    groups = tmp_path / "groups.yaml"
    groups.write_text(
        "groups:\n  mobile: [android, iphone, ipad, pixel]\n  desktop: [windows, mac, linux]\n"
    )
    result = bias_dataset(lake, tickets, column="body", groups_file=groups, store=False)
    assert result.representation is not None
    assert [g.group for g in result.representation.groups] == ["mobile", "desktop"]
    assert all(g.mentions > 0 for g in result.representation.groups)


def labeled() -> pa.Table:
    # f: 4 rows, 1 approved; m: 6 rows, 3 approved; one row without a facet.
    return pa.table(
        {
            "gender": ["f"] * 4 + ["m"] * 6 + [None],
            "approved": [1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1],
        }
    )


def test_label_bias_matches_values_computed_by_hand(lake: curata.Lake) -> None:
    lake.create_dataset("loans")
    lake.dataset("loans").append(labeled())
    result = bias_dataset(lake, "loans", label="approved", facet="gender", positive=["1"])
    assert result.labels is not None and result.labels.dropped_rows == 1
    m, f = result.labels.facets
    assert (f.value, f.n_d, f.n_a) == ("f", 4, 6)
    assert f.ci == pytest.approx((6 - 4) / 10)  # 0.2
    assert f.dpl == pytest.approx(3 / 6 - 1 / 4)  # 0.25
    assert f.kl == pytest.approx(0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75))
    assert f.tvd == pytest.approx(0.25)
    assert (m.ci, m.dpl) == (pytest.approx(-0.2), pytest.approx(-0.25))

    assert result.report is not None
    stored = {r["value"]: r for r in lake.ref(result.report.ref).to_arrow().to_pylist()}
    assert stored["f"]["kind"] == "facet" and stored["f"]["ci"] == pytest.approx(0.2)
    assert stored["m"]["dpl"] == pytest.approx(-0.25)
    run = lake.run(result.report.run_id)
    assert run.metrics["max_abs_ci"] == pytest.approx(0.2)
    assert run.metrics["max_abs_dpl"] == pytest.approx(0.25)


def test_bias_input_that_cannot_be_used(lake: curata.Lake, tickets: str) -> None:
    with pytest.raises(InvalidInput, match="Nothing to measure"):
        bias_dataset(lake, tickets)
    with pytest.raises(InvalidInput, match="both a label column and a facet"):
        bias_dataset(lake, tickets, label="status")
    with pytest.raises(InvalidInput, match="has no column 'gender'") as raised:
        bias_dataset(lake, tickets, label="status", facet="gender", positive="solved")
    assert "ticket_id, created_at" in (raised.value.hint or "")
    with pytest.raises(InvalidInput, match="Which values of 'status' are positive") as raised:
        bias_dataset(lake, tickets, label="status", facet="language")
    assert "solved" in (raised.value.hint or "")
    with pytest.raises(InvalidInput, match="counted in text"):
        bias_dataset(lake, tickets, column="created_at")
    with pytest.raises(NotFound, match="Groups file"):
        bias_dataset(lake, tickets, column="body", groups_file="no-such.yaml")
    assert not lake.has_dataset("tickets.bias")


def test_a_boolean_label_is_positive_when_true(lake: curata.Lake) -> None:
    table = labeled()
    flags = pa.array([None if v is None else v == 1 for v in table.column("approved").to_pylist()])
    lake.create_dataset("loans")
    lake.dataset("loans").append(table.set_column(1, "approved", flags))
    result = bias_dataset(lake, "loans", label="approved", facet="gender", store=False)
    assert result.labels is not None and result.labels.positive == (True,)
    assert result.labels.facets[1].dpl == pytest.approx(0.25)
