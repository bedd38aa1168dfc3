"""The knowledge-base syncs of the reliability tests: a corpus that changes from one trial to
the next, what a knowledge base holds, and a fork server that starts syncs quickly.

The corpus is a folder of small Markdown and text files. Its state is a map from document
number to revision (:func:`evolve` edits, adds and deletes some documents; :func:`write_corpus`
brings the folder in line with a state). :func:`kb_state` reads what a knowledge base holds,
in a form that two lakes can be compared by.

Starting a Python process that imports Lance takes a second or two, longer than the syncs being
interrupted, so the tests start one server (``python kb_syncer.py``) that imports everything
once and forks a fresh sync per command. Commands are JSON lines on stdin, each answered by one
JSON line on stdout:

* ``{"cmd": "sync", "lake": PATH, "folder": DIR, "log": FILE, "delays": {PHASE: SECONDS}}``:
  fork a process that opens the lake and runs ``KnowledgeBase(lake, "kb").sync(DIR,
  delete_missing=True)``; answers ``{"pid": PID}``. ``delays`` slow the sync down where the
  tests want to land a kill (``read``: per document listed, ``parse`` and ``embed``: per call,
  ``publish``: per write of the publication, ``finish``: before the run is recorded as
  finished). The process writes to the log one JSON line ``{"phase": P, "t": SECONDS}`` each
  time it enters a phase of :data:`PHASES`, then ``{"result": ...}`` (exit 0) or, for a
  curata error, ``{"error": CLASS, "message": TEXT}`` (exit 3).
* ``{"cmd": "wait", "pid": PID}``: reap it; answers ``{"status": S}`` (os.waitpid's).

The server forks before any Lance runtime, thread pool or database connection exists in it, so
each child starts clean. The slow-downs are monkeypatches in the child: the code under test is
the released code.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

KB = "kb"
EMBEDDER = "hash:64"
PHASES = ("start", "read", "parse", "embed", "publish", "finish", "done")
ERROR_EXIT = 3
_WORDS = (
    "invoice", "refund", "login", "export", "battery", "shipping", "coupon", "sync", "folder",
    "backup", "admin", "seat", "workspace", "notebook", "share", "device", "password", "token",
    "archive", "report", "search", "index",
)  # fmt: skip

Corpus = dict[int, int]  # document number -> revision


def doc_id(number: int) -> str:
    """The file name (and doc id) of document ``number``: Markdown or plain text."""
    return f"doc-{number:03d}.md" if number % 3 else f"doc-{number:03d}.txt"


def document_text(number: int, revision: int) -> str:
    """The text of one revision of a document: a heading and a hundred or more words, so that
    some documents make one chunk and some two."""
    rng = random.Random(number * 1000 + revision)
    words = [rng.choice(_WORDS) for _ in range(60 + 25 * (number % 7))]
    body = " ".join(words)
    tail = f"Document {number} revision {revision} mentions topic{number}."
    if doc_id(number).endswith(".md"):
        return f"# Document {number}\n\n{body}\n\n{tail}\n"
    return f"Document {number}\n\n{body}\n\n{tail}\n"


def first_corpus(n: int = 30) -> Corpus:
    return dict.fromkeys(range(n), 0)


def evolve(corpus: Corpus, rng: random.Random, next_number: int) -> tuple[Corpus, int]:
    """The corpus after editing three documents, deleting two and adding two (sometimes one of
    them a document deleted earlier, which comes back under its old doc id). Returns the new
    corpus and the next unused document number."""
    after = dict(corpus)
    numbers = sorted(after)
    for n in rng.sample(numbers, 3):
        after[n] += 1
    for n in rng.sample(numbers, 2):
        del after[n]
    gone = sorted(set(range(next_number)) - set(after))
    for _ in range(2):
        if gone and rng.random() < 0.3:
            n = gone.pop(rng.randrange(len(gone)))
            after[n] = 10 + rng.randrange(5)
        else:
            after[next_number] = 0
            next_number += 1
    return after, next_number


def write_corpus(folder: Path, before: Corpus, after: Corpus) -> None:
    """Turn ``folder`` (holding ``before``) into ``after``: write what changed, delete what
    went."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in sorted(set(before) - set(after)):
        (folder / doc_id(n)).unlink()
    for n, revision in sorted(after.items()):
        if before.get(n) != revision:
            (folder / doc_id(n)).write_text(document_text(n, revision), encoding="utf-8")


