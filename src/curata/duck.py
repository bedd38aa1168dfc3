"""DuckDB connections as curata opens them for SQL that users write."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection whose session time zone is UTC.

    DuckDB otherwise takes the machine's zone, and with it ``hour(ts)``, ``ts::DATE``, the text
    of a timestamp and the zone of timestamps it returns: the same query over the same version
    would give other results, and other column types, on another machine or Ray node.
    """
    import duckdb

    con = duckdb.connect()
    con.execute("SET GLOBAL TimeZone = 'UTC'")  # also for the connection's cursors
    return con


def error_text(err: BaseException, *, candidates: int = 5) -> str:
    """DuckDB's message for ``err``, with its list of candidate functions (dozens of lines
    for an operator such as ``+``) cut to the first ``candidates``."""
    lines = str(err).rstrip().splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        out.append(lines[i])
        i += 1
        if out[-1].strip() != "Candidate functions:":
            continue
        end = i
        while end < len(lines) and lines[end][:1] in (" ", "\t") and lines[end].strip():
            end += 1  # the list: indented lines
        out += lines[i : min(end, i + candidates)]
        if end - i > candidates:
            out.append(f"        ... and {end - i - candidates} more")
        i = end
    return "\n".join(out)
