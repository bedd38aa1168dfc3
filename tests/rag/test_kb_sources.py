"""Knowledge bases fed by several sources: each document belongs to the source it was read
from, ``delete_missing`` removes only that source's documents, a doc id published from
another source is quarantined instead of replacing the document, and ``prefix`` gives a
source its own doc ids — on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import curata
from curata.errors import InvalidInput
from curata.rag import KnowledgeBase, source_scope
from curata.rag.manifest import Manifest, Part
from curata.rag.source_scope import ScopedSource, stored_source

if TYPE_CHECKING:
    from conftest import S3Server


@pytest.fixture
def kb(lake: curata.Lake) -> KnowledgeBase:
    return KnowledgeBase.create(lake, "hb", embedder="hash:64", chunk_size=120, chunk_overlap=20)


def _write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


HANDBOOK = {
    "README.md": "# Handbook\n\nBackups are kept for thirty days in the vault.\n",
    "setup.md": "# Setup\n\nInstall the agent and open port 7443.\n",
}
FAQ = {
    "README.md": "# FAQ\n\nQuestions about billing and refunds go to accounts.\n",
    "billing.md": "# Billing\n\nInvoices are sent on the first of the month.\n",
}


@pytest.fixture
def handbook(tmp_path: Path) -> Path:
    return _write(tmp_path / "handbook", HANDBOOK)


@pytest.fixture
def faq(tmp_path: Path) -> Path:
    return _write(tmp_path / "faq", FAQ)


def _documents(kb: KnowledgeBase) -> dict[str, str]:
    """doc_id -> source of the published documents."""
    table = kb.lake.ref(kb.manifest().documents.ref or "").to_arrow(columns=["doc_id", "source"])
    return dict(zip(table["doc_id"].to_pylist(), table["source"].to_pylist(), strict=True))


def _quarantine(kb: KnowledgeBase) -> dict[str, str]:
    part = kb.manifest().part("quarantine")
    table = kb.lake.ref(part.ref or "").to_arrow(columns=["doc_id", "reason"])
    return dict(zip(table["doc_id"].to_pylist(), table["reason"].to_pylist(), strict=True))


def _top_doc(kb: KnowledgeBase, query: str) -> str:
    return kb.search(query, k=1, mode="keyword")[0].doc_id


def test_two_folders_fill_one_knowledge_base_each_document_with_its_source(
    kb: KnowledgeBase, handbook: Path, faq: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (faq / "README.md").unlink()
    monkeypatch.chdir(handbook.parent)

    kb.sync("handbook/")
    second = kb.sync(str(faq))

    assert second.documents["new"] == 1 and second.failed == []
    assert _documents(kb) == {
        "README.md": "handbook",  # given as handbook/: stored as given, normalised
        "setup.md": "handbook",
        "billing.md": str(faq),
    }
    for spelling in ("./handbook", "handbook", "handbook//", "faq/../handbook/"):
        again = kb.sync(spelling)
        assert again.documents["unchanged"] == 2 and not again.published


def test_files_indexed_from_two_overlapping_sources_are_warned_about(
    kb: KnowledgeBase, handbook: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(handbook / "guides", {"install.md": "# Install\n\nRun the installer twice.\n"})
    monkeypatch.chdir(handbook.parent)
    assert kb.sync("handbook").warnings == []

    inner = kb.sync("handbook/guides")

    assert inner.documents["new"] == 1  # guides/install.md of handbook is install.md here
    assert inner.warnings == [
        "source handbook/guides lies inside source handbook of this knowledge base, and 1 "
        "file(s) are indexed from both, under two doc ids. Exclude them from one of the two "
        "(--exclude), or, if this source replaces the other, sync with --moved-from."
    ]
    # Excluded from the outer one, the folder is indexed once: no more warning.
    fixed = kb.sync("handbook", exclude=("guides/**",), delete_missing=True)
    assert fixed.documents["deleted"] == 1 and fixed.warnings == []
    assert kb.sync("handbook/guides").warnings == []
    # The same folder by its absolute path is another source (with a prefix, no doc id
    # clashes): the same place as one, holding the other.
    outer = kb.sync(str(handbook), prefix="abs")
    assert [w.split(" of this")[0] for w in outer.warnings] == [
        f"source {handbook} is the same place as source handbook",
        f"source {handbook} holds source handbook/guides",
    ]
    assert "and 2 file(s)" in outer.warnings[0] and "and 1 file(s)" in outer.warnings[1]


def test_delete_missing_removes_only_documents_of_the_source_synced(
    kb: KnowledgeBase, handbook: Path, faq: Path
) -> None:
    (faq / "README.md").rename(faq / "intro.md")
    kb.sync(str(handbook))
    kb.sync(str(faq))
    (handbook / "setup.md").unlink()

    from_faq = kb.sync(str(faq), delete_missing=True)
    assert from_faq.documents["deleted"] == 0 and not from_faq.published
    assert set(_documents(kb)) == {"README.md", "setup.md", "intro.md", "billing.md"}

    from_handbook = kb.sync(str(handbook), delete_missing=True)
    assert from_handbook.documents["deleted"] == 1
    assert set(_documents(kb)) == {"README.md", "intro.md", "billing.md"}
    assert kb.check().ok


def test_a_doc_id_published_from_another_source_is_quarantined_and_the_first_stays(
    kb: KnowledgeBase, handbook: Path, faq: Path
) -> None:
    kb.sync(str(handbook))

    result = kb.sync(str(faq))

    assert result.documents == {
        "new": 1,
        "changed": 0,
        "unchanged": 0,
        "deleted": 0,
        "failed": 1,
    }
    (failure,) = result.failed
    assert failure["doc_id"] == "README.md"
    reason = failure["reason"]
    assert reason.startswith(f"published from {handbook} already, so this one from {faq} was")
    moved = (
        "(moved, another checkout, a sync run from another folder)? Run `curata kb sync hb "
        f"{faq} --moved-from {handbook}`: the documents of {handbook} become this source's."
    )
    other = f"Another source? To index both, run `curata kb sync hb {faq} --prefix faq --"
    assert moved in reason and other in reason
    assert "this document becomes faq/README.md" in reason
    assert _quarantine(kb) == {"README.md": reason}
    assert _documents(kb)["README.md"] == str(handbook)
    assert _top_doc(kb, "backups thirty days vault") == "README.md"
    assert kb.search("refunds accounts", k=5, mode="keyword") == []
    assert kb.check().ok


def test_a_prefix_resolves_the_clash_and_is_remembered_for_the_source(
    kb: KnowledgeBase, handbook: Path, faq: Path
) -> None:
    kb.sync(str(handbook))

    first = kb.sync(str(faq), prefix="faq/")

    assert first.documents["new"] == 2 and first.failed == []
    assert set(_documents(kb)) == {"README.md", "setup.md", "faq/README.md", "faq/billing.md"}
    assert _top_doc(kb, "refunds accounts") == "faq/README.md"
    assert _top_doc(kb, "backups thirty days vault") == "README.md"

    (faq / "billing.md").write_text("# Billing\n\nInvoices are sent on the fifth.\n")
    later = kb.sync(str(faq))  # no prefix given: the remembered one applies
    assert (later.documents["changed"], later.documents["new"]) == (1, 0)
    assert kb.sync(str(faq), prefix="faq").documents["unchanged"] == 2

    with pytest.raises(InvalidInput, match="with the prefix 'faq'; the prefix 'help' would"):
        kb.sync(str(faq), prefix="help")
    renamed = kb.sync(str(faq), prefix="help", delete_missing=True)
    assert (renamed.documents["new"], renamed.documents["deleted"]) == (2, 2)
    assert set(_documents(kb)) == {"README.md", "setup.md", "help/README.md", "help/billing.md"}
    assert kb.check().ok


def test_a_source_with_documents_but_no_prefix_takes_one_only_by_renaming(
    kb: KnowledgeBase, handbook: Path, faq: Path
) -> None:
    kb.sync(str(handbook))
    kb.sync(str(faq))  # billing.md indexed, README.md clashes

    with pytest.raises(InvalidInput, match="with no prefix; the prefix 'faq' would index them"):
        kb.sync(str(faq), prefix="faq")
    result = kb.sync(str(faq), prefix="faq", delete_missing=True)

    assert (result.documents["new"], result.documents["deleted"]) == (2, 1)
    assert set(_documents(kb)) == {"README.md", "setup.md", "faq/README.md", "faq/billing.md"}
    assert _quarantine(kb) == {}


@pytest.mark.parametrize("prefix", ["../up", "a//b", "/", "./x"])
def test_a_prefix_that_is_not_a_relative_path_is_refused(
    kb: KnowledgeBase, faq: Path, prefix: str
) -> None:
    if prefix == "/":  # only slashes: no prefix at all
        assert kb.sync(str(faq), prefix=prefix).documents["new"] == 2
        assert set(_documents(kb)) == {"README.md", "billing.md"}
        return
    with pytest.raises(InvalidInput, match="is not a relative path"):
        kb.sync(str(faq), prefix=prefix)


def test_a_knowledge_base_written_before_sources_were_normalised_still_syncs(
    kb: KnowledgeBase,
    handbook: Path,
    faq: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    posts = tmp_path / "posts.jsonl"
    posts.write_text(
        '{"id": "p1", "text": "Dark mode flickers on Android."}\n'
        '{"id": "p2", "text": "Export to PDF loses images."}\n'
    )
    (faq / "README.md").unlink()
    monkeypatch.chdir(tmp_path)
    # Written as curata stored sources before: the path as typed.
    with monkeypatch.context() as old:
        old.setattr(source_scope, "source_identity", lambda source: source.uri)
        kb.sync("./handbook/")
        kb.sync("./posts.jsonl")
        kb.sync("./faq/billing.md")
    assert set(_documents(kb).values()) == {"handbook", "./posts.jsonl", "faq/billing.md"}

    for source in ("handbook", "./posts.jsonl", "posts.jsonl", "faq/billing.md"):
        again = kb.sync(source)
        assert again.failed == [] and not again.published

    (handbook / "setup.md").unlink()
    (handbook / "p1").write_text("A file whose name is the id of a post.")
    result = kb.sync("handbook", delete_missing=True)
    assert result.documents["deleted"] == 1
    assert [f["doc_id"] for f in result.failed] == ["p1"]
    assert "published from posts.jsonl already" in result.failed[0]["reason"]
    assert set(_documents(kb)) == {"README.md", "p1", "p2", "billing.md"}

    posts.write_text('{"id": "p2", "text": "Export to PDF loses images."}\n')
    records = kb.sync("posts.jsonl", delete_missing=True)
    assert records.documents["deleted"] == 1 and records.documents["unchanged"] == 1
    assert set(_documents(kb)) == {"README.md", "p2", "billing.md"}
    assert kb.check().ok


def test_two_bucket_prefixes_are_two_sources(kb: KnowledgeBase, s3: S3Server) -> None:
    first, second = s3.fresh_prefix(), s3.fresh_prefix()
    s3.put(f"{first}/a.md", b"# A\n\nAlpha is in the first prefix.")
    s3.put(f"{first}/b.md", b"# B\n\nBeta is in the first prefix too.")
    s3.put(f"{second}/c.md", b"# C\n\nGamma is in the second prefix.")
    options = s3.storage_options
    kb.sync(f"s3://{s3.bucket}/{first}/", storage_options=options)
    kb.sync(f"s3://{s3.bucket}/{second}", storage_options=options)
    s3.delete(f"{first}/b.md")

    kept = kb.sync(f"s3://{s3.bucket}/{second}/", storage_options=options, delete_missing=True)
    removed = kb.sync(f"s3://{s3.bucket}/{first}", storage_options=options, delete_missing=True)

    assert kept.documents["deleted"] == 0 and kept.documents["unchanged"] == 1
    assert removed.documents["deleted"] == 1 and removed.documents["unchanged"] == 1
    assert _documents(kb) == {
        "a.md": f"s3://{s3.bucket}/{first}",
        "c.md": f"s3://{s3.bucket}/{second}",
    }


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("/srv/handbook/", "/srv/handbook"),
        ("handbook", "handbook"),
        ("./docs/handbook/", "docs/handbook"),
        ("../handbook", "../handbook"),
        ("docs/../handbook", "handbook"),
        (".", "."),
        ("./", "."),
        ("./posts.jsonl", "posts.jsonl"),
        ("s3://bucket/prefix/", "s3://bucket/prefix"),
        ("s3://bucket/", "s3://bucket"),
        (None, ""),
    ],
)
def test_stored_sources_are_read_as_identities(source: str | None, expected: str) -> None:
    assert stored_source(source) == expected


def test_each_source_keeps_its_own_quarantine_rows(
    kb: KnowledgeBase, handbook: Path, faq: Path
) -> None:
    (handbook / "broken.pdf").write_bytes(b"%PDF-1.7 not really a pdf")
    kb.sync(str(handbook))
    kb.sync(str(faq))  # README.md clashes
    quarantined = {"broken.pdf": str(handbook), "README.md": str(faq)}

    again = kb.sync(str(handbook))  # handbook's failure again, faq's still unresolved

    assert not again.published
    part = kb.manifest().part("quarantine")
    rows = kb.lake.ref(part.ref or "").to_arrow(columns=["doc_id", "source"]).to_pylist()
    assert {r["doc_id"]: r["source"] for r in rows} == quarantined

    (handbook / "broken.pdf").unlink()
    kb.sync(str(handbook))
    assert set(_quarantine(kb)) == {"README.md"}
    kb.sync(str(faq), prefix="faq", delete_missing=True)
    assert _quarantine(kb) == {}


def test_a_quarantine_written_before_it_named_sources_is_replaced(
    kb: KnowledgeBase, handbook: Path, faq: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow as pa

    def without_sources(
        self: ScopedSource, before: object, failed: list[dict[str, str]]
    ) -> pa.Table:
        return pa.Table.from_pylist(
            failed, schema=pa.schema([("doc_id", pa.string()), ("reason", pa.string())])
        )

    (handbook / "broken.pdf").write_bytes(b"%PDF-1.7 not really a pdf")
    with monkeypatch.context() as old:
        old.setattr(ScopedSource, "quarantine", without_sources)
        kb.sync(str(handbook))
    assert set(_quarantine(kb)) == {"broken.pdf"}

    kb.sync(str(faq))  # the rows of the last sync, whichever source that was, make way

    assert set(_quarantine(kb)) == {"README.md"}
    assert set(_documents(kb)) == {"README.md", "setup.md", "billing.md"}


def test_renaming_by_prefix_with_dedup_on_keeps_every_document(
    lake: curata.Lake, faq: Path
) -> None:
    kb = KnowledgeBase.create(lake, "dd", embedder="hash:64", chunk_size=120, dedup="exact")
    kb.sync(str(faq))

    renamed = kb.sync(str(faq), prefix="faq", delete_missing=True)

    assert renamed.duplicates == []
    assert set(_documents(kb)) == {"faq/README.md", "faq/billing.md"}


def _moved_copy(folder: Path, to: Path) -> Path:
    """``folder`` at another place, with its modification times (as ``mv`` or a sync tool)."""
    import shutil

    shutil.copytree(folder, to)
    return to


def test_a_source_moved_from_another_place_takes_its_documents_without_parsing_them(
    kb: KnowledgeBase, handbook: Path, faq: Path, tmp_path: Path
) -> None:
    kb.sync(str(handbook))
    kb.sync(str(faq), prefix="faq")
    moved = _moved_copy(faq, tmp_path / "elsewhere" / "faq")
    (moved / "billing.md").write_text("# Billing\n\nInvoices are sent on the fifth.\n")
    clashing = kb.sync(str(moved), prefix="faq")
    assert [f["doc_id"] for f in clashing.failed] == ["faq/README.md", "faq/billing.md"]

    result = kb.sync(str(moved), moved_from=str(faq) + "/")

    assert result.documents == {
        "new": 0,
        "changed": 1,
        "unchanged": 1,
        "deleted": 0,
        "failed": 0,
    }
    assert result.moved == 2 and result.chunks["embedded"] == 1
    assert _documents(kb) == {
        "README.md": str(handbook),
        "setup.md": str(handbook),
        "faq/README.md": str(moved),  # the prefix came along
        "faq/billing.md": str(moved),
    }
    assert _quarantine(kb) == {}  # the clashes of the new place are cleared
    assert kb.sync(str(moved)).documents["unchanged"] == 2  # its prefix now, remembered
    assert kb.search("invoices fifth", k=1, mode="keyword")[0].doc_id == "faq/billing.md"
    assert "moved_from" in kb.lake.runs(limit=3)[1].params
    # The old place is no source of the knowledge base any more: its files clash.
    assert len(kb.sync(str(faq), prefix="faq").failed) == 2
    assert kb.check().ok


def test_a_move_with_delete_missing_removes_what_the_old_place_had_and_the_new_lacks(
    lake: curata.Lake, kb: KnowledgeBase, handbook: Path, faq: Path, tmp_path: Path
) -> None:
    keeping = KnowledgeBase.create(lake, "keeping", embedder="hash:64", chunk_size=120)
    for each in (kb, keeping):
        each.sync(str(handbook))
        each.sync(str(faq), prefix="faq")
    moved = _moved_copy(faq, tmp_path / "new-faq")
    (moved / "README.md").rename(moved / "intro.md")

    result = kb.sync(str(moved), moved_from=str(faq), delete_missing=True)
    kept = keeping.sync(str(moved), moved_from=str(faq))

    assert result.documents == {
        "new": 1,
        "changed": 0,
        "unchanged": 1,
        "deleted": 1,
        "failed": 0,
    }
    assert result.moved == 1  # faq/billing.md; faq/README.md is deleted
    assert _documents(kb) == {
        "README.md": str(handbook),
        "setup.md": str(handbook),
        "faq/intro.md": str(moved),
        "faq/billing.md": str(moved),
    }
    assert kb.check().ok
    assert (kept.documents["deleted"], kept.moved) == (0, 2)  # without it, nothing goes
    assert set(_documents(keeping).values()) == {str(handbook), str(moved)}
    assert "faq/README.md" in _documents(keeping)


def test_moving_from_a_place_that_is_not_a_source_is_refused_with_the_sources(
    kb: KnowledgeBase, handbook: Path, faq: Path, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput, match="none yet"):
        kb.sync(str(faq), moved_from=str(handbook))
    kb.sync(str(handbook))

    with pytest.raises(InvalidInput) as refused:
        kb.sync(str(faq), moved_from=str(tmp_path / "nowhere"))

    assert refused.value.message == (
        f"'hb' has no documents from {tmp_path / 'nowhere'}, so there is nothing to move from it."
    )
    assert refused.value.hint == (
        f"--moved-from takes one of its sources (`curata kb sources hb`): {handbook}."
    )
    assert kb.version == 2


def test_a_move_onto_a_source_with_documents_under_another_prefix_asks_for_one(
    kb: KnowledgeBase, handbook: Path, faq: Path, tmp_path: Path
) -> None:
    kb.sync(str(faq), prefix="faq")
    moved = _moved_copy(faq, tmp_path / "new-faq")
    (moved / "extra.md").write_text("# Extra\n\nSynced from the new place before the move.\n")
    kb.sync(str(moved))  # indexed under bare doc ids: README.md, billing.md, extra.md

    with pytest.raises(InvalidInput, match="under two prefixes"):
        kb.sync(str(moved), moved_from=str(faq))
    result = kb.sync(str(moved), moved_from=str(faq), prefix="faq", delete_missing=True)

    assert set(_documents(kb)) == {"faq/README.md", "faq/billing.md", "faq/extra.md"}
    assert (result.documents["new"], result.documents["deleted"]) == (1, 3)


def test_one_folder_by_any_spelling_of_its_path_and_by_a_copy_with_moved_from(
    kb: KnowledgeBase, handbook: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    kb.sync("handbook")
    assert not kb.sync("./handbook/").published

    absolute = kb.sync(str(handbook))  # given otherwise: another source

    assert [f["doc_id"] for f in absolute.failed] == ["README.md", "setup.md"]
    reason = absolute.failed[0]["reason"]
    assert reason.startswith(f"published from handbook already, so this one from {handbook} ")
    assert (
        f"from another folder)? Run `curata kb sync hb {handbook} --moved-from handbook`" in reason
    )
    assert f"run `curata kb sync hb {handbook} --prefix handbook`" in reason
    _moved_copy(handbook, tmp_path / "archive" / "handbook")
    moved = kb.sync("archive/handbook/", moved_from="./handbook")
    assert (moved.moved, moved.documents["unchanged"], moved.chunks["embedded"]) == (2, 2, 0)
    assert set(_documents(kb).values()) == {"archive/handbook"}
    assert set(_quarantine(kb)) == {"README.md", "setup.md"}  # the clashes of the other one
    monkeypatch.chdir(tmp_path / "archive")
    assert len(kb.sync("handbook").failed) == 2  # "handbook" is no source of it any more


def test_checkouts_synced_by_one_relative_path_from_their_roots_share_the_source(
    kb: KnowledgeBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, ci = tmp_path / "home" / "alice" / "repo", tmp_path / "ci" / "build-7"
    for checkout in (alice, ci):  # each written when checked out: their own mtimes
        _write(checkout / "docs", HANDBOOK)
    monkeypatch.chdir(alice)
    kb.sync("docs/", prefix="handbook")

    monkeypatch.chdir(ci)
    (ci / "docs" / "setup.md").write_text("# Setup\n\nInstall the agent and open port 8443.\n")
    (ci / "docs" / "README.md").unlink()
    from_ci = kb.sync("./docs", delete_missing=True)

    assert from_ci.failed == [] and from_ci.moved == 0
    assert from_ci.documents == {
        "new": 0,
        "changed": 1,
        "unchanged": 0,
        "deleted": 1,
        "failed": 0,
    }
    assert _documents(kb) == {"handbook/setup.md": "docs"}  # the prefix is the source's
    monkeypatch.chdir(alice)
    (alice / "docs" / "README.md").unlink()  # alice pulls the change
    (alice / "docs" / "setup.md").write_text("# Setup\n\nInstall the agent and open port 8443.\n")
    pulled = kb.sync("docs")
    assert pulled.failed == [] and pulled.documents["unchanged"] == 1
    assert pulled.chunks["embedded"] == 0
    assert kb.search("agent port", k=1, mode="keyword")[0].doc_id == "handbook/setup.md"


def _remember_as_before(self: ScopedSource, manifest: Manifest) -> Manifest:
    """What curata kept in the manifest while sources were absolute paths: the prefixes."""
    remembered = source_scope.remember_source(manifest, self.identity, self.prefix, self.moved)
    docs = remembered.documents
    settings = {k: v for k, v in docs.settings.items() if k != source_scope.ABSOLUTE_SETTING}
    documents = Part(docs.role, docs.dataset, docs.version, settings)
    parts = tuple(documents if p is docs else p for p in remembered.parts)
    return Manifest(manifest.name, manifest.version, parts)


def test_a_knowledge_base_written_with_absolute_sources_moves_to_the_paths_as_given(
    kb: KnowledgeBase,
    handbook: Path,
    faq: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (handbook / "broken.pdf").write_bytes(b"%PDF-1.7 not really a pdf")
    monkeypatch.chdir(tmp_path)
    with monkeypatch.context() as old:  # as curata stored sources before: absolute paths
        old.setattr(source_scope, "source_identity", lambda s: os.path.abspath(s.uri))
        old.setattr(ScopedSource, "remember", _remember_as_before)
        kb.sync("handbook/")
        kb.sync("faq", prefix="faq")
    assert set(_documents(kb).values()) == {str(handbook), str(faq)}

    same_place = kb.sync("handbook/")  # the same command from the same folder
    kb.sync("faq")  # the prefix remembered under the absolute path carries over

    assert same_place.moved == 2 and same_place.documents["unchanged"] == 2
    assert same_place.chunks["embedded"] == 0
    assert [f["doc_id"] for f in same_place.failed] == ["broken.pdf"]
    assert _documents(kb) == {
        "README.md": "handbook",
        "setup.md": "handbook",
        "faq/README.md": "faq",
        "faq/billing.md": "faq",
    }
    assert set(_quarantine(kb)) == {"broken.pdf"}  # the old row is replaced, not doubled
    assert kb.manifest().documents.settings["sources"] == {"faq": "faq"}
    bob = tmp_path / "bob"
    _moved_copy(handbook, bob / "handbook")
    monkeypatch.chdir(bob)
    from_bob = kb.sync("handbook")  # another member, from the same folder of his copy
    assert from_bob.moved == 0 and [f["doc_id"] for f in from_bob.failed] == ["broken.pdf"]
    assert kb.check().ok


def test_an_absolute_path_given_as_such_is_a_source_a_relative_one_does_not_take_over(
    kb: KnowledgeBase, faq: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb.sync(str(faq))
    monkeypatch.chdir(tmp_path)

    relative = kb.sync("faq")

    assert relative.moved == 0 and len(relative.failed) == 2
    assert set(_documents(kb).values()) == {str(faq)}
    assert kb.sync("faq", moved_from=str(faq)).moved == 2


def test_the_sources_of_a_knowledge_base_with_prefix_documents_failures_and_last_sync(
    kb: KnowledgeBase,
    handbook: Path,
    faq: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert kb.sources() == []
    posts = tmp_path / "posts.jsonl"
    posts.write_text('{"id": "p1", "text": "Dark mode flickers on Android."}\n')
    (handbook / "broken.pdf").write_bytes(b"%PDF-1.7 not really a pdf")
    monkeypatch.chdir(tmp_path)
    with monkeypatch.context() as old:  # stored as typed, as curata did before
        old.setattr(source_scope, "source_identity", lambda source: source.uri)
        kb.sync("./posts.jsonl")  # version 2
    kb.sync("handbook/")  # 3
    kb.sync(str(faq), prefix="faq")  # 4
    kb.sync("handbook")  # nothing changed: no version
    (faq / "billing.md").write_text("# Billing\n\nInvoices are sent on the fifth.\n")
    kb.sync(str(faq))  # 5
    kb.sync("posts.jsonl")  # no version either

    assert [s.to_dict() for s in kb.sources()] == [
        {
            "source": str(faq),
            "prefix": "faq",
            "documents": 2,
            "failed": 0,
            "last_sync_version": 5,
        },
        {
            "source": "handbook",
            "prefix": "",
            "documents": 2,
            "failed": 1,
            "last_sync_version": 3,
        },
        {
            "source": "posts.jsonl",  # stored as ./posts.jsonl
            "prefix": "",
            "documents": 1,
            "failed": 0,
            "last_sync_version": 2,
        },
    ]
