"""Deduplication: exact, near and semantic, over lists of texts and over lake datasets."""

from __future__ import annotations

import hashlib
import random
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import curata
from curata.errors import InvalidInput, NotFound
from curata.quality import dedup
from curata.quality.dedup import (
    MinHashParams,
    dedup_dataset,
    find_duplicates,
    normalise_texts,
    signatures,
)
from curata.quality.dedup.minhash import estimated_jaccard, word_hashes

VOCAB = [f"w{i}" for i in range(20_000)]


def words(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(VOCAB) for _ in range(n)]


def shingles(text: str, n: int = 5) -> set[str]:
    w = text.lower().split()
    return {" ".join(w[i : i + n]) for i in range(len(w) - n + 1)}


def jaccard(a: str, b: str) -> float:
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


def edited(base: list[str], changes: int, seed: int) -> list[str]:
    """``base`` with ``changes`` words replaced, evenly spread (so each edit costs shingles)."""
    rng = random.Random(seed)
    out = list(base)
    step = len(base) // changes
    for i in range(changes):
        out[i * step + rng.randrange(step)] = f"edit{seed}x{i}"
    return out


def pair_at(target: float, seed: int, length: int = 300) -> tuple[str, str, float]:
    """Two texts whose word-5-gram Jaccard similarity is close to ``target``."""
    base = words(length, seed)
    best = None
    for changes in range(1, length // 5):
        other = edited(base, changes, seed)
        j = jaccard(" ".join(base), " ".join(other))
        if best is None or abs(j - target) < abs(best[2] - target):
            best = (" ".join(base), " ".join(other), j)
    assert best is not None
    return best


def test_all_is_the_public_api() -> None:
    assert set(dedup.__all__) == {
        "METHODS", "DedupReport", "DedupResult", "MinHashParams", "clusters_dataset",
        "dedup_dataset", "find_duplicates", "normalise_texts", "optimal_bands", "signatures",
        "signatures_dataset", "write_dedup_html",
    }  # fmt: skip
    for name in dedup.__all__:
        assert getattr(dedup, name) is not None


# -- exact -------------------------------------------------------------------------------------


def test_normalisation_is_nfkc_casefolded_with_whitespace_collapsed() -> None:
    got = normalise_texts(
        ["  \uff28ello\u00a0\tWORLD \n", "STRASSE", "straße", "ﬁne", "a\u3000b", None, ""]
    ).to_pylist()
    assert got == ["hello world", "strasse", "strasse", "fine", "a b", None, ""]


def test_exact_clusters_equal_texts_after_normalisation() -> None:
    texts = [
        "Hello   World",  # 0
        "other text",  # 1
        "hello world",  # 2
        "HELLO\u00a0WORLD\n",  # 3
        "\uff28\uff45\uff4c\uff4c\uff4f world",  # 4 (full-width letters)
        None,  # 5
        None,  # 6: nulls are never duplicates
        "hello, world",  # 7: punctuation matters for exact
    ]
    r = find_duplicates(texts, "exact")
    assert r.clusters == [[0, 2, 3, 4]]
    assert r.canonical == [0]
    assert r.duplicates == [2, 3, 4]
    assert r.similarity == [[1.0, 1.0, 1.0, 1.0]]
    assert r.keep_mask(8).tolist() == [True, True, False, False, False, True, True, True]


def test_keep_first_uses_the_lowest_key_and_longest_the_longest_text() -> None:
    texts = ["same text", "SAME  text", "Same Text ", "unique"]
    assert find_duplicates(texts, "exact", keys=[30, 10, 20, 0]).canonical == [1]
    assert find_duplicates(texts, "exact", keys=["c", "b", "a", "z"]).canonical == [2]
    assert find_duplicates(texts, "exact", keep="longest").canonical == [1]  # 10 chars, first
    # Ties in length go to the first row (or lowest key).
    assert find_duplicates(["ab", "AB"], "exact", keep="longest").canonical == [0]
    assert find_duplicates(["ab", "AB"], "exact", keep="longest", keys=[2, 1]).canonical == [1]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(InvalidInput, match="Unknown dedup method"):
        find_duplicates(["a"], "fuzzy")
    with pytest.raises(InvalidInput, match="keep must be one of"):
        find_duplicates(["a"], "exact", keep="last")
    with pytest.raises(InvalidInput, match="Jaccard"):
        find_duplicates(["a"], "near", 1.5)
    with pytest.raises(InvalidInput, match="text"):
        find_duplicates(pa.array([1, 2]), "exact")
    assert find_duplicates([], "near").clusters == []


# -- near ----------------------------------------------------------------------------------------


def test_near_finds_pairs_above_the_threshold_and_not_below() -> None:
    high = pair_at(0.9, 1)
    mid = pair_at(0.85, 2)
    low = pair_at(0.5, 3)
    assert abs(high[2] - 0.9) < 0.02 and abs(mid[2] - 0.85) < 0.02 and abs(low[2] - 0.5) < 0.03
    unrelated = [" ".join(words(200, 100 + i)) for i in range(20)]
    texts = [*high[:2], *mid[:2], *low[:2], *unrelated]
    r = find_duplicates(texts, "near", 0.8)
    assert r.clusters == [[0, 1], [2, 3]]
    assert r.similarity[0][1] == pytest.approx(high[2], abs=1e-6)  # exact Jaccard, verified
    assert r.similarity[1][1] == pytest.approx(mid[2], abs=1e-6)
    # The threshold is honoured: at 0.875 only the 0.9 pair remains; at 0.45 the 0.5 one joins.
    assert find_duplicates(texts, "near", 0.875).clusters == [[0, 1]]
    assert find_duplicates(texts, "near", 0.45).clusters == [[0, 1], [2, 3], [4, 5]]


def test_near_recall_on_many_planted_pairs() -> None:
    rng = random.Random(7)
    texts, planted = [], []
    for i in range(150):
        base = words(rng.randrange(100, 300), 1000 + i)
        other = edited(base, rng.randrange(1, 3), 5000 + i)
        j = jaccard(" ".join(base), " ".join(other))
        if j >= 0.8:
            planted.append((len(texts), len(texts) + 1))
        texts += [" ".join(base), " ".join(other)]
    found = {tuple(c) for c in find_duplicates(texts, "near", 0.8).clusters}
    recall = len(found & set(planted)) / len(planted)
    assert len(planted) > 100 and recall >= 0.95
    assert all(len(c) == 2 for c in found)  # no unrelated text was joined


def test_signature_agreement_estimates_jaccard() -> None:
    for target, seed in ((0.9, 11), (0.7, 12), (0.5, 13)):
        a, b, j = pair_at(target, seed, length=1000)
        sig = signatures([a, b], MinHashParams(num_perm=256))
        assert abs(float(estimated_jaccard(sig[0], sig[1])) - j) < 0.1


def test_short_texts_and_texts_without_words() -> None:
    texts = ["two words", "Two, words!", "", None, "!!! ??", "two words more"]
    sig = signatures(texts)
    assert (sig[0] == sig[1]).all()  # fewer words than 5: one shingle of all of them
    r = find_duplicates(texts, "near", 0.8)
    assert r.clusters == [[0, 1]]  # blank and wordless texts match nothing


def test_signatures_do_not_depend_on_the_batch() -> None:
    texts = [" ".join(words(150, s)) for s in range(30)]
    whole = signatures(texts)
    assert (signatures(texts[10:12]) == whole[10:12]).all()
    assert (signatures(pa.chunked_array([texts[:5], texts[5:]])) == whole).all()


def test_binary_junk_and_a_huge_single_line_do_not_break_it() -> None:
    rng = np.random.default_rng(0)
    junk = rng.integers(0, 256, 200_000, dtype=np.uint8).tobytes().decode("latin-1")
    r = find_duplicates([junk, junk + "\x00", "\udcff".encode("utf-8", "surrogatepass")
                         .decode("utf-8", "replace"), junk], "near")  # fmt: skip
    assert r.clusters == [[0, 1, 3]]  # a NUL byte separates words: same words, same text
    line = " ".join(words(2_000_000, 5))  # one line of ~13 MB
    started = time.perf_counter()
    sig = signatures([line, line[: len(line) // 2]])
    seconds = time.perf_counter() - started
    assert sig.shape == (2, 128) and seconds < 60
    assert find_duplicates([line, line.upper()], "exact").clusters == [[0, 1]]


# -- semantic --------------------------------------------------------------------------------------


def test_semantic_clusters_identical_texts_not_unrelated_ones() -> None:
    texts = [
        "the invoice was paid twice this month",
        "The invoice was paid twice this month!",
        "how do I reset my password",
        "my parcel never arrived",
        "",
    ]
    r = find_duplicates(texts, "semantic", embedder="hash:256")
    assert r.clusters == [[0, 1]]
    assert r.similarity[0] == [1.0, pytest.approx(1.0, abs=1e-5)]
    vectors = np.array([[1, 0, 0], [0.99, 0.1, 0], [0, 1, 0], [0, 0, 0]], np.float32)
    r = find_duplicates(None, "semantic", 0.95, vectors=vectors)
    assert r.clusters == [[0, 1]] and r.similarity[0][1] == pytest.approx(0.995, abs=1e-3)


# -- lake --------------------------------------------------------------------------------------


def make_docs(lake: curata.Lake, rows: list[dict[str, object]], key: str | None = "id") -> None:
    lake.create_dataset("docs", key=key)
    lake.dataset("docs").append(pa.Table.from_pylist(rows), message="load")


DOCS = [
    {"id": 5, "text": "Refunds take five days", "lang": "en"},
    {"id": 2, "text": "refunds  take FIVE days", "lang": "en"},
    {"id": 9, "text": "Reset your password from the login page  ", "lang": "en"},
    {"id": 7, "text": "REFUNDS TAKE FIVE DAYS.", "lang": "en"},
    {"id": 3, "text": "reset your password from the login page", "lang": "en"},
    {"id": 4, "text": "Shipping is free above 50 euros", "lang": "en"},
]


def test_dedup_dataset_publishes_the_deletion_and_the_clusters_in_one_run(
    lake: curata.Lake,
) -> None:
    make_docs(lake, DOCS)
    report = dedup_dataset(lake, "docs", "text", "exact", message="drop copies")
    assert (report.rows_in, report.rows_out, report.version) == (6, 4, "docs@2")
    assert report.clusters == [[2, 5], [3, 9]]  # key values; canonical = lowest key
    assert report.canonical == [2, 3]
    head = lake.dataset("docs").log()[0]
    assert head.summary == "delete: -2 rows" and head.message == "drop copies"
    assert sorted(lake.ref("docs").to_arrow().column("id").to_pylist()) == [2, 3, 4, 7]
    order = [("cluster", "ascending"), ("key", "ascending")]
    clusters = lake.ref("docs.dedup_clusters").to_arrow().sort_by(order)
    assert clusters.select(["cluster", "key", "canonical", "similarity"]).to_pylist() == [
        {"cluster": 0, "key": 2, "canonical": True, "similarity": 1.0},
        {"cluster": 0, "key": 5, "canonical": False, "similarity": 1.0},
        {"cluster": 1, "key": 3, "canonical": True, "similarity": 1.0},
        {"cluster": 1, "key": 9, "canonical": False, "similarity": 1.0},
    ]
    run = lake.run(report.run_id or "")
    assert run.status == "succeeded" and run.inputs == ["docs@1"]
    assert sorted(run.outputs) == ["docs.dedup_clusters@1", "docs@2"]
    assert lake.dataset("docs.dedup_clusters").log()[0].run_id == head.run_id == run.id
    # Nothing left to remove: no new version of anything, no run.
    again = dedup_dataset(lake, "docs", "text", "exact")
    assert again.version is None and again.clusters == [] and again.run_id is None
    assert len(lake.dataset("docs").log()) == 2
    assert len(lake.dataset("docs.dedup_clusters").log()) == 1


def test_keep_longest_and_dry_run(lake: curata.Lake) -> None:
    make_docs(lake, DOCS)
    dry = dedup_dataset(lake, "docs", "text", "exact", keep="longest", dry_run=True)
    assert dry.canonical == [2, 9] and dry.rows_out == 4 and dry.version is None  # 23, 41 chars
    assert len(lake.dataset("docs").log()) == 1  # nothing published
    with pytest.raises(NotFound):
        lake.ref("docs.dedup_clusters")
    report = dedup_dataset(lake, "docs", "text", "exact", keep="longest")
    assert sorted(lake.ref(report.version or "").to_arrow().column("id").to_pylist()) == [
        2, 4, 7, 9,
    ]  # fmt: skip


def test_dataset_without_key_uses_row_positions(lake: curata.Lake) -> None:
    make_docs(lake, DOCS, key=None)
    report = dedup_dataset(lake, "docs", "text", "exact")
    assert report.clusters == [[0, 1], [2, 4]] and report.canonical == [0, 2]
    assert lake.ref("docs").to_arrow().column("id").to_pylist() == [5, 9, 7, 4]
    assert lake.dataset("docs").log()[0].summary == "delete: -2 rows"
    assert lake.ref("docs.dedup_clusters").to_arrow().column("key").to_pylist() == [0, 1, 2, 4]


def test_near_signatures_are_stored_and_only_new_rows_computed(lake: curata.Lake) -> None:
    texts = [" ".join(words(120, s)) for s in range(200)]
    rows = [{"id": i, "text": t} for i, t in enumerate(texts)]
    make_docs(lake, rows)
    first = dedup_dataset(lake, "docs", "text", "near")
    assert (first.signatures_computed, first.signatures_reused) == (200, 0)
    assert first.version is None  # nothing to remove ...
    store = lake.ref("docs.minhash")  # ... but the signatures are kept for next time
    assert store.count_rows() == 200
    assert store.schema.field("signature").type == pa.list_(pa.uint32(), 128)
    assert set(store.to_arrow(columns=["params"]).column(0).to_pylist()) == {"oph1-p128-n5-s1"}
    # 1% new rows: one a near copy of row 10 (lower key wins), one unrelated.
    near_copy = " ".join(edited(texts[10].split(), 1, 99))
    lake.dataset("docs").append(pa.Table.from_pylist([
        {"id": 500, "text": near_copy}, {"id": 501, "text": " ".join(words(120, 999))},
    ]))  # fmt: skip
    second = dedup_dataset(lake, "docs", "text", "near")
    assert (second.signatures_computed, second.signatures_reused) == (2, 200)
    assert second.clusters == [[10, 500]] and second.version == "docs@3"
    assert second.similarity[0][1] == pytest.approx(jaccard(texts[10], near_copy), abs=1e-6)
    assert lake.ref("docs.minhash").count_rows() == 201  # the removed row's signature went too
    # A changed text is recomputed; unchanged rows are not.
    lake.dataset("docs").upsert(pa.Table.from_pylist([{"id": 3, "text": "now short"}]))
    third = dedup_dataset(lake, "docs", "text", "near")
    assert (third.signatures_computed, third.signatures_reused) == (1, 200)
    # One publication per run: the dataset, its clusters and its signatures moved together.
    run = lake.run(second.run_id or "")
    assert sorted(run.outputs) == ["docs.dedup_clusters@1", "docs.minhash@2", "docs@3"]


def test_bad_input_is_explained(lake: curata.Lake) -> None:
    make_docs(lake, DOCS)
    with pytest.raises(InvalidInput, match="no column 'body'") as err:
        dedup_dataset(lake, "docs", "body")
    assert "id, text, lang" in (err.value.hint or "")
    with pytest.raises(InvalidInput, match="'id' of 'docs' is int64; exact dedup needs a text"):
        dedup_dataset(lake, "docs", "id")
    with pytest.raises(NotFound):
        dedup_dataset(lake, "nope", "text")
    lake.create_dataset("empty", key="id")
    lake.dataset("empty").append(pa.table({"id": pa.array([], pa.int64()),
                                           "text": pa.array([], pa.string())}))  # fmt: skip
    report = dedup_dataset(lake, "empty", "text", "near")
    assert report.rows_in == 0 and report.version is None and report.clusters == []


def test_semantic_dedup_of_stored_vectors(sqlite_lake: curata.Lake) -> None:
    lake = sqlite_lake
    vectors = pa.array([[1.0, 0.0], [0.999, 0.02], [0.0, 1.0]], pa.list_(pa.float32(), 2))
    lake.create_dataset("chunks", key="chunk_id", kind="chunks")
    lake.dataset("chunks").append(pa.table({"chunk_id": ["b", "a", "c"], "vector": vectors}))
    report = dedup_dataset(lake, "chunks", "vector", "semantic")
    assert report.clusters == [["b", "a"]] or report.clusters == [["a", "b"]]
    assert report.canonical == ["a"] and report.version == "chunks@2"
    text = dedup_dataset(lake, "chunks", "chunk_id", "semantic", embedder="hash:32")
    assert text.clusters == []


def test_semantic_dedup_embeds_each_text_once_through_the_lake_cache(
    lake: curata.Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    from curata.rag.embedders import HashEmbedder

    rows = [*DOCS, {"id": 40, "text": "  ", "lang": "en"}, {"id": 41, "text": None, "lang": "en"}]
    make_docs(lake, rows)
    texts = [r["text"] for r in rows]
    embedded: list[str] = []
    original = HashEmbedder.embed

    def counting(self: HashEmbedder, batch: list[str]) -> object:
        embedded.extend(batch)
        return original(self, batch)

    monkeypatch.setattr(HashEmbedder, "embed", counting)
    first = dedup_dataset(lake, "docs", "text", "semantic", embedder="hash:64", dry_run=True)
    present = {t for t in texts if isinstance(t, str) and t.strip()}
    assert sorted(embedded) == sorted(present)  # each distinct text once, blanks never
    # Same clusters as vectors computed outside the lake.
    ids = [r["id"] for r in rows]
    alone = find_duplicates(texts, "semantic", embedder="hash:64", keys=ids)
    same = sorted(sorted(ids[i] for i in c) for c in alone.clusters)
    assert sorted(sorted(c) for c in first.clusters) == same and same

    embedded.clear()
    again = dedup_dataset(lake, "docs", "text", "semantic", embedder="hash:64", dry_run=True)
    assert embedded == [] and again.clusters == first.clusters


def test_html_report(sqlite_lake: curata.Lake, tmp_path: Path) -> None:
    make_docs(sqlite_lake, DOCS)
    report = dedup_dataset(sqlite_lake, "docs", "text", "exact")
    page = dedup.write_dedup_html(report, tmp_path / "dedup.html").read_text()
    assert "Clusters by size" in page and "Largest clusters" in page and "docs@1" in page


# -- pipeline steps ----------------------------------------------------------------------------


def test_dedup_steps_in_a_pipeline(sqlite_lake: curata.Lake, tmp_path: Path) -> None:
    import curata.quality.dedup.steps  # noqa: F401 - registers the steps (entry points do too)
    from curata.pipeline import run_pipeline

    lake = sqlite_lake
    near_copy = " ".join(edited(" ".join(words(150, 1)).split(), 1, 3))
    rows = [*DOCS, {"id": 20, "text": " ".join(words(150, 1)), "lang": "en"},
            {"id": 21, "text": near_copy, "lang": "en"}]  # fmt: skip
    make_docs(lake, rows)
    spec = tmp_path / "dedup.yaml"
    spec.write_text(
        textwrap.dedent("""
        name: dedup-docs
        input: docs
        steps:
          - step: dedup.exact
            params: {column: text, key: id}
          - step: dedup.near
            params: {column: text, keep: longest, cluster_column: dup_cluster}
        output: docs_clean
    """)
    )
    result = run_pipeline(lake, spec)
    out = lake.ref("docs_clean").to_arrow()
    assert sorted(out.column("id").to_pylist()) == [2, 3, 4, 21]  # 7 = 2 but for a ".", 21 longer
    clustered = {r["id"]: r["dup_cluster"] for r in out.to_pylist()}
    assert clustered == {2: 0, 3: None, 4: None, 21: 1}
    assert [s.rows_out for s in result.steps] == [6, 4]


def test_a_write_during_the_search_publishes_nothing(
    sqlite_lake: curata.Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    from curata.errors import Conflict
    from curata.quality.dedup import run

    lake = sqlite_lake
    make_docs(lake, DOCS)
    find = run._find

    def find_while_someone_writes(*args: object, **kwargs: object) -> object:
        lake.dataset("docs").append(pa.Table.from_pylist([{"id": 99, "text": "new", "lang": "en"}]))
        return find(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(run, "_find", find_while_someone_writes)
    with pytest.raises(Conflict, match="changed while its duplicates were being found"):
        dedup_dataset(lake, "docs", "text", "exact")
    assert [c.version for c in lake.dataset("docs").log()] == [2, 1]
    with pytest.raises(NotFound):
        lake.ref("docs.dedup_clusters")
    assert lake.runs()[0].status == "failed"


def test_word_hashes_and_signatures_never_change() -> None:
    # Signatures are stored in the lake (NAME.minhash) and compared with new rows' on later
    # runs: a change of the hash would silently stop old and new rows from matching.
    texts = [
        "The quick brown fox jumps over the lazy dog near the riverbank",
        "THE QUICK BROWN FOX jumps over the lazy dog near the riverbank!",
        "internationalisation and pneumonoultramicroscopicsilicovolcanoconiosis are long words",
        "Grüße aus Köln: «Straße» — naïve café, no\u00a0break spaces",
        "one two",
        "",
        "x",
        "12345678 123456789 1234567890123456 12345678901234567 " * 3,
    ]
    words, counts = word_hashes(texts)
    sig = signatures(texts, MinHashParams(num_perm=64, ngram=3))
    assert counts.tolist() == [12, 12, 6, 9, 2, 0, 1, 12]
    assert hashlib.sha256(words.tobytes()).hexdigest()[:16] == "624711818551653d"
    assert hashlib.sha256(sig.tobytes()).hexdigest()[:16] == "b2202e3df48fe356"


@pytest.mark.parametrize(
    "texts",
    [["plain", "ascii", ""], ["naïve", "ascii"], ["with", None], [], ["x" * 100_000]],
)
def test_lists_of_texts_become_the_same_arrow_array_by_every_path(texts: list[str | None]) -> None:
    from curata.quality.dedup.normalise import as_text_array

    arr = as_text_array(texts)
    arr.validate(full=True)
    assert arr.equals(pa.array(texts, pa.large_string()))
