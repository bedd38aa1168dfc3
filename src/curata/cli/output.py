"""How the CLI talks: rich tables and messages on a terminal, plain JSON with ``--json``."""

from __future__ import annotations

import base64
import json
import sys
from datetime import date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    import pyarrow as pa

    from curata.errors import CurataError

console = Console(highlight=False, soft_wrap=False)
err_console = Console(stderr=True, highlight=False)
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
    """Write ``data`` as JSON to stdout (nothing else goes to stdout in --json mode)."""
    sys.stdout.write(json.dumps(data, default=_default, ensure_ascii=False, indent=2) + "\n")


def rows_json(table: pa.Table) -> list[dict[str, Any]]:
    """A table as a list of row objects."""
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def cell(value: Any) -> str:
    """A value shortened for a terminal table."""
    text = "" if value is None else str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def print_table(table: pa.Table, title: str | None = None) -> None:
    """Render an Arrow table on the terminal."""
    out = Table(title=title, show_lines=False, header_style="bold")
    for name in table.column_names:
        out.add_column(name, overflow="fold")
    for row in table.to_pylist():
        out.add_row(*(cell(row[c]) for c in table.column_names))
    console.print(out)


def print_error(err: CurataError) -> None:
    """An error for people: what happened, then what to do."""
    err_console.print(f"[bold red]error:[/] {err.message}", markup=True, highlight=False)
    if err.hint:
        err_console.print(err.hint, markup=False, highlight=False)
