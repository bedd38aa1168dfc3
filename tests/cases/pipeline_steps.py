"""Step functions for the pipeline tests, imported by ``python`` steps as
``pipeline_steps:NAME`` (tests/pipeline/conftest.py puts this folder on the path, for worker
processes and Ray workers too).

Functions that count their work append one line per call to the file named by
``CURATA_TEST_STEP_LOG``: ``<function> <rows received> <pid>``. Appends of a short line are
atomic, so worker processes can share the file.
"""

from __future__ import annotations

import os
import time

import pyarrow as pa
import pyarrow.compute as pc

STEP_LOG = "CURATA_TEST_STEP_LOG"
FLAKY_STATE = "CURATA_TEST_FLAKY_STATE"


def _log(function: str, rows: int) -> None:
    path = os.environ.get(STEP_LOG)
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(f"{function} {rows} {os.getpid()}\n")


def shout(batch: pa.RecordBatch, suffix: str = "!") -> pa.RecordBatch:
    """Upper-case ``text`` and add ``suffix`` (a map: one output row per input row)."""
    _log("shout", batch.num_rows)
    return _shout(batch, suffix)


def _shout(batch: pa.RecordBatch, suffix: str) -> pa.RecordBatch:
    text = pc.binary_join_element_wise(pc.utf8_upper(batch.column("text")), suffix, "")
    return batch.set_column(batch.schema.get_field_index("text"), "text", text)


def words(batch: pa.RecordBatch) -> pa.Table:
    """One output row per word of ``text`` (an expansion: keeps ``_row`` on every row)."""
    _log("words", batch.num_rows)
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    split = pc.split_pattern(table.column("text"), " ")
    parents = pc.list_parent_indices(split)
    return pa.table(
        {
            "id": table.column("id").take(parents),
            "word": pc.list_flatten(split),
            "_row": table.column("_row").take(parents),
        }
    )


def odd_ids(batch: pa.RecordBatch) -> pa.Table:
    """Keep rows with an odd ``id`` (a filter: keeps ``_row``)."""
    _log("odd_ids", batch.num_rows)
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    return table.filter(pc.equal(pc.bit_wise_and(table.column("id"), 1), 1))


def reject_bad(batch: pa.RecordBatch, suffix: str = "!", seconds: float = 0.0) -> pa.RecordBatch:
    """:func:`shout`, but raise (a terminal error) when any ``text`` contains the word ``bad``;
    sleeps ``seconds`` first (to give a kill something to interrupt)."""
    _log("reject_bad", batch.num_rows)
    time.sleep(seconds)
    bad = [t for t in batch.column("text").to_pylist() if t is not None and "bad" in t.split()]
    if bad:
        raise ValueError(f"cannot shout {bad[0]!r}")
    return _shout(batch, suffix)


def flaky(batch: pa.RecordBatch, failures: int = 2) -> pa.RecordBatch:
    """Fail with a transient ``ConnectionError`` ``failures`` times in all, then work.

    The calls so far, with their times, are lines of the file ``CURATA_TEST_FLAKY_STATE``.
    """
    path = os.environ[FLAKY_STATE]
    with open(path, "a+", encoding="utf-8") as state:
        state.seek(0)
        calls = len(state.read().splitlines())
        state.write(f"{time.monotonic()}\n")
    if calls < failures:
        raise ConnectionError(f"service unavailable (attempt {calls + 1})")
    return _shout(batch, "!")


def always_times_out(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Raise a transient ``TimeoutError`` on every call."""
    _log("always_times_out", batch.num_rows)
    raise TimeoutError("the model server did not answer")


def not_a_batch(batch: pa.RecordBatch) -> list[int]:
    """Return something that is not Arrow."""
    return [batch.num_rows]


def count_rows(batch: pa.Table) -> pa.Table:
    """One row: how many rows the step received (needs the whole input: not row-wise)."""
    _log("count_rows", batch.num_rows)
    return pa.table({"rows": [batch.num_rows]})


NOT_CALLABLE = 42
