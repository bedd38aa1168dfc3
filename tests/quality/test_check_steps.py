"""The ``rules.check`` and ``bias.check`` pipeline steps: rows pass through, a failed check
fails the run (nothing published) or warns."""

from __future__ import annotations

import json
import logging
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import curata
from curata.errors import InvalidInput, NotFound, QualityGateFailed
from curata.formats import read_table
from curata.pipeline import parse_pipeline, register_step, run_pipeline
from curata.quality.check_steps import BiasCheckStep, RulesCheckStep, RulesFlagStep

REPO = Path(__file__).resolve().parents[2]

register_step(RulesCheckStep)
register_step(BiasCheckStep)
register_step(RulesFlagStep)


@pytest.fixture
def tickets(lake: curata.Lake) -> str:
    table = read_table(Path(str(resources.files("curata.samples"))) / "tickets.csv")
    lake.create_dataset("tickets", key="ticket_id")
    lake.dataset("tickets").append(table)
    return "tickets"


def pipeline(*steps: dict[str, Any], input: str = "tickets", output: str = "out") -> Any:
    return parse_pipeline(
        {"name": "checked", "input": input, "steps": list(steps), "output": output}
    )


def rules_step(rules: str, **params: Any) -> dict[str, Any]:
    return {"step": "rules.check", "id": "check", "params": {"rules": rules, **params}}


def test_passing_rules_let_the_rows_through_unchanged(lake: curata.Lake, tickets: str) -> None:
    spec = pipeline(rules_step('Rules = [ RowCount = 150, IsPrimaryKey "ticket_id" ]'))
    result = run_pipeline(lake, spec)
    assert result.status == "succeeded" and result.outputs == ["out@1"]
    assert lake.ref("out@1").to_arrow().equals(lake.ref("tickets@1").to_arrow())
    (step,) = result.steps
    assert (step.name, step.rows_in, step.rows_out) == ("rules.check", 150, 150)
    lineage = lake.run(result.id).metrics["column_lineage"]["out"]
    assert lineage["body"] == [["tickets@1", "body"]]


def test_failing_rules_fail_the_run_and_publish_nothing(lake: curata.Lake, tickets: str) -> None:
    spec = pipeline(
        rules_step('Rules = [ RowCount > 1000, ColumnValues "language" in ["en"], RowCount > 0 ]')
    )
    with pytest.raises(QualityGateFailed) as raised:
        run_pipeline(lake, spec)
    message = raised.value.message
    assert "Step 'check': 2 of 3 rules did not pass on 150 rows (score 0.33)" in message
    assert "RowCount > 1000: FAIL: RowCount is 150" in message
    assert "33 of 150 rows fail language in" in message
    assert not lake.has_dataset("out")
    (run,) = lake.runs()
    assert run.status == "failed" and "QualityGateFailed" in (run.error or "")


def test_warn_logs_the_failures_and_publishes(
    lake: curata.Lake, tickets: str, caplog: pytest.LogCaptureFixture
) -> None:
    spec = pipeline(
        rules_step('Rules = [ PiiCount "body" = 0, IsComplete "nope" ]', on_fail="warn")
    )
    with caplog.at_level(logging.WARNING, logger="curata.quality"):
        result = run_pipeline(lake, spec)
    assert result.outputs == ["out@1"] and lake.ref("out@1").count_rows() == 150
    (record,) = caplog.records
    assert "2 of 2 rules did not pass" in record.getMessage()
    assert 'PiiCount "body" = 0: FAIL' in record.getMessage()
    assert "IsComplete \"nope\": ERROR: Column 'nope' does not exist" in record.getMessage()


def test_rules_after_a_filter_see_the_filtered_rows(lake: curata.Lake, tickets: str) -> None:
    spec = pipeline(
        {"step": "sql", "params": {"query": "SELECT * FROM batch WHERE language = 'de'"}},
        rules_step('Rules = [ RowCount = 13, ColumnValues "language" = "de" ]'),
    )
    assert run_pipeline(lake, spec).outputs == ["out@1"]


