"""Tables of records that fit the terminal: identifiers stay whole, free text wraps.

A rich table that is too wide shrinks its columns until they fit, cutting names, refs and ids
to ``model:suppor…`` and squeezing a text column to nothing. A records table sizes its columns
itself: identifier columns (names, refs, ids, numbers) get their whole width, free-text
columns share what is left and wrap. When that leaves free text too little room, each record
becomes a line of identifiers with its free text on indented lines beneath. Output to a pipe
is laid out for ``$COLUMNS``, or 80 columns when the terminal's width is not known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rich.cells import cell_len
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from curata.cli.output import console, plain

# A free-text column narrower than its longest cell over this many lines reads worse than
# free text on lines of its own.
LINES_PER_CELL = 3
LINE_INDENT = 4


@dataclass(frozen=True)
class RecordColumn:
    """A column of a records table: an identifier, kept whole, or free text, which wraps."""

    header: str
    free_text: bool = False
    justify: Literal["left", "right"] = "left"


Cell = str | Text | None


def print_records(
    columns: Sequence[RecordColumn], rows: Sequence[Sequence[Cell]], title: str | None = None
) -> None:
    """Print ``rows`` as a table that fits the console, identifiers never cut.

    Args:
        columns: the columns, in order.
        rows: one cell a column; a str is shown as it is (never read as markup).
        title: shown above the records.
    """
    cells = [[_text(value) for value in row] for row in rows]
    widths = _fit(columns, cells, console.width)
    if widths is None:
        _print_lines(columns, cells, title)
        return
    table = Table(title=plain(title) if title else None, header_style="bold")
    for column, width in zip(columns, widths, strict=True):
        table.add_column(column.header, justify=column.justify, width=width, overflow="fold")
    for row in cells:
        table.add_row(*row)
    console.print(table)


def _text(value: Cell) -> Text:
    return value if isinstance(value, Text) else plain(value)


def _fit(columns: Sequence[RecordColumn], rows: list[list[Text]], width: int) -> list[int] | None:
    """Widths of the columns' text for a table at most ``width`` wide (a rich table adds a
    border and a space either side of each column), or None when none fits with every
    identifier whole and each free-text column at least as wide as its longest word and a
    third of its longest cell. Headers wrap at spaces if that is what makes the table fit."""
    room = width - 3 * len(columns) - 1
    longest = [max((row[i].cell_len for row in rows), default=0) for i in range(len(columns))]
    free = [i for i, c in enumerate(columns) if c.free_text]
    least = {
        i: max(_longest_word(columns[i].header), -(-longest[i] // LINES_PER_CELL)) for i in free
    }
    for row in rows:
        for i in free:
            least[i] = max(least[i], _longest_word(row[i].plain))
    for header_width in (cell_len, _longest_word):
        need = [max(n, header_width(c.header)) for n, c in zip(longest, columns, strict=True)]
        widths = [min(n, least[i]) if i in least else n for i, n in enumerate(need)]
        left = room - sum(widths)
        if left < 0:
            continue
        # What is left goes to the free text, the column that wants least extra first.
        for done, i in enumerate(sorted(free, key=lambda i: need[i] - widths[i])):
            extra = min(need[i] - widths[i], left // (len(free) - done))
            widths[i] += extra
            left -= extra
        return widths
    return None


def _longest_word(text: str) -> int:
    return max(map(cell_len, text.split()), default=0)


def _print_lines(
    columns: Sequence[RecordColumn], rows: list[list[Text]], title: str | None
) -> None:
    """Each record as a line of identifiers (aligned, whole however long), then its free text
    on indented lines that wrap (labelled with the column when there are several)."""
    whole = [i for i, c in enumerate(columns) if not c.free_text]
    free = [i for i, c in enumerate(columns) if c.free_text]
    widths = {i: max([len(columns[i].header)] + [row[i].cell_len for row in rows]) for i in whole}
    if title:
        console.print(plain(title))
    header = [Text(columns[i].header, style="bold") for i in whole]
    console.print(_aligned(columns, whole, widths, header))
    for row in rows:
        console.print(_aligned(columns, whole, widths, [row[i] for i in whole]))
        for i in free:
            if row[i].plain:
                label = Text(f"{columns[i].header}: ") if len(free) > 1 else Text()
                text = Padding(label + row[i], (0, 0, 0, LINE_INDENT), expand=False)
                console.print(text, soft_wrap=False)


def _aligned(
    columns: Sequence[RecordColumn], whole: list[int], widths: dict[int, int], cells: list[Text]
) -> Text:
    line = Text("  ").join(
        _padded(cell, widths[i], columns[i].justify) for i, cell in zip(whole, cells, strict=True)
    )
    line.rstrip()
    return line


def _padded(cell: Text, width: int, justify: Literal["left", "right"]) -> Text:
    padded = cell.copy()
    padded.align(justify, width)
    return padded
