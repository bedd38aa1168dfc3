"""PII in the lake: scan_pii, redact_pii and reveal_pii on real Lance datasets, on both catalogs."""

from __future__ import annotations

import json
import stat
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pytest

import curata
from curata.errors import Conflict, InvalidInput, NotFound
from curata.formats import read_table
from curata.quality.pii import OPERATORS, detect_pii_batch, generate_key_file
from curata.quality.pii_lake import (
    classification_for,
    lake_salt_path,
    redact_pii,
    reveal_pii,
    scan_pii,
)
from curata.quality.pii_lake import redact as redact_module

SAMPLE_COUNTS = {"EMAIL_ADDRESS": 9, "PHONE_NUMBER": 5}
RULES = """
recognizers:
  - entity: EMPLOYEE_ID
    patterns: [{regex: "E-\\\\d{6}"}]
"""


def _sample() -> pa.Table:
    return read_table(Path(str(resources.files("curata.samples"))) / "tickets.csv")


@pytest.fixture
def tickets(lake: curata.Lake) -> str:
    """``tickets@1``: the bundled sample (150 rows, keyed by ticket_id); its bodies hold 9
    e-mail addresses and 5 phone numbers in 11 rows."""
    lake.create_dataset("tickets", key="ticket_id")
    lake.dataset("tickets").append(_sample(), message="import")
    return "tickets"


@pytest.fixture
def notes(lake: curata.Lake) -> str:
    """``notes@1``: the same rows without a key (rows are named by position)."""
    lake.create_dataset("notes")
    lake.dataset("notes").append(_sample(), message="import")
    return "notes"


def _values(table: pa.Table, column: str) -> set[str]:
    """Every PII value the detector finds in ``column``."""
    texts = table.column(column).to_pylist()
    return {
        texts[i][s.start : s.end] for i, spans in enumerate(detect_pii_batch(texts)) for s in spans
    }


def _dump(table: pa.Table) -> str:
    return json.dumps(table.to_pylist(), default=str)


# -- scan ---------------------------------------------------------------------------------------


def test_scan_counts_the_sample_and_keeps_no_value(lake: curata.Lake, tickets: str) -> None:
    scan = scan_pii(lake, tickets, "body")

    assert (scan.checked, scan.rows, scan.rows_with_pii) == ("tickets@1", 150, 11)
    assert scan.counts == SAMPLE_COUNTS
    assert scan.rows_by_entity == SAMPLE_COUNTS
    texts = dict(zip(*_sample().select(["ticket_id", "body"]).to_pydict().values(), strict=True))
    found = {texts[x.row_key][x.start : x.end] for x in scan.examples}
    assert "hannah.fischer@example.com" in found and "+1 206 555 0126" in found
    assert {x.entity for x in scan.examples} == set(SAMPLE_COUNTS)
    values = _values(_sample(), "body")
    stored = _dump(lake.ref(scan.report.ref).to_arrow()) + json.dumps(scan.to_dict())
    assert not [v for v in values if v in stored]


def test_scan_classifies_the_column(lake: curata.Lake, tickets: str) -> None:
    assert scan_pii(lake, tickets, "body").classification == "pii:mixed"
    answer = scan_pii(lake, tickets, "answer")
    assert answer.counts == {"EMAIL_ADDRESS": 1}
    scan_pii(lake, tickets, "subject")  # no PII: no class

    assert lake.dataset(tickets).info().classifications == {
        "body": "pii:mixed",
        "answer": "pii:email",
    }


