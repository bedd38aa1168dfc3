"""``curata kb``: every command as a user runs it, with its output, JSON and exit codes."""

from __future__ import annotations

import json
import os
import shutil
from importlib.resources import files as package_files
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Cli


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    target = tmp_path / "handbook"
    shutil.copytree(str(package_files("curata.samples") / "kb"), target)
    return target


@pytest.fixture
def kb(project: Path, cli: Cli, corpus: Path) -> Path:
    cli("kb", "create", "hb", "--embedder", "hash:64", "--chunk-size", "120")
    cli("kb", "sync", "hb", str(corpus))
    return corpus


def test_create_and_sync_print_what_happened(project: Path, cli: Cli, corpus: Path) -> None:
    created = cli("kb", "create", "hb", "--embedder", "hash:64")
    assert created.stdout.startswith("Created knowledge base hb (embedder hash:64")

    synced = cli("kb", "sync", "hb", str(corpus), "--json").json()

    assert synced["version"] == 2
    assert synced["documents"]["new"] == 40 and synced["documents"]["failed"] == 0
    assert set(synced["chunks"]) == {"added", "embedded", "reused", "removed"}
    assert synced["seconds"] > 0
    again = cli("kb", "sync", "hb", str(corpus))
    assert "nothing changed; hb stays at version 2" in again.stdout
    assert "0 new, 0 changed, 40 unchanged" in again.stdout


def test_a_sync_that_only_stores_new_modification_times_says_so(kb: Path, cli: Cli) -> None:
    os.utime(kb / "server" / "backups.md", (1_700_000_000, 1_700_000_000))

    out = cli("kb", "sync", "hb", str(kb)).stdout

    assert "0 new, 0 changed, 40 unchanged" in out
    assert "1 unchanged document(s) with a new modification time: stored, so" in out
    assert "published hb@3" in out
    assert cli("kb", "log", "hb").stdout.splitlines()[0].endswith("0 failed, 1 touched")
    assert "nothing changed; hb stays at version 3" in cli("kb", "sync", "hb", str(kb)).stdout


def test_search_json_and_text(kb: Path, cli: Cli) -> None:
    hits = cli("kb", "search", "hb", "default sync port", "-k", "2", "--json").json()

    assert len(hits) == 2
    assert set(hits[0]) >= {"chunk_id", "doc_id", "doc_version", "score", "text", "source"}
    assert hits[0]["doc_id"] == "server/ports-and-firewall.txt"
    text = cli("kb", "search", "hb", "refund", "-k", "1", "--mode", "keyword").stdout
    assert text.startswith("1. billing/refunds-and-cancellation.html#v1#c")


def test_log_diff_tag_rollback_check(kb: Path, cli: Cli) -> None:
    page = kb / "server" / "backups.md"
    page.write_text(page.read_text().replace("**30 days**", "**45 days**"))
    cli("kb", "sync", "hb", str(kb), "-m", "longer retention")

    log = cli("kb", "log", "hb").stdout.splitlines()
    assert log[0].startswith("hb@3") and log[0].endswith("longer retention")
    diff = cli("kb", "diff", "hb", "2", "3").stdout
    assert "~ server/backups.md (v1 -> v2)" in diff
    assert cli("kb", "tag", "hb", "2", "prod").stdout == "hb@prod -> hb@2\n"
    old = cli("kb", "search", "hb", "backups kept", "--at", "prod", "--mode", "keyword",
              "-k", "1", "--json").json()  # fmt: skip
    assert "30 days" in old[0]["text"]

    assert "published hb@4 with the content of hb@2" in cli("kb", "rollback", "hb", "2").stdout
    assert cli("kb", "check", "hb").stdout == "hb@4: consistent\n"
    assert cli("kb", "check", "hb", "--json").json()["ok"] is True


def test_add_embedder(kb: Path, cli: Cli) -> None:
    out = cli("kb", "add-embedder", "hb", "hash:32").stdout
    assert "search it with --embedder hash:32" in out
    hits = cli("kb", "search", "hb", "sync port", "--embedder", "hash:32", "--json").json()
    assert hits


def test_check_fails_with_exit_code_1_on_inconsistency(kb: Path, cli: Cli) -> None:
    cli("dataset", "delete-rows", "hb.chunks", "--where", "doc_id = 'server/backups.md'")

    result = cli("kb", "check", "hb", code=1)

    assert "head_moved" in result.stdout
    assert "curata kb check hb --repair" in result.stdout


