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
    listed: int | None = None  # candidate lines seen, while inside the list
    skipped = 0
    for line in lines:
        if listed is not None and line[:1] in (" ", "\t") and line.strip():
            listed += 1
            if listed > candidates:
                skipped += 1
                continue
        elif listed is not None:
            listed = None
        if line.strip() == "Candidate functions:":
            listed = 0
        out.append(line)
        if listed is None and skipped:
            out.insert(len(out) - 1, f"        ... and {skipped} more")
            skipped = 0
    if skipped:
        out.append(f"        ... and {skipped} more")
    return "\n".join(out)
