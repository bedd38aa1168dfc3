"""A knowledge-base sync killed at any moment publishes all or nothing, and the next sync gives
what an uninterrupted one gives; two syncs at once publish once; a failure inside a sync and bad
input files are reported, never half-published. Real sync processes (tests/cases/kb_syncer.py),
killed with SIGKILL, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fork_client import ForkServerClient
from kb_syncer import (
    EMBEDDER,
    ERROR_EXIT,
    KB,
    PHASES,
    Corpus,
    doc_id,
    evolve,
    first_corpus,
    kb_state,
    write_corpus,
)
from make_sample_pdfs import build_pdf

import curata
from curata.errors import CurataError, InvalidInput, MissingDependency
from curata.rag import KnowledgeBase
from curata.sources import SourceItem
from curata.sources.local import FolderSource

CASES = Path(__file__).parent.parent / "cases"
SYNCER_SCRIPT = CASES / "kb_syncer.py"
KILL_TRIALS = 10
# Seconds the sync processes sleep where they enter a phase (per document listed for "read",
# per call for "parse" and "embed", per write for "publish"), so that kills land in each.
DELAYS = {"read": 0.005, "parse": 0.15, "embed": 0.15, "publish": 0.02, "finish": 0.05}
# Trial k kills in the k-th phase (cycling), at a random moment of it ("finish": after the
# catalog commit, before the run is recorded as finished).
KILL_TARGETS = ("read", "parse", "embed", "publish", "finish")


class SyncerServer(ForkServerClient):
    """The fork server of tests/cases/kb_syncer.py: starts sync processes in milliseconds."""

    def __init__(self) -> None:
        super().__init__(SYNCER_SCRIPT, author="sync-process")

    def start_sync(
        self, lake: curata.Lake, folder: Path, log: Path, delays: dict[str, float]
    ) -> int:
        """Fork a process syncing knowledge base ``kb`` of ``lake`` with ``folder``; its pid."""
        answer = self.ask(
            cmd="sync", lake=lake.uri, folder=str(folder), log=str(log), delays=delays
        )
        pid: int = answer["pid"]
        return pid

    def wait(self, pid: int) -> int:
        """Reap a sync process; its wait status."""
        status: int = self.ask(cmd="wait", pid=pid)["status"]
        return status


@pytest.fixture(scope="module")
def syncer() -> Iterator[SyncerServer]:
    server = SyncerServer()
    yield server
    server.close()


def _log_records(log: Path) -> list[dict[str, Any]]:
    """The JSON lines a sync process wrote (tracebacks and warnings skipped)."""
    return _records(log.read_text() if log.exists() else "")


def _records(text: str) -> list[dict[str, Any]]:
    records = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by the kill
    return records


def _phase_starts(log: Path) -> dict[str, float]:
    """When the sync process entered each phase, in seconds from its start."""
    return {r["phase"]: r["t"] for r in _log_records(log) if "phase" in r}


def _last_phase(log: Path) -> str:
    phases = [r["phase"] for r in _log_records(log) if "phase" in r]
    return phases[-1] if phases else "forked"


def _wait_for_phase(log: Path, phase: str, timeout: float = 60.0) -> None:
    """Return once the sync process has entered ``phase`` or a later one (or ended)."""
    deadline = time.monotonic() + timeout
    wanted = PHASES.index(phase)
    while time.monotonic() < deadline:
        text = log.read_text() if log.exists() else ""
        records = _records(text)
        reached = [PHASES.index(r["phase"]) for r in records if "phase" in r]
        if any(r >= wanted for r in reached) or "Traceback" in text or '"error"' in text:
            return
        time.sleep(0.005)
    raise AssertionError(f"the sync never reached {phase}:\n{log.read_text()[-3000:]}")


def _ending(log: Path) -> dict[str, Any]:
    """The result or error line a finished sync process wrote."""
    endings = [r for r in _log_records(log) if "result" in r or "error" in r]
    assert len(endings) == 1, log.read_text()[-3000:]
    return endings[0]


@pytest.fixture
def reference(tmp_path: Path) -> Iterator[KnowledgeBase]:
    """Knowledge base ``kb`` in a fresh lake, to follow the corpus with uninterrupted syncs."""
    lake = curata.init(str(tmp_path / "reference"))
    yield KnowledgeBase.create(lake, KB, embedder=EMBEDDER)
    lake.close()


def _unpublished_lance_versions(lake: curata.Lake, kb: KnowledgeBase) -> bool:
    """Whether a part's Lance dataset is ahead of the version its published head names."""
    import lance

    for part in kb.manifest().parts:
        path = Path(lake.uri) / "data" / f"{part.dataset}.lance"
        log = lake.dataset(part.dataset).log()
        if log and path.exists() and lance.dataset(str(path)).latest_version > log[0].lance_version:
            return True
    return False


