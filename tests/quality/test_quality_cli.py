"""``curata check`` and ``curata bias`` as a user types them, on a small app of their own (the
commands are registered in ``curata.cli`` separately)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
import pytest
import typer
from typer.testing import CliRunner

import curata
from curata.cli import quality_cmds
from curata.cli.common import LakeContext
from curata.errors import CurataError
from curata.formats import read_table

REPO = Path(__file__).resolve().parents[2]
TICKET_RULES = REPO / "examples" / "rules" / "tickets.dqdl"
CHROMIUM = Path("/usr/bin/chromium")

app = typer.Typer(pretty_exceptions_enable=False, rich_markup_mode=None)


@app.callback()
def _root(ctx: typer.Context, lake: Annotated[str, typer.Option("--lake")]) -> None:
    ctx.obj = LakeContext(lake)
    ctx.call_on_close(ctx.obj.close)


app.command("check")(quality_cmds.check)
app.command("bias")(quality_cmds.bias)


@dataclass
class Result:
    exit_code: int
    stdout: str
    error: str  # what `curata` prints for a CurataError: message and hint

    def json(self) -> Any:
        return json.loads(self.stdout)


@pytest.fixture
def run(lake: curata.Lake) -> Any:
    """``curata --lake LAKE ARGS...``; a CurataError exits with its code, as in curata.cli.main."""
    runner = CliRunner()

    def invoke(*args: str, code: int = 0, columns: int = 200) -> Result:
        out = runner.invoke(app, ["--lake", lake.uri, *args], env={"COLUMNS": str(columns)})
        exit_code, error = out.exit_code, ""
        if isinstance(out.exception, CurataError):
            exit_code, error = out.exception.exit_code, str(out.exception)
        elif out.exception is not None and not isinstance(out.exception, SystemExit):
            raise out.exception
        result = Result(exit_code, out.stdout, error)
        assert exit_code == code, f"{args}: exit {exit_code}\n{out.stdout}\n{error}"
        return result

    return invoke


@pytest.fixture
def tickets(lake: curata.Lake) -> str:
    table = read_table(Path(str(resources.files("curata.samples"))) / "tickets.csv")
    lake.create_dataset("tickets", key="ticket_id")
    lake.dataset("tickets").append(table)
    return "tickets"


PASSING = """Rules = [
    RowCount = 150,
    IsPrimaryKey "ticket_id",
    ColumnValues "priority" in ["low", "normal", "high", "urgent"]
]
"""


def test_check_passes_with_exit_code_0(run: Any, tickets: str, tmp_path: Path) -> None:
    rules = tmp_path / "ok.dqdl"
    rules.write_text(PASSING)
    out = run("check", tickets, "--rules", str(rules)).stdout
    assert out.count("PASS") == 3 and "FAIL" not in out
    assert "score 1.00" in out and "3 passed, 0 failed, 0 errors of 3 rules on 150 rows" in out
    assert "stored as tickets.check@1" in out


def test_check_fails_with_exit_code_1_and_json_names_the_report(
    run: Any, tickets: str, lake: curata.Lake
) -> None:
    data = run("check", tickets, "--rules", str(TICKET_RULES), "--json", code=1).json()
    assert data["checked"] == "tickets@1" and data["report"] == "tickets.check@1"
    assert data["score"] == pytest.approx(12 / 13) and (data["passed"], data["failed"]) == (12, 1)
    assert set(data["rules"][0]) == {"rule", "outcome", "metrics", "message"}
    failed = [r for r in data["rules"] if r["outcome"] != "PASS"]
    assert [r["rule"] for r in failed] == ['PiiCount "body" = 0']
    assert failed[0]["metrics"]["Column.body.PiiCount"] > 0
    assert lake.run(data["run_id"]).outputs == ["tickets.check@1"] and data["report_created"]
    again = run("check", tickets, "--rules", str(TICKET_RULES), "--json", code=1).json()
    assert (again["report"], again["report_created"]) == ("tickets.check@1", False)
    assert again["run_id"] != data["run_id"]
    assert lake.run(again["run_id"]).outputs == ["tickets.check@1"]

    text = run("check", tickets, "--rules", str(TICKET_RULES), code=1).stdout
    assert "PiiCount" in text and "FAIL" in text and "score 0.92" in text
    assert "same as tickets.check@1, which this check confirms" in text  # nothing changed
    assert [c.ref for c in lake.dataset("tickets.check").log()] == ["tickets.check@1"]


def test_no_store_prints_without_writing(run: Any, tickets: str, lake: curata.Lake) -> None:
    data = run("check", tickets, "-r", str(TICKET_RULES), "--json", "--no-store", code=1).json()
    assert data["report"] is None and not lake.has_dataset("tickets.check")


def test_rules_that_error_exit_1_and_unusable_rules_exit_2(
    run: Any, tickets: str, tmp_path: Path, lake: curata.Lake
) -> None:
    some = tmp_path / "some.dqdl"
    some.write_text('Rules = [ RowCount > 0, IsComplete "bdy" ]')
    out = run("check", tickets, "--rules", str(some), code=1).stdout
    assert "ERROR" in out and "'bdy' does not exist" in out

    none = tmp_path / "none.dqdl"
    none.write_text('Rules = [ IsComplete "bdy" ]')
    result = run("check", tickets, "--rules", str(none), code=2)
    assert "No rule of" in result.error and "ticket_id, created_at" in result.error

    syntax = tmp_path / "syntax.dqdl"
    syntax.write_text('Rules = [\n  RowCount > 0\n  IsComplete "body"\n]\n')
    result = run("check", tickets, "--rules", str(syntax), code=2)
    assert f"{syntax}:3:3:" in result.error and "expected" in result.error

    result = run("check", tickets, "--rules", str(tmp_path / "gone.dqdl"), code=2)
    assert "gone.dqdl does not exist" in result.error
    result = run("check", tickets, "--rules", str(tmp_path), code=2)
    assert f"{tmp_path} is a folder, not a rules file" in result.error
    latin = tmp_path / "latin.dqdl"
    latin.write_bytes('Rules = [\n  ColumnValues "status" in ["geöffnet"]\n]\n'.encode("latin-1"))
    result = run("check", tickets, "--rules", str(latin), code=2)
    assert f"{latin}:2: not UTF-8 text" in result.error
    assert "Save the rules file as UTF-8" in result.error
    result = run("check", "tickest", "--rules", str(some), code=2)
    assert "Did you mean: tickets" in result.error
    assert lake.dataset("tickets.check").log()[0].ref == "tickets.check@1"


def test_check_html_report_names_rules_and_score(run: Any, tickets: str, tmp_path: Path) -> None:
    page = tmp_path / "check.html"
    out = run("check", tickets, "--rules", str(TICKET_RULES), "--html", str(page), code=1).stdout
    assert f"HTML report: {page}" in out
    html = page.read_text()
    assert "Check of tickets@1" in html and "<b>0.92</b><span>score</span>" in html
    assert "PiiCount &quot;body&quot; = 0" in html and "IsPrimaryKey" in html
    assert "<script" not in html and "http" not in html.split("</style>")[0]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed at /usr/bin/chromium")
def test_check_html_report_renders_in_a_browser(run: Any, tickets: str, tmp_path: Path) -> None:
    import pypdfium2 as pdfium

    page, pdf = tmp_path / "check.html", tmp_path / "check.pdf"
    run("check", tickets, "--rules", str(TICKET_RULES), "--html", str(page), code=1)
    subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    document = pdfium.PdfDocument(str(pdf))
    text = " ".join(document[i].get_textpage().get_text_range() for i in range(len(document)))
    words = " ".join(text.split())
    assert "Check of tickets@1" in words
    assert "FAIL 0.92 score" in words  # the badge, then the score figure
    assert 'PiiCount "body" = 0 FAIL PiiCount of body is' in words


# Measures, in the page as a browser lays it out, the chart labels that start left of the chart.
LABEL_PROBE = """<script>
const cut = [...document.querySelectorAll("svg text")]
  .filter(t => t.getBBox().x < 0).map(t => t.textContent);
