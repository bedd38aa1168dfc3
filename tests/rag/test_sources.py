"""Sources: listing folders, files, JSONL and S3; change detection; entries that cannot be used."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from curata.errors import InvalidInput, NotFound
from curata.sources import (
    ChangeSet,
    PreviousState,
    SourceError,
    SourceItem,
    content_hash,
    detect_changes,
    open_source,
)
from curata.sources.patterns import matches

if TYPE_CHECKING:
    from conftest import S3Server


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(body, str):
            path.write_text(body, encoding="utf-8")
        else:
            path.write_bytes(body)


def ids(source_uri: str | Path, **options: object) -> list[str]:
    return [item.doc_id for item in open_source(str(source_uri), **options).list()]  # type: ignore[arg-type]


def states(source_uri: str | Path) -> dict[str, PreviousState]:
    """What a sync would store after processing everything the source lists."""
    out = {}
    for item in open_source(str(source_uri)).list():
        out[item.doc_id] = PreviousState(item.size, item.mtime, content_hash(item.read_bytes()))
    return out


def processed_states(changes: ChangeSet) -> dict[str, PreviousState]:
    """What a sync would store after processing every change of ``changes``."""
    return {c.doc_id: PreviousState(c.item.size, c.item.mtime, c.content_hash) for c in changes}


@pytest.fixture
def handbook(tmp_path: Path) -> Path:
    root = tmp_path / "handbook"
    write(
        root,
        {
            "index.md": "# Home\n\nWelcome.",
            "guides/setup.md": "# Setup\n\nRun it.",
            "guides/linux/apt.md": "# Apt\n\nsudo apt install.",
            "guides/notes.txt": "plain notes",
            "drafts/wip.md": "# WIP",
            "page.html": "<p>Hello</p>",
            ".hidden.md": "# secret",
            ".git/config": "[core]",
            "guides/.cache/x.md": "# cached",
        },
    )
    return root


# ---------------------------------------------------------------- folders


def test_folder_lists_recursively_sorted_with_relative_slash_ids(handbook: Path) -> None:
    items = list(open_source(str(handbook)).list())
    assert [i.doc_id for i in items] == [
        "drafts/wip.md",
        "guides/linux/apt.md",
        "guides/notes.txt",
        "guides/setup.md",
        "index.md",
        "page.html",
    ]
    setup = items[3]
    assert setup.uri == str(handbook / "guides" / "setup.md")
    assert setup.size == len("# Setup\n\nRun it.")
    assert setup.mtime == pytest.approx((handbook / "guides" / "setup.md").stat().st_mtime)
    assert setup.mime == "text/markdown"
    assert setup.read_bytes() == b"# Setup\n\nRun it."
    assert {i.doc_id: i.mime for i in items}["page.html"] == "text/html"


def test_doc_ids_do_not_depend_on_how_the_root_is_written(
    handbook: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = ids(handbook)
    assert ids(f"{handbook}/") == expected
    assert ids(f"file://{handbook}") == expected
    monkeypatch.chdir(handbook.parent)
    assert ids("handbook") == expected
    moved = handbook.parent / "renamed"
    handbook.rename(moved)
    assert ids(moved) == expected


def test_include_and_exclude_globs(handbook: Path) -> None:
    assert ids(handbook, include=["**/*.md"]) == [
        "drafts/wip.md",
        "guides/linux/apt.md",
        "guides/setup.md",
        "index.md",
    ]
    # A pattern without "/" matches the file name at any depth.
    assert ids(handbook, include=["*.txt"]) == ["guides/notes.txt"]
    assert ids(handbook, include=["guides/*.md"]) == ["guides/setup.md"]
    assert ids(handbook, include=["*.md"], exclude=["drafts/**", "guides/linux"]) == [
        "guides/setup.md",
        "index.md",
    ]
    with pytest.raises(InvalidInput, match="list of patterns"):
        open_source(str(handbook), include="*.md")  # type: ignore[arg-type]


def test_glob_rules() -> None:
    assert matches("a.md", "**/*.md")
    assert matches("x/y/a.md", "**/*.md")
    assert not matches("x/a.md", "*/*/*.md")
    assert matches("guides/setup.md", "guides/**")
    assert matches("guides/a/b.md", "guides/**/*.md")
    assert not matches("guides/a/b.md", "guides/*.md")
    assert matches("v1.md", "v[0-9].md")
    assert not matches("vx.md", "v[!x].md")


def test_hidden_entries_are_skipped_unless_asked_for(handbook: Path) -> None:
    assert not any(part.startswith(".") for d in ids(handbook) for part in d.split("/"))
    with_hidden = ids(handbook, include_hidden=True)
    assert {".hidden.md", ".git/config", "guides/.cache/x.md"} <= set(with_hidden)


def test_symlinks_are_followed_and_a_loop_is_reported_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    write(root, {"a/one.md": "one", "shared/two.md": "two"})
    (root / "a" / "linked").symlink_to(root / "shared")  # a link to a folder: followed
    (root / "a" / "loop").symlink_to(root)  # a link to an ancestor: a loop
    (root / "self").symlink_to(root / "self")  # a link to itself
    (root / "dangling.md").symlink_to(root / "missing.md")
    source = open_source(str(root))
    assert [i.doc_id for i in source.list()] == ["a/linked/two.md", "a/one.md", "shared/two.md"]
    problems = dict(source.problems)
    assert "loop" in problems["a/loop"]
    assert "loop" in problems["self"]
    assert "broken symbolic link" in problems["dangling.md"]


def test_fifo_is_reported_and_never_opened(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    write(root, {"a.md": "a"})
    os.mkfifo(root / "pipe.txt")
    source = open_source(str(root))
    assert [i.doc_id for i in source.list()] == ["a.md"]  # reading the FIFO would hang
    assert source.problems == [("pipe.txt", "not a regular file (a pipe, socket or device)")]


def test_single_file_and_missing_paths(tmp_path: Path) -> None:
    write(tmp_path, {"notes/readme.md": "# Hi"})
    (item,) = open_source(str(tmp_path / "notes" / "readme.md")).list()
    assert (item.doc_id, item.mime, item.read_bytes()) == ("readme.md", "text/markdown", b"# Hi")
    with pytest.raises(NotFound):
        open_source(str(tmp_path / "nope"))
    with pytest.raises(InvalidInput, match="not supported"):
        open_source("gs://bucket/docs")


def test_file_vanishing_between_listing_and_reading(handbook: Path) -> None:
    items = {i.doc_id: i for i in open_source(str(handbook)).list()}
    (handbook / "index.md").unlink()
    with pytest.raises(SourceError, match="vanished"):
        items["index.md"].read_bytes()
    changes = detect_changes(items.values(), {})
    assert [c.doc_id for c in changes] == [d for d in items if d != "index.md"]
    assert changes.failed == [("index.md", "it vanished since the source was listed")]
    assert changes.deleted == []


# ---------------------------------------------------------------- change detection


def test_first_sync_everything_is_new_with_hashes(handbook: Path) -> None:
    source = open_source(str(handbook))
    changes = detect_changes(source, {})
    seen = {c.doc_id: c for c in changes}
    assert changes.new == sorted(seen) and len(seen) == 6
    assert seen["index.md"].data == b"# Home\n\nWelcome."
    assert seen["index.md"].content_hash == content_hash(b"# Home\n\nWelcome.")
    assert changes.hashes["index.md"] == seen["index.md"].content_hash
    assert changes.changed == changes.unchanged == changes.deleted == []


def test_same_size_and_mtime_is_unchanged_without_reading(
    handbook: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = states(handbook)
    reads: list[str] = []
    original = SourceItem.read_bytes

    def counting(self: SourceItem, **kwargs: int | None) -> bytes:
        reads.append(self.doc_id)
        return original(self, **kwargs)

    monkeypatch.setattr(SourceItem, "read_bytes", counting)
    changes = detect_changes(open_source(str(handbook)), stored)
    assert list(changes) == []
    assert reads == []
    assert sorted(changes.unchanged) == sorted(stored)


def test_fast_path_trusts_size_and_mtime(handbook: Path) -> None:
    """Proof that nothing is read: content swapped behind an unchanged (size, mtime) goes unseen."""
    stored = states(handbook)
    path = handbook / "index.md"
    info = path.stat()
    path.write_text("# Hack\n\nWelcome.", encoding="utf-8")  # same length
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    changes = detect_changes(open_source(str(handbook)), stored)
    assert list(changes) == [] and "index.md" in changes.unchanged


def test_touch_without_change_is_unchanged_and_reports_the_new_mtime(handbook: Path) -> None:
    stored = states(handbook)
    path = handbook / "guides" / "setup.md"
    os.utime(path, (1_900_000_000, 1_900_000_000))
    changes = detect_changes(open_source(str(handbook)), stored)
    assert list(changes) == []
    assert "guides/setup.md" in changes.unchanged
    assert changes.touched == {
        "guides/setup.md": PreviousState(
            stored["guides/setup.md"].size, 1_900_000_000.0, stored["guides/setup.md"].content_hash
        )
    }


def test_changed_new_and_deleted(handbook: Path) -> None:
    stored = states(handbook)
    (handbook / "guides" / "setup.md").write_text("# Setup\n\nRun it twice.", encoding="utf-8")
    (handbook / "drafts" / "wip.md").unlink()
    write(handbook, {"faq.md": "# FAQ"})
    changes = detect_changes(open_source(str(handbook)), stored)
    processed = [(c.doc_id, c.status) for c in changes]
    assert processed == [("faq.md", "new"), ("guides/setup.md", "changed")]
    assert changes.new == ["faq.md"] and changes.changed == ["guides/setup.md"]
    assert changes.deleted == ["drafts/wip.md"]
    assert changes.hashes["guides/setup.md"] == content_hash(b"# Setup\n\nRun it twice.")
    assert changes.complete


def test_deleted_is_known_only_at_the_end(handbook: Path) -> None:
    changes = detect_changes(open_source(str(handbook)), {"gone.md": PreviousState(1, 1.0, "x")})
    with pytest.raises(InvalidInput, match="drain"):
        _ = changes.deleted
    assert changes.drain().deleted == ["gone.md"]
    assert changes.new and not list(changes.unchanged)
    with pytest.raises(InvalidInput, match="only once"):
        list(changes)


def test_unreadable_folder_is_reported_and_its_documents_not_deleted(
    handbook: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = states(handbook)
    real_scandir = os.scandir

    def scandir(path: str) -> object:
        # Tests run as root here, where chmod cannot make a folder unreadable.
        if str(path).endswith("drafts"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    source = open_source(str(handbook))
    changes = detect_changes(source, stored).drain()
    assert source.problems == [("drafts", "permission denied")]
    assert changes.deleted == []
    assert changes.failed == [("drafts/wip.md", "permission denied")]
    assert "drafts/wip.md" not in changes.unchanged


def test_oversized_file_is_refused_from_the_listed_size_without_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "kb"
    write(root, {"small.txt": "hello"})
    with open(root / "huge.txt", "wb") as huge:
        huge.truncate(200 * 2**20)  # sparse: 200 MB listed, no disk used
    opened: list[str] = []
    real_open = open

    def spying_open(file: object, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        opened.append(str(file))
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    source = open_source(str(root))
    items = list(source.list())
    assert {i.doc_id: i.size for i in items}["huge.txt"] == 200 * 2**20
    monkeypatch.setattr("builtins.open", spying_open)
    changes = detect_changes(items, {})
    assert [c.doc_id for c in changes] == ["small.txt"]
    assert changes.failed == [
        (
            "huge.txt",
            "larger than the 100 MB limit (raise it with kb sync --max-bytes, or max_bytes=)",
        )
    ]
    assert not any(name.endswith("huge.txt") for name in opened)
    with pytest.raises(SourceError, match="larger than the 100 MB limit"):
        items[0].read_bytes(max_bytes=100 * 2**20)


# ---------------------------------------------------------------- JSONL


def test_jsonl_records_and_bad_lines(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "faq-1", "text": "How do I sync?", "lang": "en"}),
        "",
        "{not json",
        json.dumps({"id": "faq-2", "text": "Wie synchronisiere ich?", "tags": ["de"]}),
        json.dumps(["a", "list"]),
        json.dumps({"id": "faq-3", "body": "no text field"}),
        json.dumps({"text": "a record without an id"}),
        json.dumps({"id": "faq-1", "text": "repeated id"}),
        json.dumps({"id": 7, "text": 12}),
    ]
    path = tmp_path / "faq.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    source = open_source(str(path))
    items = list(source.list())
    assert [i.doc_id for i in items] == ["faq-1", "faq-2", "faq.jsonl:7"]
    first = items[0]
    assert first.read_bytes() == b"How do I sync?"
    assert first.metadata == {"lang": "en"}
    assert first.mime == "text/plain"
    assert first.uri == f"{path}#L1"
    assert items[1].read_bytes() == b"Wie synchronisiere ich?"
    assert items[1].metadata == {"tags": ["de"]}
    assert [where for where, _ in source.problems] == [
        "faq.jsonl:3",
        "faq.jsonl:5",
        "faq.jsonl:6",
        "faq.jsonl:8",
        "faq.jsonl:9",
    ]
    reasons = [reason for _, reason in source.problems]
    assert "line 3 is not valid JSON" in reasons[0]
    assert reasons[1] == "line 5 is a JSON list, not an object"
    assert reasons[2] == "line 6 has no 'text' field (name the text's field with --text-field)"
    assert reasons[3] == "line 8 repeats the id 'faq-1' of line 1"
    assert reasons[4].startswith("line 9 has a non-string 'text' field")


def test_jsonl_gzip_other_fields_and_change_detection(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl.gz"
    records = [{"key": "a", "body": "alpha"}, {"key": "b", "body": "beta"}]
    path.write_bytes(gzip.compress("\n".join(map(json.dumps, records)).encode()))
    source = open_source(str(path), text_field="body", id_field="key")
    stored = processed_states(detect_changes(source, {}))
    assert sorted(stored) == ["a", "b"]
    records = [{"key": "a", "body": "alpha 2"}, {"key": "c", "body": "gamma"}]
    path.write_bytes(gzip.compress("\n".join(map(json.dumps, records)).encode()))
    changes = detect_changes(open_source(str(path), text_field="body", id_field="key"), stored)
    assert [(c.doc_id, c.status) for c in changes] == [("a", "changed"), ("c", "new")]
    assert changes.deleted == ["b"]
    plain = tmp_path / "records.txt"
    plain.write_text(json.dumps({"id": 1, "text": "x"}))
    assert [i.doc_id for i in open_source(f"jsonl:{plain}", id_field=None).list()] == [
        "records.txt:1"
    ]


# ---------------------------------------------------------------- S3


def test_s3_listing_reading_and_changes(s3: S3Server) -> None:
    prefix = s3.fresh_prefix()
    s3.put(f"{prefix}/guides/setup.md", b"# Setup")
    s3.put(f"{prefix}/index.html", b"<p>Home</p>")
    s3.put(f"{prefix}/.hidden/x.md", b"secret")
    s3.put(f"{prefix}/folder/", b"")  # a folder marker, not a document
    s3.put(f"{prefix}-other/not-mine.md", b"a neighbouring prefix")
    uri = f"s3://{s3.bucket}/{prefix}"
    source = open_source(uri, storage_options=s3.storage_options)
    items = list(source.list())
    assert [i.doc_id for i in items] == ["guides/setup.md", "index.html"]
    assert items[0].uri == f"{uri}/guides/setup.md"
    assert (items[0].size, items[0].mime) == (7, "text/markdown")
    assert items[0].mtime > 1_700_000_000
    assert items[0].read_bytes() == b"# Setup"
    only_md = open_source(uri, include=["*.md"], storage_options=s3.storage_options)
    assert [i.doc_id for i in only_md.list()] == ["guides/setup.md"]

    stored = processed_states(detect_changes(source, {}))
    s3.delete(f"{prefix}/index.html")
    s3.put(f"{prefix}/guides/setup.md", b"# Setup v2")
    changes = detect_changes(open_source(uri, storage_options=s3.storage_options), stored)
    assert [(c.doc_id, c.status, c.data) for c in changes] == [
        ("guides/setup.md", "changed", b"# Setup v2")
    ]
    assert changes.deleted == ["index.html"]


def test_s3_object_vanishing_and_missing_bucket(s3: S3Server) -> None:
    prefix = s3.fresh_prefix()
    s3.put(f"{prefix}/a.md", b"a")
    (item,) = open_source(f"s3://{s3.bucket}/{prefix}", storage_options=s3.storage_options).list()
    s3.delete(f"{prefix}/a.md")
    with pytest.raises(SourceError, match="vanished"):
        item.read_bytes()
    with pytest.raises(NotFound, match="bucket"):
        list(open_source("s3://no-such-bucket/x", storage_options=s3.storage_options).list())
    with pytest.raises(InvalidInput, match="Known options"):
        open_source(f"s3://{s3.bucket}", storage_options={"endpoint": s3.endpoint_url})


def test_s3_single_object_jsonl_and_env_endpoint(
    s3: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = s3.fresh_prefix()
    s3.put(f"{prefix}/one.md", b"# One")
    s3.put(f"{prefix}/faq.jsonl", b'{"id": "q1", "text": "Question one"}\n{oops\n')
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    (item,) = open_source(f"s3://{s3.bucket}/{prefix}/one.md").list()
    assert (item.doc_id, item.read_bytes()) == ("one.md", b"# One")
    source = open_source(f"s3://{s3.bucket}/{prefix}/faq.jsonl")
    assert [(i.doc_id, i.read_bytes()) for i in source.list()] == [("q1", b"Question one")]
    assert [where for where, _ in source.problems] == ["faq.jsonl:2"]
