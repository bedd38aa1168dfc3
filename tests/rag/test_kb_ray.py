"""`kb sync --executor ray` indexes exactly what the local executor does."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import pytest

import curata
from curata.rag import KnowledgeBase

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    import ray

    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAY_AUTH_MODE", "disabled")
        ray.init(
            num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING
        )
    yield
    ray.shutdown()


def _state(kb: KnowledgeBase) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    manifest = kb.manifest()
    docs = kb.lake.ref(manifest.documents.ref or "").to_arrow(
        columns=["doc_id", "doc_version", "content_hash", "text", "n_chunks"]
    )
    chunks = kb.lake.ref(manifest.chunks().ref or "").to_arrow(
        columns=["chunk_id", "text", "heading", "page", "embedding"]
    )
    return (
        sorted(docs.to_pylist(), key=lambda r: str(r["doc_id"])),
        sorted(chunks.to_pylist(), key=lambda r: str(r["chunk_id"])),
    )


def test_ray_sync_equals_local_sync(local_ray: None, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(str(files("curata.samples") / "kb"), corpus)
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 not a pdf")
    kbs = {}
    for executor in ("local", "ray"):
        lake = curata.init(str(tmp_path / executor))
        kbs[executor] = KnowledgeBase.create(lake, "hb", embedder="hash:64")
        result = kbs[executor].sync(str(corpus), executor=executor)
        assert result.documents["new"] == 40 and result.documents["failed"] == 1

    assert _state(kbs["ray"]) == _state(kbs["local"])
