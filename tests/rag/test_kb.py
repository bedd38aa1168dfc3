"""Knowledge bases: sync (new, changed, unchanged, deleted, failed), search at any version,
tags, rollback, side-by-side embedders, consistency checks — on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import shutil
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pytest

import curata
from curata.errors import AlreadyExists, CurataError, InvalidInput, NotFound
from curata.rag import KnowledgeBase

if TYPE_CHECKING:
    from conftest import S3Server

EMBEDDER = "hash:64"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A copy of the bundled sample handbook that tests may edit."""
    target = tmp_path / "corpus"
    shutil.copytree(str(files("curata.samples") / "kb"), target)
    return target


@pytest.fixture
def kb(lake: curata.Lake) -> KnowledgeBase:
    return KnowledgeBase.create(lake, "hb", embedder=EMBEDDER, chunk_size=120, chunk_overlap=20)


def _docs(kb: KnowledgeBase, at: str | int | None = None) -> dict[str, int]:
    part = kb.manifest(at).documents
    table = kb.lake.ref(part.ref or "").to_arrow(columns=["doc_id", "doc_version"])
    return dict(zip(table["doc_id"].to_pylist(), table["doc_version"].to_pylist(), strict=True))


def _chunk_ids(kb: KnowledgeBase, at: str | int | None = None) -> set[str]:
    part = kb.manifest(at).chunks()
    return set(kb.lake.ref(part.ref or "").to_arrow(columns=["chunk_id"])["chunk_id"].to_pylist())


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def test_first_sync_indexes_every_document(kb: KnowledgeBase, corpus: Path) -> None:
    result = kb.sync(str(corpus))

    n_files = sum(1 for p in corpus.rglob("*") if p.is_file())
    assert result.documents == {
        "new": n_files,
        "changed": 0,
        "unchanged": 0,
        "deleted": 0,
        "failed": 0,
    }
    assert result.version == 2 and result.previous_version == 1
    assert result.chunks["added"] == result.chunks["embedded"] > n_files
    chunks = kb.lake.ref(kb.manifest().chunks().ref or "").to_arrow()
    assert chunks.num_rows == result.chunks["added"]
    assert max(chunks["n_tokens"].to_pylist()) <= 120
    first = sorted(c for c in chunks["chunk_id"].to_pylist() if c.startswith("sync/"))[0]
    assert first.endswith("#v1#c0") and "#v1#" in first
    assert set(chunks["embedding_model"].to_pylist()) == {EMBEDDER}
    pdf_pages = [
        p
        for d, p in zip(chunks["doc_id"].to_pylist(), chunks["page"].to_pylist(), strict=True)
        if d.endswith(".pdf")
    ]
    assert pdf_pages and all(p >= 1 for p in pdf_pages)


