"""``curata pii ...`` as a user runs it: output, exit codes, files written, errors."""

from __future__ import annotations

import importlib.util
import json
import re
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pytest
import typer

import curata
from curata.cli import output
from curata.errors import CurataError
from curata.formats import read_table

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
CHROMIUM = Path("/usr/bin/chromium")


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> object:
        return json.loads(self.stdout)

    @property
    def error(self) -> str:
        return " ".join(self.stderr.split())


Cli = Callable[..., Result]


def _app() -> typer.Typer:
    """``curata`` with ``pii`` registered: the real app once it lists ``pii``, else the same
    root (``--lake``) with this group added, run the way ``curata.cli.main`` runs it."""
    from curata import cli
    from curata.cli import pii_cmds

    if any(group.name == "pii" for group in cli.app.registered_groups):
        return cli.app
    app = typer.Typer(pretty_exceptions_enable=False, rich_markup_mode=None)
    app.callback()(cli.root)
    app.add_typer(pii_cmds.app, name="pii")
    return app


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    app = _app()

    def run(*args: str, code: int = 0) -> Result:
        capsys.readouterr()
        try:
            app(args=list(args), prog_name="curata")
            exit_code = 0
        except SystemExit as exit_:
            exit_code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
        except CurataError as err:  # what curata.cli.main does
            output.print_error(err)
            exit_code = err.exit_code
        out, err_text = capsys.readouterr()
        result = Result(exit_code, _ANSI.sub("", out), _ANSI.sub("", err_text))
        assert result.exit_code == code, f"curata {' '.join(args)}\n{out}\n{err_text}"
        return result

    return run


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory, holding a lake whose ``tickets@1`` is the bundled sample."""
    folder = tmp_path / "project"
    monkeypatch.chdir(tmp_path)
    sample = read_table(Path(str(resources.files("curata.samples"))) / "tickets.csv")
    with curata.init(str(folder)) as lake:
        lake.create_dataset("tickets", key="ticket_id")
        lake.dataset("tickets").append(sample, message="import")
    monkeypatch.chdir(folder)
    return folder


def test_scan_prints_counts_and_says_ner_is_off(cli: Cli, project: Path) -> None:
    out = cli("pii", "scan", "tickets", "--column", "body").stdout

    assert "tickets@1 column body: 150 rows scanned, 11 with PII (7.3%)." in out
    assert re.search(r"EMAIL_ADDRESS\s+9 in 9 rows", out)
    assert re.search(r"PHONE_NUMBER\s+5 in 5 rows", out)
    assert "T-1012  EMAIL_ADDRESS  [207, 233)" in out
    assert "hannah.fischer@example.com" not in out
    assert "Column class: body = pii:mixed" in out
    assert "Report: tickets.pii_scan@1" in out
    assert "PERSON, LOCATION, ORGANIZATION) were not looked for" in out
    assert "--ner spacy:en_core_web_sm" in out

    again = cli("pii", "scan", "tickets", "--column", "body").stdout
    assert re.search(r"Report: tickets.pii_scan@1, the same as before \(run \w{8}\)", again)


def test_scan_json(cli: Cli, project: Path) -> None:
    data = cli("pii", "scan", "tickets@1", "-c", "body", "--entities", "email_address", "--json")
    result = data.json()

    assert isinstance(result, dict)
    assert result["counts"] == {"EMAIL_ADDRESS": 9}
    assert (result["rows"], result["rows_with_pii"]) == (150, 9)
    assert result["report"] == "tickets.pii_scan@1" and result["entities"] == ["EMAIL_ADDRESS"]
    assert result["classification"] == "pii:email" and result["report_created"] is True
    again = cli("pii", "scan", "tickets@1", "-c", "body", "--entities", "email_address", "--json")
    assert (again.json()["report"], again.json()["report_created"]) == ("tickets.pii_scan@1", False)


def test_scan_can_fail_ci(cli: Cli, project: Path) -> None:
    cli("pii", "scan", "tickets", "-c", "body", "--fail-on-pii", code=1)
    cli("pii", "scan", "tickets", "-c", "subject", "--fail-on-pii")


def test_scan_no_store_writes_nothing(cli: Cli, project: Path) -> None:
    out = cli("pii", "scan", "tickets", "-c", "body", "--no-store", "--json").json()
    assert isinstance(out, dict) and out["counts"] == {"EMAIL_ADDRESS": 9, "PHONE_NUMBER": 5}
    assert (out["report"], out["classification"]) == (None, None)
    with curata.open(str(project)) as lake:
        assert not lake.has_dataset("tickets.pii_scan") and lake.runs() == []
        assert lake.dataset("tickets").info().classifications == {}


def test_scan_bad_input(cli: Cli, project: Path) -> None:
    missing = cli("pii", "scan", "tickets", "-c", "text", code=2).error
    assert "tickets@1 has no column 'text'" in missing and "ticket_id, created_at" in missing
    typed = cli("pii", "scan", "tickets", "-c", "created_at", code=2).error
    assert "not text" in typed and "Text columns: ticket_id" in typed
    assert "Known entities" in cli("pii", "scan", "tickets", "-c", "body", "--entities", "NAME",
                                   code=2).error  # fmt: skip
    ner = cli("pii", "scan", "tickets", "-c", "body", "--ner", "spacy:no_such_model", code=2)
    assert "python -m spacy download no_such_model" in ner.error
    assert "Unknown NER engine" in cli("pii", "scan", "tickets", "-c", "body", "--ner", "flair",
                                       code=2).error  # fmt: skip
    cli("pii", "scan", "tickets", "-c", "body", "--threshold", "1.5", code=2)
    assert "nope" in cli("pii", "scan", "nope", "-c", "body", code=2).error


def _html(cli: Cli, project: Path) -> Path:
    page = project / "scan.html"
    cli("pii", "scan", "tickets", "-c", "body", "--html", str(page))
    return page


def test_scan_writes_an_html_report(cli: Cli, project: Path) -> None:
    page = _html(cli, project).read_text()

    assert "PII scan of tickets@1" in page
    assert "EMAIL_ADDRESS" in page and "PHONE_NUMBER" in page and "T-1012" in page
    assert "7.3%" in page
    assert "@example.com" not in page


@pytest.mark.skipif(not CHROMIUM.is_file(), reason="Debian's chromium is not installed")
def test_the_html_report_renders_in_a_browser(cli: Cli, project: Path, tmp_path: Path) -> None:
    pypdf = pytest.importorskip("pypdf")
    page = _html(cli, project)
    pdf = tmp_path / "scan.pdf"

    subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
         f"--user-data-dir={tmp_path / 'profile'}", "--no-pdf-header-footer",
         f"--print-to-pdf={pdf}", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip

    text = " ".join(p.extract_text() for p in pypdf.PdfReader(pdf).pages)
    words = " ".join(text.split())
    assert "PII scan of tickets@1" in words
    assert "rows with PII" in words and "7.3%" in words
    assert "EMAIL_ADDRESS" in words and "PHONE_NUMBER" in words  # the bar chart's labels
    assert "T-1012" in words
    assert "example.com" not in words


def test_redact_prints_the_new_version(cli: Cli, project: Path) -> None:
    out = cli("pii", "redact", "tickets", "-c", "body", "--operator", "mask", "-m", "mask").stdout

    assert "tickets@2  upsert: 11 updated (body)" in out
    assert "Redacted 14 values (EMAIL_ADDRESS 9, PHONE_NUMBER 5) in 11 of 150 rows" in out
    assert "Audit: tickets.pii_audit@1" in out
    rescan = cli("pii", "scan", "tickets", "-c", "body", "--json").json()
    assert isinstance(rescan, dict) and rescan["counts"] == {}


def test_redact_json_and_nothing_to_do(cli: Cli, project: Path) -> None:
    data = cli("pii", "redact", "tickets", "-c", "body", "-o", "hash", "--json").json()
    assert isinstance(data, dict)
    assert (data["version"], data["audit"], data["redactions"]) == (
        "tickets@2",
        "tickets.pii_audit@1",
        14,
    )
    again = cli("pii", "redact", "tickets", "-c", "body", "-o", "hash").stdout
    assert "No PII found in tickets@2 column body (150 rows); no version published." in again
    assert (project / ".curata" / "secrets" / "pii_salt").is_file()


def test_redact_bad_input(cli: Cli, project: Path) -> None:
    no_key = cli("pii", "redact", "tickets", "-c", "body", "-o", "encrypt", code=2).error
    assert "needs a key file" in no_key and "curata pii keygen FILE" in no_key
    missing = cli("pii", "redact", "tickets", "-c", "body", "-o", "encrypt", "--key-file",
                  "nope.key", code=2).error  # fmt: skip
    assert "Key file nope.key does not exist" in missing and "curata pii keygen FILE" in missing
    assert "Use one of: replace, mask" in cli("pii", "redact", "tickets", "-c", "body", "-o",
                                              "blur", code=2).error  # fmt: skip
    assert "has no column" in cli("pii", "redact", "tickets", "-c", "nope", "-o", "mask",
                                  code=2).error  # fmt: skip
    with curata.open(str(project)) as lake:
        assert lake.dataset("tickets").info().version == 1


def test_keygen_encrypt_reveal(cli: Cli, project: Path, tmp_path: Path) -> None:
    key = tmp_path / "pii.key"
    assert "Keep it apart from the data" in cli("pii", "keygen", str(key)).stdout
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "exists already" in cli("pii", "keygen", str(key), code=2).error

    cli("pii", "redact", "tickets", "-c", "body", "-o", "encrypt", "--key-file", str(key))

    shown = cli("pii", "reveal", "tickets@2", "-c", "body", "--key-file", str(key)).stdout
    assert "tickets@2, column body: 11 rows with encrypted values" in shown
    assert re.search(r"^T-1012  .*hannah\.fischer@example\.com or on \+1 206 555 0126", shown, re.M)
    rows = cli("pii", "reveal", "tickets", "-c", "body", "--key-file", str(key), "--json").json()
    assert isinstance(rows, list) and len(rows) == 11
    assert rows[0]["body"].count("⟦enc:") == 0
    exported = tmp_path / "revealed.jsonl"
    cli("pii", "reveal", "tickets", "-c", "body", "--key-file", str(key), "--all",
        "--output", str(exported))  # fmt: skip
    lines = exported.read_text().splitlines()
    assert len(lines) == 150 and "hannah.fischer@example.com" in exported.read_text()
    limited = cli("pii", "reveal", "tickets", "-c", "body", "--key-file", str(key), "--limit",
                  "2", "--json").json()  # fmt: skip
    assert isinstance(limited, list) and len(limited) == 2
    with curata.open(str(project)) as lake:
        assert lake.dataset("tickets").info().version == 2  # reveal published nothing


def test_reveal_with_the_wrong_key(cli: Cli, project: Path, tmp_path: Path) -> None:
    key, other = tmp_path / "pii.key", tmp_path / "other.key"
    cli("pii", "keygen", str(key))
    cli("pii", "keygen", str(other))
    cli("pii", "redact", "tickets", "-c", "body", "-o", "encrypt", "--key-file", str(key))

    wrong = cli("pii", "reveal", "tickets", "-c", "body", "--key-file", str(other), code=2)
    assert "Row key 'T-1012' of tickets@2" in wrong.error
    assert "does not decrypt with this key" in wrong.error
    bad = tmp_path / "bad.key"
    bad.write_text("hello")
    assert "not a curata key file" in cli("pii", "reveal", "tickets", "-c", "body",
                                          "--key-file", str(bad), code=2).error  # fmt: skip


def test_entities(cli: Cli) -> None:
    data = cli("pii", "entities", "--json").json()
    assert isinstance(data, dict)
    kinds = {e["entity"]: e["detected_by"] for e in data["entities"]}
    assert kinds["EMAIL_ADDRESS"] == "pattern" and kinds["PERSON"] == "ner"
    assert data["spacy_installed"] == (importlib.util.find_spec("spacy") is not None)
    assert data["en_core_web_sm"] == (importlib.util.find_spec("en_core_web_sm") is not None)
    text = cli("pii", "entities").stdout
    assert "CREDIT_CARD" in text and "NER:" in text