def test_bad_rules_stop_the_pipeline_before_its_run(
    lake: curata.Lake, tickets: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.dqdl"
    bad.write_text('Rules = [\n  RowCount > 0,\n  Completeness "body" >> 0.5\n]\n')
    spec = pipeline({"step": "rules.check", "params": {"rules_file": str(bad)}})
    with pytest.raises(InvalidInput, match=rf"{bad}:3:\d+: expected a number"):
        run_pipeline(lake, spec)
    with pytest.raises(NotFound, match=r"Step 'rules\.check': the rules file no\.dqdl does not"):
        run_pipeline(lake, pipeline({"step": "rules.check", "params": {"rules_file": "no.dqdl"}}))
    with pytest.raises(InvalidInput, match="either `rules`"):
        run_pipeline(lake, pipeline({"step": "rules.check", "params": {}}))
    joins = rules_step('Rules = [ ReferentialIntegrity "ticket_id" "tickets.ticket_id" = 1.0 ]')
    with pytest.raises(InvalidInput, match="cannot run in a pipeline step") as raised:
        run_pipeline(lake, pipeline(joins))
    assert "curata check" in (raised.value.hint or "")
    assert lake.runs() == []


def test_the_example_pipeline_runs_on_the_tickets_sample(
    lake: curata.Lake,
    tickets: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.chdir(REPO)  # the example names its rules file from the repository root
    with caplog.at_level(logging.WARNING, logger="curata.quality"):
        result = run_pipeline(lake, REPO / "examples" / "pipelines" / "checked-tickets.yaml")
    assert result.outputs == ["tickets_checked@1", "tickets_checked_quarantine@1"]
    assert [s.id for s in result.steps] == ["shape", "content", "balance", "flag", "columns"]
    assert (result.rows_in, result.quarantined) == (150, 4)  # solved, without an answer
    assert "failed_rules" not in lake.ref("tickets_checked").schema.names
    (warning,) = caplog.records  # the sample's made-up personal data
    assert "Step 'content': 1 of 13 rules did not pass" in warning.getMessage()
    assert "PiiCount" in warning.getMessage()


# -- bias.check --------------------------------------------------------------------------------


def loans() -> pa.Table:
    # f: 4 rows, 1 approved; m: 6 rows, 3 approved. CI(f) = 0.2, DPL(f) = 0.25.
    return pa.table(
        {
            "gender": ["f"] * 4 + ["m"] * 6,
            "approved": [True, False, False, False, True, True, True, False, False, False],
            "text": ["she applied"] * 3 + ["he applied"] * 7,
        }
    )


@pytest.fixture
def loans_dataset(lake: curata.Lake) -> str:
    lake.create_dataset("loans")
    lake.dataset("loans").append(loans())
    return "loans"


def bias_step(**params: Any) -> dict[str, Any]:
    return {"step": "bias.check", "id": "bias", "params": params}


def test_bias_within_thresholds_passes_rows_through(lake: curata.Lake, loans_dataset: str) -> None:
    spec = pipeline(
        bias_step(facet="gender", label="approved", max_ci=0.25, max_dpl=0.3),
        input=loans_dataset,
    )
    assert run_pipeline(lake, spec).outputs == ["out@1"]
    assert lake.ref("out@1").to_arrow().equals(loans())


def test_bias_beyond_thresholds_fails_or_warns(
    lake: curata.Lake, loans_dataset: str, caplog: pytest.LogCaptureFixture
) -> None:
    spec = pipeline(
        bias_step(facet="gender", label="approved", max_dpl=0.2, column="text", min_ratio=0.5),
        input=loans_dataset,
    )
    with pytest.raises(QualityGateFailed) as raised:
        run_pipeline(lake, spec)
    message = raised.value.message
    assert (
        "representation ratio in text is 0.429 (female 30%, male 70%), expected >= 0.5" in message
    )
    assert "DPL of gender=f is 0.250, expected within ±0.2" in message
    assert "DPL of gender=m is -0.250" in message
    assert not lake.has_dataset("out")

    warn = pipeline(bias_step(facet="gender", label="approved", max_ci=0.1, on_fail="warn"),
                    input=loans_dataset)  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="curata.quality"):
        assert run_pipeline(lake, warn).outputs == ["out@1"]
    assert "CI of gender=f is 0.200, expected within ±0.1" in caplog.records[0].getMessage()


def test_bias_params_that_cannot_work(lake: curata.Lake, loans_dataset: str) -> None:
    cases = {
        "give a threshold": bias_step(column="text"),
        "needs both `label` and `facet`": bias_step(label="approved", max_ci=0.1),
        "`min_ratio` needs the text `column`": bias_step(min_ratio=0.5),
    }
    for expected, step in cases.items():
        with pytest.raises(InvalidInput, match=expected):
            run_pipeline(lake, pipeline(step, input=loans_dataset))
    missing = pipeline(bias_step(facet="sex", label="approved", max_ci=0.1), input=loans_dataset)
    with pytest.raises(InvalidInput, match="no column 'sex' in the input; the columns are: gender"):
        run_pipeline(lake, missing)


# -- rules.flag --------------------------------------------------------------------------------

FLAG_RULES = """Rules = [
    ColumnValues "language" in ["en", "de"],
    ColumnLength "subject" <= 25 where "status = 'open'",
    IsComplete "answer"
]"""


def test_flagged_rows_are_quarantined_by_a_gate(lake: curata.Lake, tickets: str) -> None:
    spec = parse_pipeline(
        {
            "name": "flagged",
            "input": tickets,
            "steps": [{"step": "rules.flag", "id": "flag", "params": {"rules": FLAG_RULES}}],
            "output": "clean",
            "gates": [{"name": "rules", "where": "len(failed_rules) > 0", "action": "quarantine"}],
        }
    )
    result = run_pipeline(lake, spec)
    source = lake.ref("tickets@1").to_arrow()
    expected = (
        lake.query(
            "SELECT count(*) FROM \"tickets@1\" WHERE language NOT IN ('en', 'de') "
            "OR (status = 'open' AND length(subject) > 25) OR answer IS NULL"
        )
        .column(0)[0]
        .as_py()
    )
    assert 0 < expected < source.num_rows
    assert result.quarantined == expected
    clean = lake.ref("clean@1").to_arrow()
    assert clean.num_rows == source.num_rows - expected
    assert clean.column("failed_rules").to_pylist() == [[]] * clean.num_rows
    quarantined = lake.ref("clean_quarantine").to_arrow().column("row").to_pylist()
    french = next(json.loads(r) for r in quarantined if json.loads(r)["language"] == "fr")
    assert 'ColumnValues "language" in ["en", "de"]' in french["failed_rules"]

    again = run_pipeline(lake, spec)  # cached per row: nothing recomputed
    (flag,) = again.steps
    assert flag.cache_hits == source.num_rows and flag.computed == 0


def test_only_row_level_rules_can_flag_rows(lake: curata.Lake, tickets: str) -> None:
    cases = {
        "RowCount > 0": "RowCount is about all rows",
        'ColumnValues "language" in ["en"] with threshold > 0.9': "`with threshold`",
        'ColumnValues "created_at" > (now() - 3 days)': r"now\(\) changes with time",
    }
    for rule, expected in cases.items():
        step = {"step": "rules.flag", "params": {"rules": f"Rules = [ {rule} ]"}}
        with pytest.raises(InvalidInput, match=expected):
            run_pipeline(lake, pipeline(step))
    missing = {"step": "rules.flag", "params": {"rules": 'Rules = [ IsComplete "bdy" ]'}}
    with pytest.raises(InvalidInput, match="no column 'bdy'; the columns are: ticket_id"):
        run_pipeline(lake, pipeline(missing))