def test_a_scan_for_some_entities_only_widens_the_class(lake: curata.Lake, tickets: str) -> None:
    assert scan_pii(lake, tickets, "body").classification == "pii:mixed"
    # Looking for e-mail addresses alone says nothing of the phone numbers found before.
    emails = scan_pii(lake, tickets, "body", entities="EMAIL_ADDRESS")
    assert emails.classification == "pii:mixed"

    lake.dataset(tickets).set(classifications={"body": "pii:phone"})
    assert scan_pii(lake, tickets, "body", entities="EMAIL_ADDRESS").classification == "pii:mixed"
    lake.dataset(tickets).set(classifications={"body": "pii:phone"})
    looked_for_both = scan_pii(lake, tickets, "body", entities="EMAIL_ADDRESS,PHONE_NUMBER")
    assert looked_for_both.classification == "pii:mixed"  # both found

    lake.dataset(tickets).set(classifications={"answer": "pii:phone"})
    # The scan looked for phone numbers and found none (the answers hold one e-mail address).
    answer = scan_pii(lake, tickets, "answer", entities="EMAIL_ADDRESS,PHONE_NUMBER")
    assert answer.classification == "pii:email"
    # A class only NER finds is not dropped by a scan without NER.
    lake.dataset(tickets).set(classifications={"answer": "pii:person"})
    assert scan_pii(lake, tickets, "answer").classification == "pii:mixed"


def test_scan_keeps_a_class_a_person_set(lake: curata.Lake, tickets: str) -> None:
    lake.dataset(tickets).set(classifications={"body": "confidential"})

    assert scan_pii(lake, tickets, "body").classification == "confidential"
    assert scan_pii(lake, tickets, "body", classify=False).classification is None
    assert lake.dataset(tickets).info().classifications["body"] == "confidential"


def test_public_names() -> None:
    from curata.quality import pii_lake

    public = {n for n in dir(pii_lake) if not n.startswith("_")}
    modules = {"redact", "reveal", "salt", "scan", "source", "annotations"}
    assert sorted(public - modules) == sorted(pii_lake.__all__)


def test_classification_names() -> None:
    assert classification_for(["PHONE_NUMBER"]) == "pii:phone"
    assert classification_for(["EMPLOYEE_ID"]) == "pii:employee_id"
    assert classification_for(["JWT", "PRIVATE_KEY"]) == "pii:credential"
    assert classification_for([]) is None


def test_scan_report_is_a_dataset_published_by_a_run(lake: curata.Lake, tickets: str) -> None:
    scan = scan_pii(lake, f"{tickets}@1", "body", entities="EMAIL_ADDRESS,PHONE_NUMBER")

    assert scan.report is not None and scan.report.ref == "tickets.pii_scan@1"
    report = lake.ref(scan.report.ref).to_arrow()
    rows = {r["entity"]: r for r in report.to_pylist()}
    assert set(rows) == {"EMAIL_ADDRESS", "PHONE_NUMBER"}
    assert rows["EMAIL_ADDRESS"]["spans"] == 9 and rows["PHONE_NUMBER"]["rows"] == 5
    assert {r["checked"] for r in rows.values()} == {"tickets@1"}
    assert lake.dataset_info("tickets.pii_scan").kind == "report"
    run = lake.run(scan.report.run_id)
    assert (run.status, run.inputs, run.outputs) == ("succeeded", ["tickets@1"], [scan.report.ref])
    assert run.metrics["rows_with_pii"] == 11
    up = lake.lineage(scan.report.ref, direction="up")
    assert "tickets@1" in {n.id for n in up.nodes}


def test_scan_lists_every_entity_looked_for(lake: curata.Lake, tickets: str) -> None:
    scan = scan_pii(lake, tickets, "subject")

    assert scan.counts == {} and scan.rows_with_pii == 0
    report = lake.ref(scan.report.ref).to_arrow()
    assert "CREDIT_CARD" in report.column("entity").to_pylist()
    assert set(report.column("spans").to_pylist()) == {0}
    assert "PERSON" not in scan.entities  # no NER asked for


def test_scan_with_custom_recognizers(lake: curata.Lake, tmp_path: Path) -> None:
    rules = tmp_path / "pii.yaml"
    rules.write_text(RULES)
    lake.create_dataset("staff")
    lake.dataset("staff").append({"note": ["ask E-123456", "nothing", None]})

    scan = scan_pii(lake, "staff", "note", recognizers_file=rules)

    assert scan.counts == {"EMPLOYEE_ID": 1}
    assert scan.examples[0].row == "#0" and scan.classification == "pii:employee_id"