def kb_state(lake: Any, at: str | int | None = None) -> dict[str, Any]:
    """What knowledge base ``kb`` holds at ``at``: its version, documents as sorted
    ``(doc_id, doc_version, content_hash)`` and chunks as sorted ``(chunk_id, text,
    embedding)``."""
    from curata.rag import KnowledgeBase

    manifest = KnowledgeBase(lake, KB).manifest(at)
    documents: list[tuple[Any, ...]] = []
    chunks: list[tuple[Any, ...]] = []
    if manifest.documents.ref:
        rows = lake.ref(manifest.documents.ref).to_arrow(
            columns=["doc_id", "doc_version", "content_hash"]
        )
        documents = sorted(tuple(r.values()) for r in rows.to_pylist())
    if manifest.chunks().ref:
        rows = lake.ref(manifest.chunks().ref).to_arrow(columns=["chunk_id", "text", "embedding"])
        chunks = sorted((r["chunk_id"], r["text"], tuple(r["embedding"])) for r in rows.to_pylist())
    return {"version": manifest.version, "documents": documents, "chunks": chunks}


# -- the sync process ---------------------------------------------------------------------------


class _Phases:
    """Writes a line to stdout (the log) when the sync enters a phase, and sleeps there."""

    def __init__(self, delays: dict[str, float]) -> None:
        self.delays = delays
        self.started = time.monotonic()
        self.current = ""

    def enter(self, phase: str) -> None:
        if phase != self.current:
            self.current = phase
            t = round(time.monotonic() - self.started, 3)
            print(json.dumps({"phase": phase, "t": t}), flush=True)
        time.sleep(self.delays.get(phase, 0.0))


def _slow_down(phases: _Phases) -> None:
    """Wrap the places where the sync lists, parses, embeds and publishes."""
    from curata.lake.lake import Lake
    from curata.lake.publish import Publication
    from curata.rag.embedders import HashEmbedder
    from curata.rag.steps import ParseStep
    from curata.sources.local import FolderSource

    def wrap(cls: type, name: str, phase: str) -> None:
        original = getattr(cls, name)

        def slowed(*args: Any, **kwargs: Any) -> Any:
            phases.enter(phase)
            return original(*args, **kwargs)

        setattr(cls, name, slowed)

    listing = FolderSource.list

    def slowed_listing(self: FolderSource) -> Iterator[Any]:
        for item in listing(self):
            phases.enter("read")
            yield item

    FolderSource.list = slowed_listing  # type: ignore[method-assign]
    wrap(ParseStep, "process", "parse")
    wrap(HashEmbedder, "embed", "embed")
    wrap(Lake, "publish", "publish")
    for name in ("upsert", "append", "delete", "overwrite", "index_for_search"):
        wrap(Publication, name, "publish")
    wrap(Lake, "finish_run", "finish")


def _sync(command: dict[str, Any]) -> int:
    """Run the sync; the exit code (0, or :data:`ERROR_EXIT` for a curata error)."""
    import curata
    from curata.errors import CurataError
    from curata.rag import KnowledgeBase

    phases = _Phases(command.get("delays", {}))
    phases.enter("start")
    _slow_down(phases)
    try:
        with curata.open(command["lake"]) as lake:
            result = KnowledgeBase(lake, KB).sync(command["folder"], delete_missing=True)
    except CurataError as err:
        print(json.dumps({"error": type(err).__name__, "message": err.message}), flush=True)
        return ERROR_EXIT
    phases.enter("done")
    print(json.dumps({"result": result.to_dict()}), flush=True)
    return 0


def _fork(command: dict[str, Any]) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        log = os.open(command["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        code = _sync(command)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    """Answer commands from stdin until it closes."""
    # Import what syncs need once, here, so forked syncs start in milliseconds.
    import charset_normalizer  # noqa: F401
    import duckdb  # noqa: F401
    import lance
    import lance.fragment  # noqa: F401
    import markdown_it  # noqa: F401
    import pyarrow.compute  # noqa: F401
    import sqlalchemy.dialects.postgresql.psycopg
    import sqlalchemy.dialects.sqlite  # noqa: F401
    import yaml  # noqa: F401

    import curata.lake
    import curata.lake.search
    import curata.parse
    import curata.rag.kb
    import curata.rag.sync
    import curata.sources

    curata.parse.registered_parsers()
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
