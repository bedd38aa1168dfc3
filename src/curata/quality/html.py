"""Self-contained HTML reports: one file, no scripts, no fonts or styles fetched from anywhere.

A report is a title and a list of blocks — a summary of key figures, bar charts (inline SVG)
and tables — so every quality command renders its result the same way::

    page = render_html(
        "PII scan of tickets@3",
        [
            Summary([("rows", "150"), ("rows with PII", "12")], status="FAIL"),
            Bars("Entities found", ["EMAIL_ADDRESS", "PHONE_NUMBER"], [9, 4]),
            Table("Rules", ["rule", "outcome"], [["RowCount > 10", "PASS"]]),
        ],
    )
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from curata.errors import InvalidInput

BAR_HEIGHT = 22
LABEL_WIDTH = 280
CHART_WIDTH = 680
STATUS_COLOURS = {"PASS": "#1a7f37", "FAIL": "#cf222e", "ERROR": "#9a6700", "WARN": "#9a6700"}


@dataclass(frozen=True)
class Summary:
    """Key figures shown as large numbers, and an overall status badge."""

    items: list[tuple[str, str]]
    status: str | None = None


@dataclass(frozen=True)
class Bars:
    """A horizontal bar chart: one bar per label."""

    title: str
    labels: list[str]
    values: list[float]
    unit: str = ""
    #: optional per-bar status (PASS/FAIL/...) that colours the bar
    statuses: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Table:
    """A table; cells equal to PASS/FAIL/ERROR/WARN are coloured."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str = ""


@dataclass(frozen=True)
class Text:
    """A paragraph of explanation."""

    text: str


Block = Summary | Bars | Table | Text

_STYLE = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:60rem;padding:0 1rem;color:#1f2328}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem}
.sub{color:#59636e;margin-top:0}
.summary{display:flex;flex-wrap:wrap;gap:1rem;margin:1.2rem 0}
.fig{border:1px solid #d1d9e0;border-radius:6px;padding:.6rem 1rem;min-width:8rem}
.fig b{display:block;font-size:1.4rem}.fig span{color:#59636e;font-size:.85rem}
.badge{color:#fff;border-radius:6px;padding:.3rem .8rem;font-weight:600;align-self:center}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border-bottom:1px solid #d1d9e0;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#59636e;font-size:.85rem}svg text{font:12px system-ui,sans-serif}
"""


def render_html(title: str, blocks: list[Block], *, subtitle: str = "") -> str:
    """The whole HTML page for a report."""
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    sub = f"{escape(subtitle)} · " if subtitle else ""
    body = "\n".join(_block(b) for b in blocks)
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        f"<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1><p class=sub>{sub}made by curata, {made}</p>\n"
        f"{body}\n</body></html>\n"
    )


def write_html(path: str | Path, title: str, blocks: list[Block], *, subtitle: str = "") -> Path:
    """Write the report to ``path`` (its folder must exist); returns the path.

    Raises:
        InvalidInput: the file cannot be written.
    """
    target = Path(path)
    try:
        target.write_text(render_html(title, blocks, subtitle=subtitle), encoding="utf-8")
    except OSError as err:
        raise InvalidInput(f"Cannot write the HTML report to {target}: {err.strerror}.") from err
    return target


def _block(block: Block) -> str:
    if isinstance(block, Summary):
        return _summary(block)
    if isinstance(block, Bars):
        return _bars(block)
    if isinstance(block, Table):
        return _table(block)
    return f"<p>{escape(block.text)}</p>"


def _summary(block: Summary) -> str:
    figures = "".join(
        f"<div class=fig><b>{escape(value)}</b><span>{escape(name)}</span></div>"
        for name, value in block.items
    )
    badge = ""
    if block.status:
        colour = STATUS_COLOURS.get(block.status.upper(), "#59636e")
        badge = f"<div class=badge style='background:{colour}'>{escape(block.status)}</div>"
    return f"<div class=summary>{badge}{figures}</div>"


def _bars(block: Bars) -> str:
    if not block.labels:
        return f"<h2>{escape(block.title)}</h2><p class=note>Nothing to show.</p>"
    top = max(*block.values, 0) or 1.0
    height = BAR_HEIGHT * len(block.labels) + 8
    rows = []
    for i, (label, value) in enumerate(zip(block.labels, block.values, strict=True)):
        y = 4 + i * BAR_HEIGHT
        width = max(0.0, value) / top * (CHART_WIDTH - LABEL_WIDTH - 90)
        status = block.statuses[i] if i < len(block.statuses) else ""
        colour = STATUS_COLOURS.get(status.upper(), "#0969da")
        shown = f"{value:,.4g}{block.unit}" if isinstance(value, float) else f"{value:,}"
        rows.append(
            f"<text x={LABEL_WIDTH - 6} y={y + 15} text-anchor=end>{escape(_short(label))}"
            f"<title>{escape(label)}</title></text>"
            f"<rect x={LABEL_WIDTH} y={y + 3} width={width:.1f} height={BAR_HEIGHT - 6} "
            f"fill='{colour}' rx=2></rect>"
            f"<text x={LABEL_WIDTH + width + 6:.1f} y={y + 15}>{escape(shown)}</text>"
        )
    return (
        f"<h2>{escape(block.title)}</h2><svg role=img width={CHART_WIDTH} height={height} "
        f"viewBox='0 0 {CHART_WIDTH} {height}'>{''.join(rows)}</svg>"
    )


def _short(label: str, limit: int = 32) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _table(block: Table) -> str:
    head = "".join(f"<th>{escape(str(c))}</th>" for c in block.columns)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in block.rows)
    note = f"<p class=note>{escape(block.note)}</p>" if block.note else ""
    return f"<h2>{escape(block.title)}</h2><table><tr>{head}</tr>{body}</table>{note}"


def _cell(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return f"<td>{escape(str(value))}</td>"
    if isinstance(value, int | float):
        text = f"{value:,}" if isinstance(value, int) else f"{value:,.4g}"
        return f"<td class=num>{text}</td>"
    text = str(value)
    colour = STATUS_COLOURS.get(text.upper())
    if colour:
        return f"<td style='color:{colour};font-weight:600'>{escape(text)}</td>"
    return f"<td>{escape(text)}</td>"