def test_scan_refuses_bad_columns(lake: curata.Lake, tickets: str) -> None:
    with pytest.raises(InvalidInput, match="has no column 'bodyy'") as err:
        scan_pii(lake, tickets, "bodyy")
    assert "ticket_id" in (err.value.hint or "") and "body" in (err.value.hint or "")
    with pytest.raises(InvalidInput, match=r"created_at.*not text") as err:
        scan_pii(lake, tickets, "created_at")
    assert "subject" in (err.value.hint or "")
    with pytest.raises(InvalidInput, match="Unknown PII entity: EMAIL"):
        scan_pii(lake, tickets, "body", entities="EMAIL")
    with pytest.raises(NotFound):
        scan_pii(lake, "tickets@9", "body")
    assert not lake.has_dataset("tickets.pii_scan")


def test_scan_survives_binary_junk_and_a_100_mb_line(lake: curata.Lake) -> None:
    import random

    rnd = random.Random(7)
    junk = bytes(rnd.getrandbits(8) for _ in range(300_000)).decode("latin-1")
    huge = "plain words, no personal data. " * 3_300_000 + "mail ada@example.org"
    assert len(huge) > 100_000_000
    lake.create_dataset("odd")
    lake.dataset("odd").append({"text": [junk, "\x00\x01@\x00a@b.c\x00", huge, ""]})

    scan = scan_pii(lake, "odd", "text", entities=["EMAIL_ADDRESS"])

    assert scan.rows == 4
    last = [x for x in scan.examples if x.row_position == 2]
    assert [(x.start, x.end) for x in last] == [(len(huge) - 15, len(huge))]


# -- redact -------------------------------------------------------------------------------------


@pytest.mark.parametrize("operator", OPERATORS)
def test_redact_removes_every_value_and_audits_it(
    lake: curata.Lake, tickets: str, operator: str, tmp_path: Path
) -> None:
    key = generate_key_file(tmp_path / "pii.key") if operator == "encrypt" else None
    before = lake.ref(tickets).to_arrow()
    values = _values(before, "body")

    result = redact_pii(lake, tickets, "body", operator, key_file=key, message="clean")

    assert (result.read, result.version, result.audit) == (
        "tickets@1",
        "tickets@2",
        "tickets.pii_audit@1",
    )
    assert (result.rows, result.rows_redacted, result.counts) == (150, 11, SAMPLE_COUNTS)
    after = lake.ref(result.version).to_arrow().sort_by("ticket_id")
    bodies = "\n".join(after.column("body").to_pylist())
    assert values and not [v for v in values if v in bodies]
    assert after.drop_columns(["body"]) == before.sort_by("ticket_id").drop_columns(["body"])
    audit = lake.ref(result.audit).to_arrow()
    assert audit.num_rows == 14
    assert set(audit.column("operator").to_pylist()) == {operator}
    assert set(audit.column("published").to_pylist()) == {"tickets@2"}
    assert "T-1012" in audit.column("row_key").to_pylist()
    assert not [v for v in values if v in _dump(audit)]
    run = lake.run(result.run_id)
    assert run.inputs == ["tickets@1"]
    assert sorted(run.outputs) == ["tickets.pii_audit@1", "tickets@2"]
    assert lake.dataset(tickets).log()[0].message == "clean"


def test_redact_without_a_key_overwrites_and_names_rows_by_position(
    lake: curata.Lake, notes: str
) -> None:
    result = redact_pii(lake, notes, "body", "mask")

    assert result.version == "notes@2" and result.rows_redacted == 11
    after = lake.ref(result.version).to_arrow()
    assert after.num_rows == 150
    assert after.column("ticket_id") == _sample().column("ticket_id")
    audit = lake.ref(result.audit).to_arrow()
    assert set(audit.column("row_key").to_pylist()) == {None}
    assert 11 in audit.column("row_position").to_pylist()  # T-1012 is the 12th row