def test_a_part_written_outside_kb_stops_the_sync_until_repaired(kb: Path, cli: Cli) -> None:
    cli("dataset", "delete-rows", "hb.chunks", "--where", "doc_id = 'server/backups.md'")
    (kb / "faq" / "new.md").write_text("# New\n\nA new question about exports.\n")

    refused = cli("kb", "sync", "hb", str(kb), code=1)

    assert "hb.chunks is at version 2, hb@2 uses 1" in refused.error
    assert "curata kb check hb --repair" in refused.error
    repaired = cli("kb", "check", "hb", "--repair")
    assert "repaired: published hb@3" in repaired.stdout
    assert cli("kb", "check", "hb").stdout == "hb@3: consistent\n"
    hits = cli("kb", "search", "hb", "backups kept", "--mode", "keyword", "--json").json()
    assert any(h["doc_id"] == "server/backups.md" for h in hits)
    assert "1 new" in cli("kb", "sync", "hb", str(kb)).stdout
    assert cli("kb", "check", "hb").stdout == "hb@4: consistent\n"


def test_sync_a_jsonl_file_whose_text_and_id_have_other_names(
    project: Path, cli: Cli, tmp_path: Path
) -> None:
    posts = tmp_path / "posts.jsonl"
    rows = [
        {"post_id": 17, "body": "How do I export my notes to Markdown?", "author": "ann"},
        {"post_id": 18, "body": "Sync stops after the update to 4.3.", "author": "bob"},
    ]
    posts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cli("kb", "create", "forum", "--embedder", "hash:64")
    wrong = cli("kb", "sync", "forum", str(posts)).stdout
    assert "line 1 has no 'text' field (name the text's field with --text-field)" in wrong

    synced = cli("kb", "sync", "forum", str(posts), "--text-field", "body",
                 "--id-field", "post_id", "--json").json()  # fmt: skip

    assert synced["documents"]["new"] == 2 and synced["failed"] == []
    hits = cli("kb", "search", "forum", "export markdown", "-k", "1", "--json").json()
    assert hits[0]["chunk_id"] == "17#v1#c0"


def test_max_bytes_sets_the_size_limit_the_failure_names(
    project: Path, cli: Cli, tmp_path: Path
) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "small.md").write_text("# Small\n\nA short note about exports.\n")
    (folder / "large.txt").write_text("A long note about backups. " * 200)
    cli("kb", "create", "notes", "--embedder", "hash:64")

    limited = cli("kb", "sync", "notes", str(folder), "--max-bytes", "2000", "--json").json()

    assert limited["failed"] == [
        {
            "doc_id": "large.txt",
            "reason": "larger than the 2,000 bytes limit (raise it with kb sync --max-bytes, "
            "or max_bytes=)",
        }
    ]
    again = cli("kb", "sync", "notes", str(folder), "--max-bytes", "10000", "--json").json()
    assert again["documents"]["new"] == 1 and again["failed"] == []