def _assert_searchable(kb: KnowledgeBase, state: dict[str, Any], number: int) -> None:
    """Document ``number`` is found by its own word, at the version ``state`` holds."""
    versions = {d: v for d, v, _ in state["documents"]}
    hits = kb.search(f"topic{number}", k=1, mode="keyword")
    assert [(h.doc_id, h.doc_version) for h in hits] == [(doc_id(number), versions[doc_id(number)])]
    chunk_ids = {c[0] for c in state["chunks"]}
    assert {h.chunk_id for h in kb.search("invoice refund", k=5)} <= chunk_ids


# -- kill -9 ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_kill_9_at_random_moments_of_a_sync_publishes_all_or_nothing(
    syncer: SyncerServer, lake: curata.Lake, reference: KnowledgeBase, tmp_path: Path
) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    folder = tmp_path / "docs"
    corpus: Corpus = first_corpus()
    next_number = len(corpus)
    write_corpus(folder, {}, corpus)
    kb = KnowledgeBase.create(lake, KB, embedder=EMBEDDER)

    # The first sync, uninterrupted, in a sync process: version 2, as in a fresh lake.
    log = tmp_path / "sync-0.log"
    assert syncer.wait(syncer.start_sync(lake, folder, log, DELAYS)) == 0, log.read_text()
    reference.sync(str(folder), delete_missing=True)
    assert kb_state(lake) == kb_state(reference.lake)
    assert kb.version == 2
    starts = _phase_starts(log)
    longest = {
        "read": 0.9 * DELAYS["read"] * len(corpus),
        "parse": 0.9 * DELAYS["parse"],
        "embed": 0.9 * DELAYS["embed"],
        "publish": 0.9 * (starts["finish"] - starts["publish"]),
        "finish": 0.9 * DELAYS["finish"],
    }

    outcomes: list[str] = []
    for trial in range(1, KILL_TRIALS + 1):
        after_corpus, next_number = evolve(corpus, rng, next_number)
        write_corpus(folder, corpus, after_corpus)
        before = kb_state(lake)
        reference.sync(str(folder), delete_missing=True)
        after = kb_state(reference.lake)
        assert after["version"] == before["version"] + 1

        target = KILL_TARGETS[(trial - 1) % len(KILL_TARGETS)]
        log = tmp_path / f"sync-{trial}.log"
        pid = syncer.start_sync(lake, folder, log, DELAYS)
        _wait_for_phase(log, target)
        time.sleep(rng.uniform(0.0, longest[target]))
        os.kill(pid, signal.SIGKILL)
        status = syncer.wait(pid)
        phase = _last_phase(log)
        context = f"trial {trial} (killed in {phase}), seed {seed}, log:\n{log.read_text()[-3000:]}"
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        assert killed or status == 0, context

        # All or nothing: the knowledge base is exactly the old version or exactly the new one,
        # consistent, and searchable at the version it is at.
        found = kb_state(lake)
        assert found in (before, after), context
        assert kb.check().ok, (kb.check().to_dict(), context)
        kept = sorted(set(corpus) & set(after_corpus))
        _assert_searchable(kb, found, rng.choice(kept))
        if found == after:
            outcomes.append("published" if killed else "finished")
        elif _unpublished_lance_versions(lake, kb):
            outcomes.append(f"{phase}: Lance versions nobody published")
        else:
            outcomes.append(phase)

        # The next sync completes and gives what an uninterrupted sync gives.
        result = kb.sync(str(folder), delete_missing=True)
        assert result.published == (found == before), context
        assert kb_state(lake) == after, context
        assert lake.runs(job=f"kb-sync:{KB}")[0].status == "succeeded"
        corpus = after_corpus

    print(f"seed {seed}: outcomes {outcomes}")
    # The kills interrupted every phase of the work, the publish included, and came after it.
    interrupted = {o.split(":")[0] for o in outcomes}
    assert {"read", "parse", "embed", "publish", "published"} <= interrupted, outcomes
    assert kb.check().ok