def test_redact_appends_to_the_audit_per_run(lake: curata.Lake, tickets: str) -> None:
    first = redact_pii(lake, tickets, "body", "replace", entities=["EMAIL_ADDRESS"])
    second = redact_pii(lake, tickets, "body", "mask")

    assert first.counts == {"EMAIL_ADDRESS": 9} and second.counts == {"PHONE_NUMBER": 5}
    assert (first.audit, second.audit) == ("tickets.pii_audit@1", "tickets.pii_audit@2")
    audit = lake.ref(second.audit).to_arrow()
    assert audit.num_rows == 14
    assert set(audit.column("run_id").to_pylist()) == {first.run_id, second.run_id}
    assert second.read == "tickets@2" and second.version == "tickets@3"
    # The column is classified by what was replaced: it held e-mail addresses, then phones too.
    assert (first.classification, second.classification) == ("pii:email", "pii:mixed")
    assert lake.dataset(tickets).info().classifications["body"] == "pii:mixed"
    assert redact_pii(lake, tickets, "body", "mask").classification is None  # nothing left


def test_hash_is_consistent_within_a_lake(lake: curata.Lake, tickets: str, notes: str) -> None:
    a = redact_pii(lake, tickets, "body", "hash")
    b = redact_pii(lake, notes, "body", "hash")

    hashed_a = lake.ref(a.version).to_arrow().sort_by("ticket_id").column("body")
    hashed_b = lake.ref(b.version).to_arrow().sort_by("ticket_id").column("body")
    assert hashed_a == hashed_b
    assert "<EMAIL_ADDRESS:" in "".join(hashed_a.to_pylist())
    salt = lake_salt_path(lake.uri)
    assert stat.S_IMODE(salt.stat().st_mode) == 0o600
    assert lake.run(a.run_id).params["salt_id"] == lake.run(b.run_id).params["salt_id"]
    assert salt.read_text().strip()[-16:] not in json.dumps(lake.run(a.run_id).params)


def test_another_salt_gives_other_hashes(lake: curata.Lake, tickets: str, notes: str) -> None:
    a = redact_pii(lake, tickets, "body", "pseudonymize")
    b = redact_pii(lake, notes, "body", "pseudonymize", salt="another secret")

    pseudo_a = lake.ref(a.version).to_arrow().sort_by("ticket_id").column("body")
    pseudo_b = lake.ref(b.version).to_arrow().sort_by("ticket_id").column("body")
    assert pseudo_a != pseudo_b


def test_encrypt_then_reveal(lake: curata.Lake, tickets: str, tmp_path: Path) -> None:
    key = generate_key_file(tmp_path / "pii.key")
    original = {r["ticket_id"]: r["body"] for r in _sample().to_pylist()}

    result = redact_pii(lake, tickets, "body", "encrypt", key_file=key)
    revealed = reveal_pii(lake, result.version, "body", key)

    assert revealed.column_names == ["ticket_id", "body"] and revealed.num_rows == 11
    assert {r["ticket_id"]: r["body"] for r in revealed.to_pylist()} == {
        k: original[k] for k in revealed.column("ticket_id").to_pylist()
    }
    assert reveal_pii(lake, result.version, "body", key, all_rows=True).num_rows == 150
    assert reveal_pii(lake, result.version, "body", key, limit=3).num_rows == 3
    assert lake.dataset(tickets).info().version == 2  # reveal publishes nothing


def test_reveal_with_another_key_names_the_row(
    lake: curata.Lake, tickets: str, tmp_path: Path
) -> None:
    key = generate_key_file(tmp_path / "pii.key")
    other = generate_key_file(tmp_path / "other.key")
    result = redact_pii(lake, tickets, "body", "encrypt", key_file=key)

    with pytest.raises(InvalidInput, match=r"Row key 'T-1012' of tickets@2: .*does not decrypt"):
        reveal_pii(lake, result.version, "body", other)
    with pytest.raises(NotFound, match="does not exist"):
        reveal_pii(lake, result.version, "body", tmp_path / "missing.key")