def test_a_file_no_parser_reads_fails_saying_what_to_do(
    project: Path, cli: Cli, corpus: Path
) -> None:
    (corpus / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    cli("kb", "create", "hb", "--embedder", "hash:64")

    out = cli("kb", "sync", "hb", str(corpus)).stdout

    line = next(x for x in out.splitlines() if "logo.png" in x)
    assert line.startswith("  failed: logo.png: no parser for image/png. Parsers exist for: ")
    assert line.endswith("Exclude such files, or register_parser() one.")


def test_errors_name_the_input_and_what_to_do(project: Path, cli: Cli, corpus: Path) -> None:
    missing = cli("kb", "sync", "nope", str(corpus), code=2)
    assert "No knowledge base named 'nope'" in missing.stderr
    assert "curata kb create nope" in missing.stderr
    bad = cli("kb", "create", "hb", "--embedder", "word2vec", code=2)
    assert "Unknown embedder 'word2vec'" in bad.stderr and "hash:DIM" in bad.stderr
    cli("kb", "create", "hb", "--embedder", "hash:64")
    nowhere = cli("kb", "sync", "hb", str(corpus / "does-not-exist"), code=2)
    assert "does-not-exist" in nowhere.stderr
    empty = cli("kb", "search", "hb", "anything", code=2)
    assert "kb sync hb" in empty.stderr
    mode = cli("kb", "search", "hb", "x", "--mode", "fuzzy", code=2)
    assert "vector, keyword, hybrid" in mode.stderr
    spark = cli("kb", "sync", "hb", str(corpus), "--executor", "spark", code=2)
    assert "Unknown executor 'spark'" in spark.error and "Use local or ray" in spark.error
    workers = cli("kb", "sync", "hb", str(corpus), "--workers", "0", code=2)
    assert "--workers must be at least 1, not 0" in workers.error
    assert cli("runs", "ls", "--json").json() == []  # refused before anything ran
    cli("kb", "sync", "hb", str(corpus))
    where = cli("kb", "search", "hb", "x", "--filter", "doc_id ==", code=2)
    assert "The filter 'doc_id ==' is not a SQL predicate over the chunks" in where.error
    assert "Chunk columns: chunk_id, doc_id" in where.error


def test_delete_missing_keeps_other_sources_documents_as_its_help_says(kb: Path, cli: Cli) -> None:
    help_text = " ".join(cli("kb", "sync", "--help").stdout.split())
    assert "no longer lists; documents of other sources stay." in help_text
    (kb / "faq" / "keyboard-shortcuts.txt").unlink()
    (kb / "faq" / "gone.txt").write_text("Only the faq folder has this page.")

    faq = cli("kb", "sync", "hb", str(kb / "faq"), "--delete-missing", "--json").json()
    handbook = cli("kb", "sync", "hb", str(kb), "--delete-missing", "--json").json()

    # The faq folder is a source of its own: its sync removes none of the handbook's 40.
    assert (faq["documents"]["new"], faq["documents"]["deleted"]) == (1, 0)
    assert handbook["documents"]["deleted"] == 1  # faq/keyboard-shortcuts.txt
    assert handbook["documents"]["new"] == 1  # faq/gone.txt, from the handbook this time
    assert handbook["documents"]["unchanged"] == 39


def test_a_doc_id_taken_by_another_source_fails_until_a_prefix_is_given(
    kb: Path, cli: Cli, tmp_path: Path
) -> None:
    other = tmp_path / "more"
    (other / "faq").mkdir(parents=True)
    (other / "faq" / "keyboard-shortcuts.txt").write_text("Ctrl+K opens the command palette.")
    (other / "pricing.md").write_text("# Pricing\n\nThe team plan costs nine euros.")

    clash = cli("kb", "sync", "hb", str(other))

    assert "1 new, 0 changed, 0 unchanged, 0 deleted, 1 failed" in clash.stdout
    assert (
        f"  failed: faq/keyboard-shortcuts.txt: published from {kb} already, so this one from "
        f"{other} was not indexed (one document per doc id; the published one stays). The same "
        "source in a new place (moved, another checkout, a sync run from another folder)? Run "
        f"`curata kb sync hb {other} --moved-from {kb}`: the documents of {kb} become this "
        f"source's. Another source? To index both, run `curata kb sync hb {other} --prefix more "
        "--delete-missing` (this document becomes more/faq/keyboard-shortcuts.txt; "
        "--delete-missing renames the ones indexed from it)"
    ) in clash.stdout
    refused = cli("kb", "sync", "hb", str(other), "--prefix", "more", code=2)
    assert f"The documents of {other} are in 'hb' with no prefix" in refused.error
    assert "add --delete-missing (delete_missing=True)" in refused.error
    bad = cli("kb", "sync", "hb", str(other), "--prefix", "../more", code=2)
    assert "The prefix '../more' is not a relative path." in bad.error

    renamed = cli("kb", "sync", "hb", str(other), "--prefix", "more", "--delete-missing")

    assert "2 new, 0 changed, 0 unchanged, 1 deleted, 0 failed" in renamed.stdout
    again = cli("kb", "sync", "hb", str(other), "--json").json()  # the prefix is remembered
    assert again["documents"]["unchanged"] == 2 and again["failed"] == []
    hits = cli("kb", "search", "hb", "command palette", "--mode", "keyword", "--json").json()
    assert hits[0]["doc_id"] == "more/faq/keyboard-shortcuts.txt"


def test_a_folder_moved_elsewhere_keeps_its_documents_with_moved_from(
    kb: Path, cli: Cli, tmp_path: Path
) -> None:
    moved = tmp_path / "moved" / "handbook"
    shutil.copytree(kb, moved)
    (moved / "faq" / "keyboard-shortcuts.txt").unlink()
    help_text = " ".join(cli("kb", "sync", "--help").stdout.split())
    assert "SOURCE is the source OLD in a new place (moved, another checkout, a" in help_text

    unknown = cli("kb", "sync", "hb", str(moved), "--moved-from", str(tmp_path), code=2)
    assert unknown.error == (
        f"error: 'hb' has no documents from {tmp_path}, so there is nothing to move from it. "
        f"--moved-from takes one of its sources (`curata kb sources hb`): {kb}."
    )
    out = cli("kb", "sync", "hb", str(moved), "--moved-from", str(kb), "--delete-missing").stdout

    assert "0 new, 0 changed, 39 unchanged, 1 deleted, 0 failed" in out
    assert "chunks: 0 added (0 embedded, 0 reused)" in out
    assert "39 document(s) of the old place are this source's now" in out
    assert cli("kb", "log", "hb").stdout.splitlines()[0].endswith("1 deleted, 0 failed, 39 moved")
    again = cli("kb", "sync", "hb", str(moved), "--json").json()
    assert again["documents"]["unchanged"] == 39 and again["moved"] == 0


def test_sources_lists_each_source_with_prefix_documents_failures_and_last_sync(
    project: Path, cli: Cli, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli("kb", "create", "hb", "--embedder", "hash:64", "--chunk-size", "120")
    assert cli("kb", "sources", "hb", "--json").json() == []
    assert "hb has no sources yet; fill it with `curata kb sync hb FOLDER`" in (
        cli("kb", "sources", "hb").stdout
    )
    extra = corpus.parent / "extra"
    extra.mkdir()
    (extra / "pricing.md").write_text("# Pricing\n\nThe team plan costs nine euros.")
    (extra / "empty.txt").write_text("")
    monkeypatch.chdir(corpus.parent)
    cli("--lake", str(project), "kb", "sync", "hb", "handbook/")
    cli("--lake", str(project), "kb", "sync", "hb", "./extra", "--prefix", "more")

    listed = cli("--lake", str(project), "kb", "sources", "hb", "--json").json()
    text = cli("--lake", str(project), "kb", "sources", "hb").stdout

    assert listed == [
        {"source": "extra", "prefix": "more", "documents": 1, "failed": 1, "last_sync_version": 3},
        {"source": "handbook", "prefix": "", "documents": 40, "failed": 0, "last_sync_version": 2},
    ]
    lines = [
        line.strip("│ ") for line in text.splitlines() if "extra" in line or "handbook" in line
    ]
    assert [line.split() for line in lines] == [
        ["extra", "│", "more", "│", "1", "│", "1", "│", "hb@3"],
        ["handbook", "│", "-", "│", "40", "│", "0", "│", "hb@2"],
    ]


def test_help_lists_every_kb_command(cli: Cli) -> None:
    out = cli("kb", "--help").stdout
    for command in ("create", "sync", "sources", "search", "log", "diff", "tag", "rollback",
                    "add-embedder", "check"):  # fmt: skip
        assert command in out


def test_a_sync_with_many_failures_prints_the_first_ten_and_where_the_rest_are(
    project: Path, cli: Cli, corpus: Path
) -> None:
    for n in range(12):
        (corpus / f"scan-{n:02}.pdf").write_bytes(b"%PDF-1.4 not really")
    cli("kb", "create", "hb", "--embedder", "hash:64")

    out = cli("kb", "sync", "hb", str(corpus)).stdout

    assert "40 new, 0 changed, 0 unchanged, 0 deleted, 12 failed" in out
    assert sum(line.startswith("  failed: scan-") for line in out.splitlines()) == 10
    assert "  ... and 2 more: --json lists them all, and so does" in out
    assert "curata dataset head hb.quarantine" in out
    listed = cli("kb", "sync", "hb", str(corpus), "--json").json()["failed"]
    assert len(listed) == 12
    head = cli("dataset", "head", "hb.quarantine", "-n", "20", "--json").json()
    assert len(head) == 12
