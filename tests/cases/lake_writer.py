"""Writers for the lake's reliability tests, and a fork server that starts them quickly.

The kill test needs to know, after killing a writer at a random moment, what the last published
version must contain. So the writer follows a fixed script: step ``k`` publishes version ``k``
of dataset ``events`` and its content is a pure function of ``k`` (:func:`expected_rows`).
The steps mix every kind of write: create, append, upsert (partial columns and new rows),
delete and overwrite.

Starting a Python process that imports Lance takes a second or two, far longer than the writes
being interrupted, so the tests start one server (``python lake_writer.py``) that imports
everything once and forks a fresh writer per command. Commands are JSON lines on stdin, each
answered by one JSON line on stdout:

* ``{"cmd": "steps", "lake": PATH, "log": FILE}``: fork a writer running the script from the
  dataset's head onwards until killed; answers ``{"pid": PID}``.
* ``{"cmd": "appends", "lake": PATH, "log": FILE, "dataset": NAME, "ids": [START, STOP]}``:
  fork a writer appending one row per id, one version each; answers ``{"pid": PID}``.
* ``{"cmd": "wait", "pid": PID}``: reap a writer; answers ``{"status": S}`` (os.waitpid's).

The server forks before any Lance runtime, thread pool or database connection exists in it,
so each child starts clean.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
import warnings
from typing import Any

DATASET = "events"
KEY = "id"

Rows = dict[int, dict[str, Any]]


def operation(k: int) -> str:
    """The write step ``k`` does."""
    if k == 1:
        return "create"
    return {0: "overwrite", 2: "upsert", 4: "delete"}.get(k % 6, "append")


def _new_rows(k: int, n: int, val: str, step: int | None) -> list[dict[str, Any]]:
    return [{"id": k * 1000 + j, "val": val, "step": step} for j in range(n)]


def step_input(k: int, before: Rows) -> Any:
    """What step ``k`` writes: rows (create, append, overwrite, upsert) or a delete predicate."""
    op = operation(k)
    if op == "create":
        return _new_rows(k, 20, f"c{k}", k)
    if op == "append":
        return _new_rows(k, 5, f"a{k}", k)
    if op == "overwrite":
        return _new_rows(k, 15, f"o{k}", k)
    if op == "upsert":
        # Only id and val: stored rows keep their step, new rows get none.
        changed = [{"id": i, "val": f"u{k}"} for i in sorted(before)[:3]]
        return changed + [{"id": r["id"], "val": f"u{k}"} for r in _new_rows(k, 2, "", None)]
    smallest = sorted(before)[:2]
    return f"id IN ({', '.join(map(str, smallest))})"


def apply_step(k: int, before: Rows) -> Rows:
    """The content of version ``k`` given the content of version ``k - 1``."""
    op, data = operation(k), step_input(k, before)
    if op in ("create", "overwrite"):
        return {r["id"]: r for r in data}
    after = {i: dict(r) for i, r in before.items()}
    if op == "append":
        after.update({r["id"]: r for r in data})
    elif op == "upsert":
        for r in data:
            after.setdefault(r["id"], {"id": r["id"], "step": None})["val"] = r["val"]
    else:
        for i in sorted(before)[:2]:
            del after[i]
    return after


def expected_rows(version: int) -> Rows:
    """The content version ``version`` of ``events`` must have (empty for 0)."""
    rows: Rows = {}
    for k in range(1, version + 1):
        rows = apply_step(k, rows)
    return rows


def write_step(lake: Any, k: int, before: Rows) -> Any:
    """Publish version ``k`` of ``events``; returns the commit."""
    import pyarrow as pa

    schema = pa.schema([("id", pa.int64()), ("val", pa.string()), ("step", pa.int64())])
    ds = lake.dataset(DATASET)
    op, data = operation(k), step_input(k, before)
    message = f"step {k}"
    if op == "delete":
        commit = ds.delete(data, message=message)
    elif op == "upsert":
        commit = ds.upsert(pa.Table.from_pylist(data, schema.remove(2)), message=message)
    elif op == "overwrite":
        commit = ds.overwrite(pa.Table.from_pylist(data, schema), message=message)
    else:
        commit = ds.append(pa.Table.from_pylist(data, schema), message=message)
    if commit is None or commit.version != k:
        raise AssertionError(f"step {k} ({op}) published {commit}")
    return commit


def run_steps(lake_path: str) -> None:
    """Follow the script from the head of ``events`` onwards, forever."""
    import curata

    lake = curata.open(lake_path)
    head = lake.dataset(DATASET).info().version or 0
    rows = expected_rows(head)
    k = head + 1
    while True:
        write_step(lake, k, rows)
        rows = apply_step(k, rows)
        k += 1


def run_appends(lake_path: str, dataset: str, start: int, stop: int) -> None:
    """Append the rows ``start`` to ``stop - 1``, one version each."""
    import pyarrow as pa

    import curata

    lake = curata.open(lake_path)
    ds = lake.dataset(dataset)
    for i in range(start, stop):
        ds.append(pa.table({"id": [i], "writer_pid": [os.getpid()]}), message=f"row {i}")


def _fork(command: dict[str, Any]) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        log = os.open(command["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        if command["cmd"] == "steps":
            run_steps(command["lake"])
        else:
            run_appends(command["lake"], command["dataset"], *command["ids"])
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    """Answer commands from stdin until it closes."""
    # Import what writers need once, here, so forked writers start in milliseconds.
    import duckdb  # noqa: F401
    import lance
    import lance.fragment  # noqa: F401
    import pyarrow.compute  # noqa: F401
    import sqlalchemy.dialects.postgresql.psycopg
    import sqlalchemy.dialects.sqlite  # noqa: F401

    import curata.lake  # noqa: F401

    # Lance warns before every fork because its runtime does not survive one; this process
    # never starts that runtime (only the children use Lance), so the warning does not apply.
    warnings.filterwarnings("ignore", message="lance is not fork-safe")
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command["cmd"] == "wait":
            _, status = os.waitpid(command["pid"], 0)
            answer: dict[str, Any] = {"status": status}
        else:
            answer = {"pid": _fork(command)}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    serve()