def test_encrypt_needs_a_key_file(lake: curata.Lake, tickets: str) -> None:
    with pytest.raises(InvalidInput, match="needs a key file") as err:
        redact_pii(lake, tickets, "body", "encrypt")
    assert "curata pii keygen" in (err.value.hint or "")
    with pytest.raises(InvalidInput, match="Unknown redaction operator 'blur'"):
        redact_pii(lake, tickets, "body", "blur")
    with pytest.raises(InvalidInput, match="'ticket_id' is the key of 'tickets'"):
        redact_pii(lake, tickets, "ticket_id", "mask")
    assert lake.runs() == []  # refused before anything ran


def test_nothing_to_redact_publishes_nothing(lake: curata.Lake, tickets: str, notes: str) -> None:
    for name in (tickets, notes):
        result = redact_pii(lake, name, "subject", "replace")
        assert (result.version, result.audit, result.rows) == (None, None, 150)
        assert lake.dataset(name).info().version == 1
        assert lake.run(result.run_id).status == "succeeded"
    assert not lake.has_dataset("tickets.pii_audit")


def _many_emails(lake: curata.Lake, name: str, key: str | None) -> None:
    rows = 1500
    lake.create_dataset(name, key=key)
    lake.dataset(name).append(
        {"id": list(range(rows)), "text": [f"write to user{i}@example.com" for i in range(rows)]}
    )


@pytest.mark.parametrize("key", ["id", None])
def test_a_redaction_failing_midway_publishes_nothing(
    lake: curata.Lake, monkeypatch: pytest.MonkeyPatch, key: str | None
) -> None:
    _many_emails(lake, "mails", key)
    calls = 0
    real = redact_module.redact_text

    def failing(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        if calls == 1000:
            raise RuntimeError("disk on fire")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(redact_module, "redact_text", failing)

    with pytest.raises(RuntimeError, match="disk on fire"):
        redact_pii(lake, "mails", "text", "replace")

    assert lake.dataset("mails").info().version == 1
    assert "user5@example.com" in lake.ref("mails").to_arrow().column("text")[5].as_py()
    assert not lake.has_dataset("mails.pii_audit")
    (run,) = lake.runs(job="pii_redact:mails")
    assert (run.status, run.outputs) == ("failed", [])
    assert "disk on fire" in (run.error or "")


def test_a_write_during_the_redaction_is_a_conflict(
    lake: curata.Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    _many_emails(lake, "mails", "id")
    real = redact_module.redact_text
    written = []

    def concurrent(*args: object, **kwargs: object) -> object:
        if not written:  # someone publishes while the redaction reads
            written.append(lake.dataset("mails").append({"id": [-1], "text": ["new@example.com"]}))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(redact_module, "redact_text", concurrent)

    with pytest.raises(Conflict, match="read at mails@1, its head is now mails@2"):
        redact_pii(lake, "mails", "text", "replace")
    assert lake.dataset("mails").info().version == 2


def test_scan_with_ner_reads_texts_longer_than_spacy_takes(
    lake: curata.Lake, tmp_path: Path
) -> None:
    # A real spaCy pipeline loaded from a folder; an entity ruler stands in for a model.
    spacy = pytest.importorskip("spacy")
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns([{"label": "PERSON", "pattern": "Maria Keller"}])
    nlp.to_disk(tmp_path / "model")
    filler = "the weather was fine and nothing happened.\n" * 12_000  # 2 x 0.5 M characters
    long = f"Maria Keller wrote: {filler}Maria Keller again {filler}signed, Maria Keller"
    lake.create_dataset("letters")
    lake.dataset("letters").append({"text": [long, "no names", "Maria Keller"]})

    scan = scan_pii(lake, "letters", "text", ner=f"spacy:{tmp_path / 'model'}", entities="PERSON")

    assert scan.counts == {"PERSON": 4} and scan.rows_with_pii == 2
    assert {long[x.start : x.end] for x in scan.examples} == {"Maria Keller"}
    assert [x.start for x in scan.examples if x.row_position == 0] == [
        0,
        long.index("Maria Keller again"),
        len(long) - len("Maria Keller"),
    ]
    assert scan.classification == "pii:person"