def test_unchanged_documents_are_not_read_again(
    kb: KnowledgeBase, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from curata.sources import SourceItem

    kb.sync(str(corpus))
    reads: list[str] = []
    original = SourceItem.read_bytes

    def counting(self: SourceItem, **kwargs: object) -> bytes:
        reads.append(self.doc_id)
        return original(self, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(SourceItem, "read_bytes", counting)
    result = kb.sync(str(corpus))

    assert reads == []
    assert result.version == 2 and not result.published
    assert result.documents["unchanged"] == result.documents["new"] + len(_docs(kb))


def test_touched_file_is_hashed_but_not_reindexed(kb: KnowledgeBase, corpus: Path) -> None:
    kb.sync(str(corpus))
    target = corpus / "server" / "backups.md"
    os.utime(target, (1_700_000_000, 1_700_000_000))

    result = kb.sync(str(corpus))

    assert result.documents["changed"] == 0 and result.chunks["added"] == 0
    assert _docs(kb)["server/backups.md"] == 1
    # the new mtime is stored, so the next sync takes the fast path again
    assert not kb.sync(str(corpus)).published


def test_edited_document_gets_a_new_version_and_only_new_text_is_embedded(
    kb: KnowledgeBase, corpus: Path
) -> None:
    kb.sync(str(corpus))
    before = _chunk_ids(kb)
    _edit(
        corpus / "server" / "backups.md",
        "Backups are kept for **30 days**",
        "Backups are kept for **45 days**",
    )

    result = kb.sync(str(corpus))

    assert result.documents["changed"] == 1 and result.documents["new"] == 0
    assert _docs(kb)["server/backups.md"] == 2
    after = _chunk_ids(kb)
    old = {c for c in before if c.startswith("server/backups.md#")}
    new = {c for c in after if c.startswith("server/backups.md#")}
    assert old and all("#v1#" in c for c in old) and all("#v2#" in c for c in new)
    assert not old & after
    assert result.chunks["removed"] == len(old) and result.chunks["added"] == len(new)
    # Only the chunk whose text changed costs an embedding; the others come from the cache.
    assert result.chunks["embedded"] == 1
    assert result.chunks["reused"] == len(new) - 1
    assert after - new == before - old


def test_previous_version_stays_searchable(kb: KnowledgeBase, corpus: Path) -> None:
    kb.sync(str(corpus))
    _edit(
        corpus / "server" / "backups.md",
        "Backups are kept for **30 days**",
        "Backups are kept for **45 days**",
    )
    kb.sync(str(corpus))

    now = kb.search("backups kept days", k=1, mode="keyword")[0]
    then = kb.search("backups kept days", k=1, mode="keyword", at=2)[0]

    assert "45 days" in now.text and now.doc_version == 2
    assert "30 days" in then.text and then.doc_version == 1
    assert then.chunk_id.startswith("server/backups.md#v1#")


@pytest.mark.parametrize("mode", ["vector", "keyword", "hybrid"])
def test_search_modes_find_the_document_that_answers(
    kb: KnowledgeBase, corpus: Path, mode: str
) -> None:
    kb.sync(str(corpus))

    hits = kb.search("default sync port 7421", k=3, mode=mode)

    assert len(hits) == 3
    assert hits[0].doc_id == "server/ports-and-firewall.txt"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].source.endswith("ports-and-firewall.txt")


def test_search_filter_and_bad_arguments(kb: KnowledgeBase, corpus: Path) -> None:
    kb.sync(str(corpus))

    hits = kb.search("backup", k=5, filter="doc_id LIKE 'faq/%'")
    assert hits and all(h.doc_id.startswith("faq/") for h in hits)
    with pytest.raises(InvalidInput, match="mode"):
        kb.search("x", mode="fuzzy")
    with pytest.raises(InvalidInput, match="empty"):
        kb.search("   ")
    with pytest.raises(NotFound, match=r"hb@99|no version"):
        kb.search("x", at=99)
    for mode in ("vector", "keyword", "hybrid"):
        with pytest.raises(InvalidInput, match="The filter 'pages = 2' is not a SQL") as bad:
            kb.search("backup", mode=mode, filter="pages = 2")
        assert "No field named pages" in bad.value.message and ".lance" not in bad.value.message
        assert bad.value.hint is not None and "doc_id, doc_version" in bad.value.hint


def test_deleted_documents_go_only_with_delete_missing(kb: KnowledgeBase, corpus: Path) -> None:
    kb.sync(str(corpus))
    (corpus / "server" / "backups.md").unlink()

    kept = kb.sync(str(corpus))
    assert kept.documents["deleted"] == 0 and "server/backups.md" in _docs(kb)

    removed = kb.sync(str(corpus), delete_missing=True)
    assert removed.documents["deleted"] == 1 and removed.chunks["removed"] > 0
    assert "server/backups.md" not in _docs(kb)
    assert not any(c.startswith("server/backups.md#") for c in _chunk_ids(kb))
    assert kb.check().ok


def test_a_document_that_comes_back_gets_a_new_version_number(
    kb: KnowledgeBase, corpus: Path, tmp_path: Path
) -> None:
    kb.sync(str(corpus))
    saved = tmp_path / "backups.md"
    shutil.move(corpus / "server" / "backups.md", saved)
    kb.sync(str(corpus), delete_missing=True)
    shutil.move(saved, corpus / "server" / "backups.md")

    result = kb.sync(str(corpus))

    assert result.documents["new"] == 1
    assert _docs(kb)["server/backups.md"] == 2  # never v1 again: chunk ids stay unambiguous


def test_unreadable_documents_are_reported_and_quarantined(kb: KnowledgeBase, corpus: Path) -> None:
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.7 this is not really a pdf")
    (corpus / "binary.txt").write_bytes(bytes(range(256)) * 8)

    result = kb.sync(str(corpus))

    failed = {f["doc_id"]: f["reason"] for f in result.failed}
    assert set(failed) == {"broken.pdf", "binary.txt"}
    assert failed["binary.txt"] == "binary data, not text (it contains NUL bytes)"
    assert "pdf" in failed["broken.pdf"].lower() and "binary" in failed["binary.txt"].lower()
    assert result.documents["failed"] == 2 and result.documents["new"] > 30
    quarantine = kb.lake.ref(kb.manifest().part("quarantine").ref or "").to_arrow()
    assert sorted(quarantine["doc_id"].to_pylist()) == ["binary.txt", "broken.pdf"]
    # The same files failing again is no news: no new version.
    assert not kb.sync(str(corpus)).published

    (corpus / "binary.txt").write_text("Now it is text about backups.")
    (corpus / "broken.pdf").unlink()
    again = kb.sync(str(corpus))
    assert again.documents["new"] == 1 and again.failed == []
    assert kb.lake.ref(kb.manifest().part("quarantine").ref or "").count_rows() == 0


def test_a_document_of_headings_alone_fails_saying_so(kb: KnowledgeBase, corpus: Path) -> None:
    # `echo "# Title\n\nText"` writes one line, all of it a heading.
    (corpus / "stub.md").write_text("# Title\\n\\nText that echo left on the heading line\n")
    (corpus / "outline.html").write_text("<html><body><h1>Outline</h1><h2>Part</h2></body></html>")

    result = kb.sync(str(corpus))

    failed = {f["doc_id"]: f["reason"] for f in result.failed}
    assert failed == dict.fromkeys(
        ["outline.html", "stub.md"], "only headings, no text under them to index"
    )


def test_log_and_diff_describe_each_version(kb: KnowledgeBase, corpus: Path) -> None:
    kb.sync(str(corpus))
    _edit(corpus / "server" / "backups.md", "**30 days**", "**45 days**")
    (corpus / "faq" / "new-question.md").write_text("# New\n\nA new question about exports.")
    (corpus / "server" / "ports-and-firewall.txt").unlink()
    kb.sync(str(corpus), delete_missing=True)

    log = kb.log()
    assert [e.version for e in log] == [3, 2, 1]
    assert "1 new, 1 changed, 1 deleted" in log[0].message
    diff = kb.diff(2, 3)
    assert diff["documents"]["added"] == [{"doc_id": "faq/new-question.md", "doc_version": 1}]
    assert diff["documents"]["changed"] == [
        {"doc_id": "server/backups.md", "from_version": 1, "to_version": 2}
    ]
    assert [d["doc_id"] for d in diff["documents"]["removed"]] == ["server/ports-and-firewall.txt"]


def test_tag_moves_for_every_part_at_once(kb: KnowledgeBase, corpus: Path) -> None:
    kb.sync(str(corpus))
    kb.tag(2, "prod")
    _edit(corpus / "server" / "backups.md", "**30 days**", "**45 days**")
    kb.sync(str(corpus))

    assert "30 days" in kb.search("backups kept", k=1, mode="keyword", at="prod")[0].text
    kb.tag(3, "prod")
    assert "45 days" in kb.search("backups kept", k=1, mode="keyword", at="prod")[0].text
    for part in kb.manifest("prod").parts:
        if part.version is not None:
            assert kb.lake.dataset(part.dataset).tags()["prod"] == part.version


def test_rollback_publishes_an_earlier_state(kb: KnowledgeBase, corpus: Path) -> None:
    kb.sync(str(corpus))
    state2 = (_docs(kb), _chunk_ids(kb))
    _edit(corpus / "server" / "backups.md", "**30 days**", "**45 days**")
    (corpus / "faq" / "keyboard-shortcuts.txt").unlink()
    kb.sync(str(corpus), delete_missing=True)

    version = kb.rollback(2)

    assert version == 4 and [e.version for e in kb.log()][:2] == [4, 3]
    assert (_docs(kb), _chunk_ids(kb)) == state2
    assert "30 days" in kb.search("backups kept", k=1, mode="keyword")[0].text
    assert kb.check().ok
    # the next sync starts from the rolled-back state and brings the edits back
    result = kb.sync(str(corpus), delete_missing=True)
    assert result.documents["changed"] == 1 and result.documents["deleted"] == 1


def test_a_rollback_to_before_an_embedder_was_added_keeps_the_embedder(
    kb: KnowledgeBase, corpus: Path
) -> None:
    kb.sync(str(corpus))  # @2: 30 days
    _edit(corpus / "server" / "backups.md", "**30 days**", "**45 days**")
    kb.sync(str(corpus))  # @3: 45 days
    kb.add_embedder("hash:32")  # @4, filled with the chunks of @3

    kb.rollback(2)  # @5

    first, second = kb.manifest().chunk_parts
    assert second.dataset == "hb.chunks.hash-32"
    ids = [
        sorted(kb.lake.ref(p.ref or "").to_arrow(columns=["chunk_id"])["chunk_id"].to_pylist())
        for p in (first, second)
    ]
    assert ids[0] == ids[1] and set(ids[1]) == _chunk_ids(kb, 2)
    hits = kb.search("backups kept", k=1, embedder="hash:32", mode="keyword")
    assert "30 days" in hits[0].text
    assert kb.check().ok
    # The chunks of @2 came from the embedding cache: nothing was embedded again.
    assert kb.sync(str(corpus)).chunks["embedded"] == 0


def test_a_rollback_to_the_empty_first_version_empties_the_knowledge_base(
    kb: KnowledgeBase, corpus: Path
) -> None:
    kb.sync(str(corpus))
    kb.add_embedder("hash:32")

    kb.rollback(1)

    assert _docs(kb) == {} and _chunk_ids(kb) == set()
    assert kb.search("backups kept", k=3, mode="hybrid") == []
    assert kb.search("backups kept", k=3, embedder="hash:32") == []
    assert kb.check().ok
    # Versions continue past the ones the rollback took out of view.
    result = kb.sync(str(corpus))
    assert result.documents["new"] == len(_docs(kb, 2))
    assert set(_docs(kb).values()) == {2}


def test_after_a_rollback_a_chunk_id_never_names_two_texts(kb: KnowledgeBase, corpus: Path) -> None:
    backups = corpus / "server" / "backups.md"
    kb.sync(str(corpus))  # @2: backups.md v1, 30 days
    _edit(backups, "**30 days**", "**45 days**")
    kb.sync(str(corpus))  # @3: v2, 45 days
    kb.rollback(2)  # @4: v1 again
    _edit(backups, "**45 days**", "**60 days**")

    kb.sync(str(corpus))  # @5

    assert _docs(kb)["server/backups.md"] == 3  # v2 is the 45 days of @3
    # Deleted after another rollback, then back: past every version it ever had.
    kb.rollback(2)  # @6
    saved = backups.read_text()
    backups.unlink()
    kb.sync(str(corpus), delete_missing=True)  # @7
    backups.write_text(saved.replace("**60 days**", "**90 days**"))
    kb.sync(str(corpus))  # @8
    assert _docs(kb)["server/backups.md"] == 4
    texts: dict[str, set[str]] = {}
    for version in range(2, 9):
        part = kb.manifest(version).chunks()
        table = kb.lake.ref(part.ref or "").to_arrow(columns=["chunk_id", "text"])
        for chunk_id, text in zip(table["chunk_id"].to_pylist(), table["text"].to_pylist(),
                                  strict=True):  # fmt: skip
            texts.setdefault(chunk_id, set()).add(text)
    assert {c: t for c, t in texts.items() if len(t) > 1} == {}


def test_second_embedder_is_kept_in_sync(kb: KnowledgeBase, corpus: Path) -> None:
    kb.sync(str(corpus))

    kb.add_embedder("hash:32")
    first = kb.manifest().chunks()
    second = kb.manifest().chunks("hash:32")
    assert second.dataset == "hb.chunks.hash-32"
    assert kb.lake.ref(second.ref or "").count_rows() == kb.lake.ref(first.ref or "").count_rows()
    some = kb.lake.ref(second.ref or "").to_arrow(columns=["chunk_id", "text"]).to_pylist()[7]
    hits = kb.search(some["text"], k=1, embedder="hash:32", mode="vector")
    assert hits[0].chunk_id == some["chunk_id"] and hits[0].score == pytest.approx(1.0)

    _edit(corpus / "server" / "backups.md", "**30 days**", "**45 days**")
    kb.sync(str(corpus))
    ids = [
        set(kb.lake.ref(p.ref or "").to_arrow(columns=["chunk_id"])["chunk_id"].to_pylist())
        for p in kb.manifest().chunk_parts
    ]
    assert ids[0] == ids[1]
    with pytest.raises(NotFound, match="add-embedder"):
        kb.search("x", embedder="hash:16")
    with pytest.raises(AlreadyExists):
        kb.add_embedder("hash:32")


def test_check_finds_and_repairs_chunks_written_outside_a_sync(
    kb: KnowledgeBase, corpus: Path
) -> None:
    kb.sync(str(corpus))
    assert kb.check().ok
    chunks = kb.manifest().chunks().dataset
    kb.lake.dataset(chunks).delete("doc_id = 'server/backups.md'", message="oops")

    report = kb.check()
    kinds = {p.kind for p in report.problems}
    assert not report.ok and kinds == {"head_moved"}  # the manifest still points at v2

    # Damage the published version itself: make the manifest point at the damaged head.
    table = _with_version(kb, chunks, kb.lake.dataset(chunks).log()[0].version)
    kb.lake.dataset("hb").overwrite(table, message="point at the damaged chunks")
    damaged = kb.check()
    assert {p.kind for p in damaged.problems} == {"missing_chunks"}
    assert damaged.problems[0].examples == ["server/backups.md"]

    repaired = kb.check(repair=True)
    assert repaired.repaired_version is not None
    assert kb.check().ok
    assert any(c.startswith("server/backups.md#v1#") for c in _chunk_ids(kb))


def test_a_rollback_also_undoes_writes_made_outside_the_knowledge_base(
    kb: KnowledgeBase, corpus: Path
) -> None:
    kb.sync(str(corpus))
    _edit(corpus / "server" / "backups.md", "**30 days**", "**45 days**")
    kb.sync(str(corpus))
    kb.lake.dataset(kb.manifest().chunks().dataset).delete("doc_id LIKE 'server/%'", message="x")
    (corpus / "faq" / "new.md").write_text("# New\n\nA new question about exports.\n")
    with pytest.raises(CurataError, match="written outside"):
        kb.sync(str(corpus))

    kb.rollback(3)

    assert kb.check().ok
    assert "45 days" in kb.search("backups kept", k=1, mode="keyword")[0].text


def _with_version(kb: KnowledgeBase, dataset: str, version: int) -> pa.Table:
    table = kb.manifest().to_table()
    versions = [
        version if d == dataset else v
        for d, v in zip(table["dataset"].to_pylist(), table["version"].to_pylist(), strict=True)
    ]
    return table.set_column(2, "version", pa.array(versions, pa.int64()))


def test_create_refuses_bad_settings_and_taken_names(lake: curata.Lake) -> None:
    KnowledgeBase.create(lake, "hb", embedder=EMBEDDER)
    with pytest.raises(AlreadyExists) as err:
        KnowledgeBase.create(lake, "hb", embedder=EMBEDDER)
    assert err.value.message == "Knowledge base 'hb' exists already."
    assert "curata kb sync hb SOURCE" in (err.value.hint or "")
    lake.create_dataset("docs.chunks")
    with pytest.raises(AlreadyExists, match=r"Dataset\(s\) docs.chunks exist already"):
        KnowledgeBase.create(lake, "docs", embedder=EMBEDDER)
    assert not lake.has_dataset("docs")
    with pytest.raises(InvalidInput, match="embedder"):
        KnowledgeBase.create(lake, "other", embedder="word2vec")
    with pytest.raises(InvalidInput, match="overlap"):
        KnowledgeBase.create(lake, "other", embedder=EMBEDDER, chunk_size=100, chunk_overlap=60)
    with pytest.raises(NotFound, match="No knowledge base named 'nope'"):
        KnowledgeBase(lake, "nope")
    assert {d.name for d in lake.datasets()} >= {"hb", "hb.documents", "hb.chunks"}


def test_sync_from_an_s3_bucket_and_a_jsonl_file(
    kb: KnowledgeBase, corpus: Path, s3: S3Server, tmp_path: Path
) -> None:
    prefix = s3.fresh_prefix()
    for path in sorted(corpus.rglob("*.md"))[:5]:
        s3.put(f"{prefix}/{path.relative_to(corpus).as_posix()}", path.read_bytes())
    uri = f"s3://{s3.bucket}/{prefix}"

    first = kb.sync(uri, storage_options=s3.storage_options)
    assert first.documents["new"] == 5 and first.failed == []
    s3.put(f"{prefix}/extra/new.md", b"# Extra\n\nA page that only exists in the bucket.")
    second = kb.sync(uri, storage_options=s3.storage_options)
    assert (second.documents["new"], second.documents["unchanged"]) == (1, 5)
    assert kb.search("only exists in the bucket", k=1, mode="keyword")[0].doc_id == "extra/new.md"

    posts = tmp_path / "posts.jsonl"
    posts.write_text(
        '{"id": "p1", "text": "How do I export notes to PDF?", "forum": "help"}\n'
        '{"id": "p2", "text": "Dark mode flickers on Android.", "forum": "bugs"}\n'
    )
    third = kb.sync(str(posts))
    assert third.documents["new"] == 2
    hit = kb.search("dark mode flickers", k=1, mode="keyword")[0]
    assert (hit.doc_id, hit.doc_version) == ("p2", 1)


def test_pii_is_replaced_before_anything_is_stored_or_embedded(
    lake: curata.Lake, tmp_path: Path
) -> None:
    folder = tmp_path / "tickets"
    folder.mkdir()
    (folder / "t1.md").write_text(
        "# Refund request\n\nPlease call me on +1 415 555 0132 or write to ada@example.org.\n\n"
        "My card 4111 1111 1111 1111 was charged twice."
    )
    (folder / "t2.md").write_text("# Question\n\nHow do I export a notebook?")
    kb = KnowledgeBase.create(lake, "support", embedder=EMBEDDER, pii="replace")

    result = kb.sync(str(folder))

    assert result.pii_redacted == 3
    docs = lake.ref(kb.manifest().documents.ref or "").to_arrow()
    chunks = lake.ref(kb.manifest().chunks().ref or "").to_arrow()
    stored = " ".join(docs["text"].to_pylist() + docs["sections"].to_pylist())
    stored += " ".join(chunks["text"].to_pylist())
    for value in ("ada@example.org", "555 0132", "4111"):
        assert value not in stored
    assert "<EMAIL_ADDRESS>" in stored and "<CREDIT_CARD>" in stored
    assert kb.search("EMAIL_ADDRESS", k=1, mode="keyword")[0].doc_id == "t1.md"
    with pytest.raises(InvalidInput, match="PII mode"):
        KnowledgeBase.create(lake, "other", embedder=EMBEDDER, pii="encrypt")


@pytest.mark.parametrize("mode", ["exact", "near"])
def test_duplicate_documents_are_skipped(lake: curata.Lake, corpus: Path, mode: str) -> None:
    kb = KnowledgeBase.create(lake, "hb", embedder=EMBEDDER, dedup=mode)
    kb.sync(str(corpus))
    original = (corpus / "server" / "backups.md").read_text()
    copy = original.upper() if mode == "exact" else original.replace("nightly", "daily", 1)
    (corpus / "mirror").mkdir()
    (corpus / "mirror" / "backups-copy.md").write_text(copy)
    (corpus / "mirror" / "fresh.md").write_text("# Fresh\n\nA page about something else.")

    result = kb.sync(str(corpus))

    assert result.duplicates == [
        {"doc_id": "mirror/backups-copy.md", "duplicate_of": "server/backups.md"}
    ]
    assert result.documents["new"] == 1
    assert "mirror/backups-copy.md" not in _docs(kb) and "mirror/fresh.md" in _docs(kb)
    assert kb.check().ok


def test_a_moved_document_is_not_a_duplicate_of_itself_with_delete_missing(
    lake: curata.Lake, corpus: Path
) -> None:
    kb = KnowledgeBase.create(lake, "hb", embedder=EMBEDDER, dedup="exact")
    kb.sync(str(corpus))
    (corpus / "archive").mkdir()
    shutil.move(corpus / "server" / "backups.md", corpus / "archive" / "backups.md")

    result = kb.sync(str(corpus), delete_missing=True)

    assert result.duplicates == []
    assert (result.documents["new"], result.documents["deleted"]) == (1, 1)
    assert "archive/backups.md" in _docs(kb) and "server/backups.md" not in _docs(kb)
    assert kb.check().ok