# -- two syncs at once -----------------------------------------------------------------------


@pytest.mark.slow
def test_two_syncs_at_once_publish_once_and_the_one_that_lost_converges(
    syncer: SyncerServer, lake: curata.Lake, reference: KnowledgeBase, tmp_path: Path
) -> None:
    folder = tmp_path / "docs"
    corpus: Corpus = first_corpus()
    write_corpus(folder, {}, corpus)
    kb = KnowledgeBase.create(lake, KB, embedder=EMBEDDER)
    rng = random.Random(7)
    conflicts = 0
    for round_ in range(2):
        # Round 0: the parts are empty (the first sync creates them); round 1: an update.
        if round_:
            after_corpus, _ = evolve(corpus, rng, len(corpus))
            write_corpus(folder, corpus, after_corpus)
            corpus = after_corpus
        reference.sync(str(folder), delete_missing=True)
        expected = kb_state(reference.lake)
        version = kb.version
        logs = [tmp_path / f"round-{round_}-{n}.log" for n in range(2)]
        # Slow parsing: both syncs read the knowledge base before either publishes.
        delays = {"parse": 0.4}
        pids = [syncer.start_sync(lake, folder, log, delays) for log in logs]
        statuses = [syncer.wait(pid) for pid in pids]
        endings = [_ending(log) for log in logs]
        context = "\n".join(log.read_text()[-2000:] for log in logs)

        # Each finished, or lost to the other with a Conflict that says what to do.
        for status, ending in zip(statuses, endings, strict=True):
            if status == 0:
                assert ending["result"]["version"] == version + 1, context
            else:
                assert status >> 8 == ERROR_EXIT, context
                assert ending["error"] == "Conflict", context
                assert ending["message"] == f"Another sync of {KB!r} published while this one ran."
        lost = statuses.count(ERROR_EXIT << 8)
        assert lost <= 1, context
        conflicts += lost

        # One new version, exactly what one uninterrupted sync gives: no chunk twice.
        assert kb.version == version + 1
        assert kb_state(lake) == expected
        chunks = lake.ref(kb.manifest().chunks().ref or "").to_arrow(columns=["chunk_id"])
        assert len(set(chunks["chunk_id"].to_pylist())) == chunks.num_rows
        assert kb.check().ok
        runs = lake.runs(job=f"kb-sync:{KB}", limit=2)
        assert sorted(r.status for r in runs) == sorted(
            "succeeded" if s == 0 else "failed" for s in statuses
        )
        for run in runs:
            if run.status == "failed":
                assert run.error is not None and "Another sync" in run.error

        # Running the sync that lost again: there is nothing left to do.
        retry = kb.sync(str(folder), delete_missing=True)
        assert not retry.published
        assert retry.documents["unchanged"] == len(corpus)
        assert kb_state(lake) == expected
    # The syncs really ran at the same time: one lost in each round.
    assert conflicts == 2


# -- failures inside a sync ------------------------------------------------------------------


