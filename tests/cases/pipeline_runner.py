"""The reference pipeline of the pipeline reliability and executor tests, what it must publish,
and a fork server that starts runs of it quickly.

The reference pipeline upper-cases ticket texts (quarantining tickets that contain the word
``bad``), splits them into words, keeps the long ones and quarantines words starting with
``CRASH`` by a gate. It publishes two datasets (``shouted`` after the second step, ``words`` at
the end) and a quarantine (``support_quarantine``). :func:`expected_outputs` computes what
those must hold from the input rows alone.

Starting a Python process that imports Lance takes a second or two, far longer than the runs
being interrupted, so the kill tests start one server (``python pipeline_runner.py``) that
imports everything once and forks a fresh run per command. Commands are JSON lines on stdin,
each answered by one JSON line on stdout:

* ``{"cmd": "run", "lake": PATH, "pipeline": FILE, "log": FILE, "batch_rows": N,
  "stage_rows": N, "workers": N}``: fork a process that runs the pipeline (output staged
  every ``stage_rows`` rows; ``workers`` null: the default pool; optional ``env``: variables
  to set); answers ``{"pid": PID}``. The run's result goes to the log as JSON.
* ``{"cmd": "wait", "pid": PID}``: reap it; answers ``{"status": S}`` (os.waitpid's).

The server forks before any Lance runtime, DuckDB connection or database connection exists in
it, so each child starts clean.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
import warnings
from typing import Any

import pyarrow as pa

WORDS = ("refund", "login", "invoice", "shipping", "battery", "crash", "coupon", "export")
OUTPUTS = ("shouted", "words")
QUARANTINE = "support_quarantine"

REFERENCE_PIPELINE = """\
name: support-words
input: src
steps:
  - step: python
    id: shout
    on_error: quarantine
    params:
      function: "pipeline_steps:reject_bad"
      kwargs: {{suffix: "{suffix}", seconds: {seconds}}}
  - step: select
    id: keep
    params: {{columns: [id, text, lang]}}
  - step: python
    id: words
    params: {{function: "pipeline_steps:words"}}
  - step: sql
    id: long-words
    params:
      query: "SELECT id, word, length(word) AS chars FROM batch WHERE length(word) > 4"
outputs:
  - dataset: shouted
    after: keep
  - dataset: words
gates:
  - name: no-crash
    where: "word LIKE 'CRASH%'"
    action: quarantine
quarantine: support_quarantine
"""


def reference_pipeline(suffix: str = "!", seconds: float = 0.0) -> str:
    """The YAML text of the reference pipeline."""
    return REFERENCE_PIPELINE.format(suffix=suffix, seconds=seconds)


def ticket_rows(ids: Any, *, bad: Any = (), tag: str = "") -> pa.Table:
    """Rows ``id``, ``text`` (three or four words; ``bad`` ids contain the word "bad"),
    ``lang``. ``tag`` changes the text of every row."""
    ids = list(ids)
    texts = []
    for i in ids:
        words = [WORDS[i % len(WORDS)], WORDS[(i * 7 + 3) % len(WORDS)], f"number{i}{tag}"]
        if i in bad:
            words.insert(1, "bad")
        texts.append(" ".join(words))
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "text": pa.array(texts, pa.string()),
            "lang": pa.array(["de" if i % 5 == 0 else "en" for i in ids], pa.string()),
        }
    )


def expected_outputs(source: list[dict[str, Any]], suffix: str = "!") -> dict[str, Any]:
    """What the reference pipeline publishes for the input rows ``source`` (in input order):
    ``shouted`` and ``words`` as row lists in order, and the quarantine as a sorted list of
    ``(step, row)`` pairs."""
    shouted: list[dict[str, Any]] = []
    words: list[dict[str, Any]] = []
    quarantine: list[tuple[str, str]] = []
    for row in source:
        if "bad" in row["text"].split():
            quarantine.append(("shout", canonical(row)))
            continue
        text = row["text"].upper() + suffix
        shouted.append({"id": row["id"], "text": text, "lang": row["lang"]})
        for word in text.split(" "):
            if len(word) <= 4:
                continue
            out = {"id": row["id"], "word": word, "chars": len(word)}
            if word.startswith("CRASH"):
                quarantine.append(("gate:no-crash", canonical(out)))
            else:
                words.append(out)
    return {"shouted": shouted, "words": words, QUARANTINE: sorted(quarantine)}


def canonical(row: dict[str, Any]) -> str:
    """A row as sorted-key JSON, to compare quarantined rows."""
    return json.dumps(row, sort_keys=True)


def published_outputs(lake: Any) -> dict[str, Any]:
    """What the lake holds now, in the shape of :func:`expected_outputs` (None: no version)."""
    found: dict[str, Any] = {}
    for name in (*OUTPUTS, QUARANTINE):
        if not lake.has_dataset(name) or lake.dataset(name).info().version is None:
            found[name] = None
            continue
        rows = lake.ref(name).to_arrow().to_pylist()
        if name == QUARANTINE:
            rows = sorted((r["step"], canonical(json.loads(r["row"]))) for r in rows)
        found[name] = rows
    return found


def _run(command: dict[str, Any]) -> None:
    import curata
    from curata.pipeline import run

    run.STAGE_ROWS = command.get("stage_rows", run.STAGE_ROWS)
    os.environ.update(command.get("env", {}))
    with curata.open(command["lake"]) as lake:
        result = run.run_pipeline(
            lake,
            command["pipeline"],
            batch_rows=command.get("batch_rows", run.BATCH_ROWS),
            workers=command.get("workers"),
        )
    print(json.dumps(result.to_dict()))


def _fork(command: dict[str, Any]) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        log = os.open(command["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        _run(command)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    """Answer commands from stdin until it closes."""
    # Import what runs need once, here, so forked runs start in milliseconds.
    import duckdb  # noqa: F401
    import lance
    import lance.fragment  # noqa: F401
    import pipeline_steps  # noqa: F401
    import pyarrow.compute  # noqa: F401
    import sqlalchemy.dialects.postgresql.psycopg
    import sqlalchemy.dialects.sqlite  # noqa: F401
    import yaml  # noqa: F401

    import curata.lake
    import curata.pipeline.builtin
    import curata.pipeline.run  # noqa: F401

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