document.body.dataset.cut = JSON.stringify(cut);
</script></body>"""


@pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed at /usr/bin/chromium")
def test_check_html_chart_labels_fit_in_a_browser(run: Any, tickets: str, tmp_path: Path) -> None:
    page = tmp_path / "check.html"
    run("check", tickets, "--rules", str(TICKET_RULES), "--html", str(page), code=1)
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", LABEL_PROBE))

    dom = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", probe.as_uri()],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip

    assert 'data-cut="[]"' in dom, dom[dom.find("data-cut") :][:300]


def test_bias_text_json_and_html(run: Any, tickets: str, tmp_path: Path) -> None:
    out = run("bias", tickets, "--column", "body").stdout
    assert "female" in out and "male" in out and "50.0%" in out
    assert "representation ratio (least / most mentioned): 1.00" in out
    assert "stored as tickets.bias@1" in out

    page = tmp_path / "bias.html"
    data = run(
        "bias", tickets, "--label", "status", "--facet", "language", "--positive", "solved",
        "--positive", "pending", "--json", "--html", str(page),
    ).json()  # fmt: skip
    assert data["representation"] is None and data["report"] == "tickets.bias@2"
    assert data["report_created"] is True and len(data["run_id"]) == 32
    labels = data["labels"]
    assert labels["positive"] == ["solved", "pending"] and labels["rows"] == 150
    en = labels["facets"][0]
    assert (en["value"], en["n_d"], en["n_a"]) == ("en", 117, 33)
    assert en["ci"] == pytest.approx((33 - 117) / 150)
    html = page.read_text()
    assert "Bias of tickets@1" in html and "by language" in html and "DPL" in html
    # Plots of the facet: rows per value (class imbalance), positive share (DPL).
    rows_chart = html.split("Rows per value of language")[1].split("</svg>")[0]
    assert rows_chart.count("<rect") == 4 and ">117</text>" in rows_chart
    share_chart = html.split("Share of positive status per value of language")[1]
    assert share_chart.split("</svg>")[0].count("<rect") == 4


def test_bias_label_metrics_on_a_small_labeled_dataset(run: Any, lake: curata.Lake) -> None:
    lake.create_dataset("loans")
    lake.dataset("loans").append(
        pa.table({"gender": ["f"] * 4 + ["m"] * 6, "approved": [1, 0, 0, 0, 1, 1, 1, 0, 0, 0]})
    )
    out = run("bias", "loans", "--label", "approved", "--facet", "gender", "--positive", "1")
    lines = {line.split("│")[1].strip(): line for line in out.stdout.splitlines() if "│" in line}
    cells = [c.strip() for c in lines["f"].split("│")[1:-1]]
    assert cells[:5] == ["f", "4", "6", "0.200", "0.250"]  # value, n_d, n_a, CI, DPL


def test_bias_at_80_columns_keeps_facet_values_and_metrics_whole(
    run: Any, lake: curata.Lake
) -> None:
    region = ["enterprise"] * 4 + ["small-business"] * 6
    lake.create_dataset("accounts")
    lake.dataset("accounts").append(
        pa.table({"region": region, "renewed": [1, 0, 0, 0, 1, 1, 1, 0, 0, 0]})
    )
    args = ("bias", "accounts", "--label", "renewed", "--facet", "region", "--positive", "1")
    out = run(*args, columns=80).stdout
    for value in ("enterprise", "small-business", "-0.200", "-0.250", "0.131", "0.144"):
        assert value in out, out
    assert "…" not in out and max(map(len, out.splitlines())) <= 80, out


def test_bias_input_that_cannot_be_used_exits_2(run: Any, tickets: str) -> None:
    assert "Nothing to measure" in run("bias", tickets, code=2).error
    assert "both a label column and a facet" in run("bias", tickets, "--label", "x", code=2).error
    result = run("bias", tickets, "--label", "status", "--facet", "language", code=2)
    assert "Which values of 'status' are positive" in result.error and "solved" in result.error
    assert "has no column 'text'" in run("bias", tickets, "--column", "text", code=2).error