def _parser_failing_on(failures: dict[str, BaseException], monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the Markdown and text parsers raise ``failures[name]`` for those documents."""
    from curata.parse import document, registered_parsers

    for mime, original in registered_parsers().items():
        if mime not in ("text/markdown", "text/plain"):
            continue

        def failing(data: bytes, name: str, original: Any = original) -> Any:
            if name in failures:
                raise failures[name]
            return original(data, name)

        monkeypatch.setitem(document._PARSERS, mime, failing)


def test_a_parser_crashing_on_a_document_fails_only_that_document(
    lake: curata.Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "docs"
    corpus = first_corpus(9)
    write_corpus(folder, {}, corpus)
    # What a parser's bug or a library's surprise raises: (error, what the reason must say).
    failures: dict[str, tuple[BaseException, str]] = {
        doc_id(1): (KeyError("pages"), "KeyError"),
        doc_id(2): (RecursionError("maximum recursion depth exceeded"), "RecursionError"),
        doc_id(3): (MemoryError(), "MemoryError"),
        doc_id(4): (InvalidInput("unsupported table layout"), "unsupported table layout"),
        doc_id(5): (
            MissingDependency("python-docx", "docx", "Word documents"),
            'pip install "curata[docx]"',
        ),
    }
    kb = KnowledgeBase.create(lake, KB, embedder=EMBEDDER)

    with monkeypatch.context() as patch:
        _parser_failing_on({name: error for name, (error, _) in failures.items()}, patch)
        result = kb.sync(str(folder))

    assert result.documents["new"] == len(corpus) - len(failures)
    assert result.documents["failed"] == len(failures)
    reasons = {f["doc_id"]: f["reason"] for f in result.failed}
    assert sorted(reasons) == sorted(failures)
    for name, (_, says) in failures.items():
        assert says in reasons[name], reasons[name]
    state = kb_state(lake)
    assert {d for d, _, _ in state["documents"]} == {doc_id(n) for n in corpus} - set(failures)
    assert kb.check().ok
    assert lake.runs(job=f"kb-sync:{KB}")[0].status == "succeeded"

    # Once the parser works again, the next sync indexes them.
    again = kb.sync(str(folder))
    assert (again.documents["new"], again.documents["failed"]) == (len(failures), 0)
    assert len(kb_state(lake)["documents"]) == len(corpus)


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (RuntimeError("the embedding service refused the request"), "fails"),
        (ConnectionError("connection reset by peer"), "retried"),
    ],
    ids=["terminal", "transient"],
)
def test_an_embedder_failing_mid_sync_publishes_nothing(
    lake: curata.Lake,
    reference: KnowledgeBase,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    outcome: str,
) -> None:
    import curata.rag.embedding_cache
    from curata.rag.embedders import HashEmbedder

    folder = tmp_path / "docs"
    corpus = first_corpus(12)
    write_corpus(folder, {}, corpus)
    kb = KnowledgeBase.create(lake, KB, embedder=EMBEDDER)
    for target in (kb, reference):
        target.sync(str(folder), delete_missing=True)
    after_corpus, _ = evolve(corpus, random.Random(3), len(corpus))
    write_corpus(folder, corpus, after_corpus)
    reference.sync(str(folder), delete_missing=True)
    before = kb_state(lake)

    # Chunk texts go to the embedder two at a time; its second call fails, once.
    monkeypatch.setattr(curata.rag.embedding_cache, "EMBED_BATCH", 2)
    original = HashEmbedder.embed
    calls: list[int] = []

    def failing_once(self: HashEmbedder, texts: Any) -> Any:
        calls.append(len(texts))
        if len(calls) == 2:
            raise error
        return original(self, texts)

    monkeypatch.setattr(HashEmbedder, "embed", failing_once)

    if outcome == "retried":
        result = kb.sync(str(folder), delete_missing=True)
        assert result.published
        assert kb_state(lake) == kb_state(reference.lake)
        assert len(calls) > 3  # the failed call was made again
        return

    with pytest.raises(CurataError, match="the embedding service refused the request"):
        kb.sync(str(folder), delete_missing=True)
    assert len(calls) == 2
    assert kb_state(lake) == before
    assert kb.check().ok
    run = lake.runs(job=f"kb-sync:{KB}")[0]
    assert run.status == "failed"
    assert run.error is not None and "the embedding service refused the request" in run.error

    monkeypatch.setattr(HashEmbedder, "embed", original)
    result = kb.sync(str(folder), delete_missing=True)
    assert result.published
    assert kb_state(lake) == kb_state(reference.lake)
    # What the embedder did before it failed is kept (the cache), not computed again.
    assert result.chunks["reused"] >= 2
    assert lake.runs(job=f"kb-sync:{KB}")[0].status == "succeeded"


# -- bad input files -------------------------------------------------------------------------

BAD_FILES = {
    "corrupt.pdf": "corrupt PDF",
    "binary.txt": "binary data, not text",
    "empty.txt": "empty file",
    "huge.txt": "larger than the 100 MB limit",
    "loop": "symbolic link loop",
    "self.txt": "symbolic link loop",
    "vanishing.md": "vanished since the source was listed",
    doc_id(1): "binary data, not text",  # indexed before, broken now
}
LATIN_1 = "Crème brûlée à la française : une façade naïve, déjà vue à Noël."


def _write_bad_files(folder: Path) -> None:
    (folder / "corrupt.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage\n%%EOF\n")
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 16)
    (folder / "empty.txt").write_bytes(b"")
    subprocess.run(["truncate", "-s", "200M", str(folder / "huge.txt")], check=True)
    (folder / "loop").symlink_to(".")  # a folder link back to the source folder
    (folder / "self.txt").symlink_to("self.txt")
    (folder / "vanishing.md").write_text("# Vanishing\n\nHere when listed, gone when read.\n")
    (folder / doc_id(1)).write_bytes(b"\x00\x01\x02" * 500)


def _fix_bad_files(folder: Path) -> None:
    pdf = build_pdf("Fixed", [["Fixed report", "The pdfword quarterly figures, repaired."]])
    (folder / "corrupt.pdf").write_bytes(pdf)
    (folder / "binary.txt").write_text("Binary no more: binaryword.\n")
    (folder / "empty.txt").write_text("Not empty any more: emptyword.\n")
    (folder / "huge.txt").write_text("Small now: hugeword.\n")
    (folder / "loop").unlink()
    (folder / "self.txt").unlink()
    (folder / "self.txt").write_text("A file at last: selfword.\n")
    (folder / "vanishing.md").write_text("# Vanishing\n\nBack again: vanishingword.\n")
    (folder / doc_id(1)).write_text("Document 1 repaired: repairedword.\n")


def test_bad_files_are_quarantined_the_rest_indexed_and_fixed_files_indexed_later(
    lake: curata.Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "docs"
    corpus = first_corpus(6)
    write_corpus(folder, {}, corpus)
    kb = KnowledgeBase.create(lake, KB, embedder=EMBEDDER)
    kb.sync(str(folder), delete_missing=True)
    indexed = {d: v for d, v, _ in kb_state(lake)["documents"]}

    _write_bad_files(folder)
    (folder / "latin1.txt").write_bytes(f"{LATIN_1}\n".encode("latin-1"))

    listing = FolderSource.list

    def vanish_after_listing(source: FolderSource) -> Iterator[SourceItem]:
        yield from listing(source)
        (folder / "vanishing.md").unlink()

    with monkeypatch.context() as patch:
        patch.setattr(FolderSource, "list", vanish_after_listing)
        # One worker: the 200 MB file, though never read, would start a process pool (the
        # sync sizes its work by the bytes listed).
        result = kb.sync(str(folder), delete_missing=True, workers=1)

    reasons = {f["doc_id"]: f["reason"] for f in result.failed}
    assert sorted(reasons) == sorted(BAD_FILES)
    for name, reason in BAD_FILES.items():
        assert reason in reasons[name], reasons[name]
    assert result.documents == {
        "new": 1,  # latin1.txt
        "changed": 0,
        "unchanged": len(corpus) - 1,
        "deleted": 0,  # a document that cannot be read now is not deleted
        "failed": len(BAD_FILES),
    }
    quarantine = lake.ref(kb.manifest().part("quarantine").ref or "").to_arrow().to_pylist()
    assert {(r["doc_id"], r["reason"]) for r in quarantine} == set(reasons.items())
    part = kb.manifest().part("quarantine")
    assert lake.dataset(part.dataset).log()[0].run_id == result.run_id
    # The rest is indexed: the Latin-1 text decoded, and the broken document's last good
    # version is still what search finds.
    state = kb_state(lake)
    assert {d: v for d, v, _ in state["documents"]} == {**indexed, "latin1.txt": 1}
    assert [h.text for h in kb.search("brûlée", k=1, mode="keyword")] == [LATIN_1]
    assert [(h.doc_id, h.doc_version) for h in kb.search("topic1", k=1, mode="keyword")] == [
        (doc_id(1), 1)
    ]
    assert kb.check().ok

    _fix_bad_files(folder)
    fixed = kb.sync(str(folder), delete_missing=True)

    assert fixed.failed == []
    assert fixed.documents["failed"] == 0
    assert (fixed.documents["new"], fixed.documents["changed"]) == (len(BAD_FILES) - 2, 1)
    assert lake.ref(kb.manifest().part("quarantine").ref or "").count_rows() == 0
    for word, name in [
        ("pdfword", "corrupt.pdf"),
        ("binaryword", "binary.txt"),
        ("emptyword", "empty.txt"),
        ("hugeword", "huge.txt"),
        ("selfword", "self.txt"),
        ("vanishingword", "vanishing.md"),
        ("repairedword", doc_id(1)),
    ]:
        assert [h.doc_id for h in kb.search(word, k=1, mode="keyword")] == [name]
    assert kb.check().ok

    # Nothing changed since: a sync publishes no new version.
    version = kb.version
    assert not kb.sync(str(folder), delete_missing=True).published
    assert kb.version == version
