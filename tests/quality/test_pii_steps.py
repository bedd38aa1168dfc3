"""The pii.detect and pii.redact pipeline steps, alone and in pipelines run on a real lake."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pytest

import curata
from curata.errors import InvalidInput, MissingDependency, NotFound, QualityGateFailed
from curata.formats import read_table
from curata.pipeline import make_step, parse_pipeline, register_step, run_pipeline
from curata.quality.pii import detect_pii_batch, generate_key_file, reveal_text
from curata.quality.pii_lake import redact_pii
from curata.quality.pii_steps import DetectStep, RedactStep

EXAMPLE = Path(__file__).parents[2] / "examples" / "pipelines" / "redact-tickets.yaml"
RULES = """
recognizers:
  - entity: EMPLOYEE_ID
    patterns: [{regex: "E-\\\\d{6}"}]
"""
CREDENTIAL = "my aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY, mail a@b.com"

# Until pyproject.toml lists them under curata.steps, register them as a plug-in would be.
register_step(DetectStep)
register_step(RedactStep)


def _texts() -> pa.Table:
    return pa.table(
        {
            "id": [1, 2, 3],
            "text": ["mail ada@example.org or call +44 20 7946 0958", None, "nothing here"],
        }
    )


def test_detect_adds_the_spans_of_each_row() -> None:
    out = make_step("pii.detect", {"column": "text"}).process(_texts())

    assert out.column_names == ["id", "text", "pii"]
    spans = out.column("pii").to_pylist()
    assert [s["entity"] for s in spans[0]] == ["EMAIL_ADDRESS", "PHONE_NUMBER"]
    assert spans[0][0] == {"entity": "EMAIL_ADDRESS", "start": 5, "end": 20, "score": 1.0}
    assert spans[1:] == [[], []]


def test_detect_counts_and_filters() -> None:
    step = make_step("pii.detect", {"column": "text", "entities": ["PHONE_NUMBER"], "count": True})

    assert step.process(_texts()).column("pii").to_pylist() == [1, 0, 0]


def test_redact_replaces_the_values_and_records_them() -> None:
    found = make_step("pii.detect", {"column": "text"}).process(_texts())
    step = make_step(
        "pii.redact",
        {"column": "text", "spans": "pii", "operator": "mask", "audit": "redactions"},
    )

    out = step.process(found)

    assert out.column("text").to_pylist() == [
        "mail *************** or call +** ** **** 0958",
        None,
        "nothing here",
    ]
    audit = out.column("redactions").to_pylist()
    assert [(a["entity"], a["start"], a["end"], a["operator"]) for a in audit[0]] == [
        ("EMAIL_ADDRESS", 5, 20, "mask"),
        ("PHONE_NUMBER", 29, 45, "mask"),
    ]
    assert "ada@example.org" not in str(audit)


def test_redact_detects_by_itself_and_encrypts(tmp_path: Path) -> None:
    key = generate_key_file(tmp_path / "pii.key")
    step = make_step("pii.redact", {"column": "text", "operator": "encrypt", "key_file": str(key)})

    out = step.process(_texts())

    clean = out.column("text").to_pylist()
    assert "ada@example.org" not in clean[0]
    assert reveal_text(clean[0], key) == _texts().column("text")[0].as_py()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"column": "text", "operator": "encrypt"}, "needs key_file"),
        ({"column": "text", "operator": "blur"}, "unknown operator 'blur'"),
        ({"column": "text", "operator": {"EMAIL_ADDRESS": "blur"}}, "unknown operator 'blur'"),
        ({"column": "text", "spans": "pii", "entities": ["URL"]}, "belong to the pii.detect"),
        ({"column": "text", "threshold": 2}, "less than or equal to 1"),
        ({"column": "text", "colour": "red"}, "colour: Extra inputs"),
    ],
)
def test_redact_refuses_bad_params(params: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        make_step("pii.redact", params)


def test_steps_name_the_columns_they_lack() -> None:
    with pytest.raises(InvalidInput, match="has no column 'body'") as err:
        make_step("pii.detect", {"column": "body"}).process(_texts())
    assert "id, text" in (err.value.hint or "")
    with pytest.raises(InvalidInput, match=r"'id' .* is int64, not text"):
        make_step("pii.redact", {"column": "id"}).process(_texts())
    with pytest.raises(InvalidInput, match="no column 'pii' with spans"):
        make_step("pii.redact", {"column": "text", "spans": "pii"}).process(_texts())


def test_fingerprints_follow_files_and_secrets(tmp_path: Path) -> None:
    rules = tmp_path / "pii.yaml"
    rules.write_text(RULES)
    salt = tmp_path / "salt"
    salt.write_text("one secret")

    def fingerprints() -> tuple[str, str]:
        detect = make_step("pii.detect", {"column": "text", "recognizers": str(rules)})
        redact = make_step(
            "pii.redact", {"column": "text", "operator": "hash", "salt_file": str(salt)}
        )
        return detect.fingerprint, redact.fingerprint

    first = fingerprints()
    rules.write_text(rules.read_text().replace("6", "7"))
    salt.write_text("another secret")
    second = fingerprints()

    assert first[0] != second[0] and first[1] != second[1]
    assert "one secret" not in str(make_step("pii.redact", {"column": "text"}).fingerprint)


@pytest.fixture
def tickets_prod(lake: curata.Lake, monkeypatch: pytest.MonkeyPatch) -> curata.Lake:
    """A lake (also found through CURATA_LAKE, as `curata run` finds it) whose ``tickets@prod`` is
    the bundled sample plus a ticket holding an AWS secret key."""
    sample = read_table(Path(str(resources.files("curata.samples"))) / "tickets.csv")
    extra = {c: [None] for c in sample.column_names}
    extra.update(ticket_id=["T-9999"], body=[CREDENTIAL])
    table = pa.concat_tables([sample, pa.table(extra, schema=sample.schema)])
    lake.create_dataset("tickets", key="ticket_id")
    lake.dataset("tickets").append(table)
    lake.dataset("tickets").tag("prod")
    monkeypatch.setenv("CURATA_LAKE", lake.uri)
    return lake


def test_the_example_pipeline_redacts_and_quarantines(
    tickets_prod: curata.Lake, tmp_path: Path
) -> None:
    lake = tickets_prod
    pipeline = tmp_path / EXAMPLE.name
    shutil.copy(EXAMPLE, pipeline)

    result = run_pipeline(lake, pipeline, workers=1)

    assert result.outputs == ["tickets_redacted@1", "tickets_redacted_quarantine@1"]
    assert result.quarantined == 1
    out = lake.ref("tickets_redacted").to_arrow()
    assert out.num_rows == 150 and "pii" not in out.column_names
    source = lake.ref("tickets@prod").to_arrow()
    values = {
        text[s.start : s.end]
        for column in ("body", "answer")
        for text, spans in zip(
            source.column(column).to_pylist(),
            detect_pii_batch(source.column(column).to_pylist()),
            strict=True,
        )
        for s in spans
    }
    published = str(out.to_pylist()) + str(lake.ref("tickets_redacted_quarantine").to_arrow())
    assert values and not [v for v in values if v in published]
    rows = {r["ticket_id"]: r for r in out.to_pylist()}
    assert rows["T-1012"]["pii_found"] == 2
    assert [a["operator"] for a in rows["T-1012"]["pii_redactions"]] == ["hash", "mask"]
    assert "<EMAIL_ADDRESS:" in rows["T-1012"]["body"] and "0126" in rows["T-1012"]["body"]
    assert "T-9999" not in rows
    quarantined = lake.ref("tickets_redacted_quarantine").to_arrow().to_pylist()
    assert quarantined[0]["step"] == "gate:no credentials"
    assert "<AWS_SECRET_KEY>" in quarantined[0]["row"]

    # The pipeline hashes with the lake's salt, as `pii redact` does: the same hash.
    redacted = redact_pii(lake, "tickets", "body", "hash", entities="EMAIL_ADDRESS")
    by_redact = lake.ref(redacted.version).to_arrow().to_pylist()
    body = next(r["body"] for r in by_redact if r["ticket_id"] == "T-1012")
    digest = rows["T-1012"]["body"].split("<EMAIL_ADDRESS:")[1][:16]
    assert f"<EMAIL_ADDRESS:{digest}>" in body

    again = run_pipeline(lake, pipeline, workers=1)
    assert again.steps[0].cache_hits == 151 and again.steps[0].computed == 0


def test_a_pii_gate_can_fail_the_run(tickets_prod: curata.Lake) -> None:
    spec = parse_pipeline(
        {
            "name": "no-pii",
            "input": "tickets@prod",
            "steps": [{"step": "pii.detect", "params": {"column": "body", "count": True}}],
            "output": "tickets_checked",
            "gates": [{"name": "no PII", "where": "pii > 0", "action": "fail"}],
        }
    )

    with pytest.raises(QualityGateFailed, match="Gate 'no PII' failed: 12 row"):
        run_pipeline(tickets_prod, spec, workers=1)
    assert not tickets_prod.has_dataset("tickets_checked")


def test_steps_run_in_worker_processes(tickets_prod: curata.Lake, tmp_path: Path) -> None:
    key = generate_key_file(tmp_path / "pii.key")
    spec = parse_pipeline(
        {
            "name": "encrypt-tickets",
            "input": "tickets@prod",
            "steps": [
                {
                    "step": "pii.redact",
                    "params": {"column": "body", "operator": "encrypt", "key_file": str(key)},
                }
            ],
            "output": "tickets_encrypted",
        }
    )

    run_pipeline(tickets_prod, spec, workers=2, batch_rows=50, no_cache=True)

    out = tickets_prod.ref("tickets_encrypted").to_arrow().sort_by("ticket_id")
    source = tickets_prod.ref("tickets@prod").to_arrow().sort_by("ticket_id")
    assert out.column("body") != source.column("body")
    revealed = [None if t is None else reveal_text(t, key) for t in out.column("body").to_pylist()]
    assert revealed == source.column("body").to_pylist()


@pytest.mark.parametrize("workers", [1, 2])
def test_hash_uses_the_salt_of_the_lake_the_pipeline_runs_on(
    tickets_prod: curata.Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    # As `curata --lake A run p.yaml` from inside another lake B: the environment points at B.
    other = curata.init(str(tmp_path / "other"))
    monkeypatch.delenv("CURATA_LAKE")
    monkeypatch.chdir(tmp_path / "other")
    spec = parse_pipeline(
        {
            "name": "hash-tickets",
            "input": "tickets@prod",
            "steps": [{"step": "pii.redact", "params": {"column": "body", "operator": "hash"}}],
            "output": "tickets_hashed",
        }
    )

    run_pipeline(tickets_prod, spec, workers=workers, batch_rows=50, no_cache=workers > 1)

    assert not (Path(other.uri) / "secrets").exists()
    hashed = tickets_prod.ref("tickets_hashed").to_arrow().to_pylist()
    body = next(r["body"] for r in hashed if r["ticket_id"] == "T-1012")
    redacted = redact_pii(tickets_prod, "tickets", "body", "hash", entities="EMAIL_ADDRESS")
    by_redact = tickets_prod.ref(redacted.version).to_arrow().to_pylist()
    expected = next(r["body"] for r in by_redact if r["ticket_id"] == "T-1012")
    digest = expected.split("<EMAIL_ADDRESS:")[1][:16]
    assert f"<EMAIL_ADDRESS:{digest}>" in body
    other.close()


def test_a_step_that_cannot_start_in_worker_processes_says_why(
    tickets_prod: curata.Lake, tmp_path: Path
) -> None:
    spec = parse_pipeline(
        {
            "name": "encrypt-tickets",
            "input": "tickets@prod",
            "steps": [
                {
                    "step": "pii.redact",
                    "params": {
                        "column": "body",
                        "operator": "encrypt",
                        "key_file": str(tmp_path / "missing.key"),
                    },
                }
            ],
            "output": "tickets_encrypted",
        }
    )

    with pytest.raises(NotFound, match=r"Key file .*missing\.key does not exist"):
        run_pipeline(tickets_prod, spec, workers=2, batch_rows=50, no_cache=True)
    (run,) = tickets_prod.runs(job="encrypt-tickets")
    assert run.status == "failed" and "missing.key does not exist" in (run.error or "")


def test_a_missing_ner_model_is_reported_from_worker_processes(tickets_prod: curata.Lake) -> None:
    spec = parse_pipeline(
        {
            "name": "names",
            "input": "tickets@prod",
            "steps": [
                {"step": "pii.detect", "params": {"column": "body", "ner": "spacy:no_such_model"}}
            ],
            "output": "tickets_names",
        }
    )

    with pytest.raises(MissingDependency, match="python -m spacy download no_such_model"):
        run_pipeline(tickets_prod, spec, workers=2, batch_rows=50)
