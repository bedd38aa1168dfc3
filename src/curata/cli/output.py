"""How the CLI talks: rich tables and messages on a terminal, plain JSON with ``--json``."""

from __future__ import annotations

import base64
import json
import math
import sys
from datetime import date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    import pyarrow as pa

    from curata.errors import CurataError

# Soft wrap: text is never broken into lines by curata (a path or a message piped to a log
# stays whole; a terminal wraps it by itself). Tables still fit the width.
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)
MAX_CELL = 60


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return str(value)


def print_json(data: Any) -> None:
    """Write ``data`` as JSON to stdout (nothing else goes to stdout in --json mode).

    NaN and infinities, which JSON cannot say, are written as null.
    """
    try:
        text = json.dumps(data, default=_default, ensure_ascii=False, indent=2, allow_nan=False)
    except ValueError:
        text = json.dumps(_finite(data), default=_default, ensure_ascii=False, indent=2)
    sys.stdout.write(text + "\n")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def rows_json(table: pa.Table) -> list[dict[str, Any]]:
    """A table as a list of row objects."""
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def cell(value: Any) -> str:
    """A value shortened for a terminal table."""
    text = "" if value is None else str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def plain(value: Any) -> Text:
    """User text for a table: shown as it is, never read as rich markup (think "[/INST]")."""
    return Text("" if value is None else str(value))


def print_table(table: pa.Table, title: str | None = None) -> None:
    """Render an Arrow table on the terminal: as a table when it fits the width, else one
    record per row, a line per column (a ten-column table squeezed into 80 characters breaks
    every value into pieces of five)."""
    names = table.column_names
    rows = [[cell(row[c]) for c in names] for row in table.to_pylist()]
    if not _fits(names, rows):
        _print_as_records(names, rows, title)
        return
    out = Table(title=plain(title) if title else None, show_lines=False, header_style="bold")
    for name in names:
        out.add_column(plain(name), overflow="fold")
    for values in rows:
        out.add_row(*(plain(v) for v in values))
    console.print(out)


# A column narrower than this, once the table is fitted to the terminal, is hard to read.
_MIN_COLUMN = 12


def _fits(names: list[str], rows: list[list[str]]) -> bool:
    """Whether every column gets its widest value, or at least _MIN_COLUMN characters."""
    if len(names) <= 2:
        return True
    widths = [max([len(n), *(len(r[i]) for r in rows)]) for i, n in enumerate(names)]
    needed = sum(min(w, _MIN_COLUMN) + 3 for w in widths) + 1  # borders and padding
    return needed <= console.width


def _print_as_records(names: list[str], rows: list[list[str]], title: str | None) -> None:
    if title:
        console.print(title, markup=False, highlight=False)
    label = max(len(n) for n in names)
    for i, values in enumerate(rows, 1):
        console.print(Text(f"-- row {i} ", style="dim") + Text("-" * max(0, label - 5), "dim"))
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True, min_width=label)
        grid.add_column(overflow="fold")
        for name, value in zip(names, values, strict=True):
            grid.add_row(plain(name), plain(value))
        console.print(grid)


def print_error(err: CurataError) -> None:
    """An error for people: what happened, then what to do."""
    err_console.print(f"[bold red]error:[/] {escape(err.message)}", markup=True, highlight=False)
    if err.hint:
        err_console.print(err.hint, markup=False, highlight=False)
