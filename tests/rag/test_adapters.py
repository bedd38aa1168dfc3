"""Knowledge bases as LangChain and LlamaIndex retrievers, on a real lake and knowledge base."""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import curata
from curata.errors import InvalidInput, MissingDependency
from curata.rag import KnowledgeBase

pytest.importorskip("langchain_core")
pytest.importorskip("llama_index.core")

from langchain_core.documents import Document
from langchain_core.runnables import RunnableLambda
from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode
from pydantic import ValidationError

from curata.rag.adapters.langchain import CurataRetriever
from curata.rag.adapters.llamaindex import CurataLlamaRetriever

METADATA_KEYS = ["chunk_id", "doc_id", "doc_version", "score", "source", "heading", "page"]
QUERY = "which port does the sync daemon listen on"


@pytest.fixture
def handbook(tmp_path: Path) -> Path:
    folder = tmp_path / "handbook"
    (folder / "guides").mkdir(parents=True)
    (folder / "guides" / "sync.md").write_text(
        "# Sync\n\nThe sync daemon listens on port 7070 by default.\n\n"
        "## Retries\n\nFailed uploads are retried three times before the sync gives up.\n"
    )
    (folder / "billing.md").write_text(
        "# Billing\n\nInvoices are sent on the first day of each month by email.\n"
    )
    return folder


@pytest.fixture
def kb(tmp_path: Path, handbook: Path) -> Iterator[KnowledgeBase]:
    """Version 2: the handbook as first synced; version 3 (head): the sync port changed."""
    lake = curata.init(str(tmp_path / "project"))
    base = KnowledgeBase.create(lake, "handbook", embedder="hash:64")
    assert base.sync(str(handbook)).version == 2
    sync_md = handbook / "guides" / "sync.md"
    sync_md.write_text(sync_md.read_text().replace("7070", "8080"))
    assert base.sync(str(handbook)).version == 3
    yield base
    lake.close()


def _port_chunk(texts: list[str]) -> str:
    return next(t for t in texts if "listens on port" in t)


# -- LangChain ------------------------------------------------------------------------------


def test_langchain_documents_are_the_search_hits(kb: KnowledgeBase, handbook: Path) -> None:
    retriever = CurataRetriever(knowledge_base=kb, k=3)
    documents = retriever.invoke(QUERY)
    hits = kb.search(QUERY, k=3)
    assert len(documents) == 3
    assert all(isinstance(d, Document) for d in documents)
    assert [d.page_content for d in documents] == [h.text for h in hits]
    assert [d.id for d in documents] == [h.chunk_id for h in hits]
    first, hit = documents[0], hits[0]
    assert list(first.metadata) == METADATA_KEYS
    assert first.metadata == {
        "chunk_id": hit.chunk_id,
        "doc_id": "guides/sync.md",
        "doc_version": 2,
        "score": hit.score,
        "source": str(handbook / "guides" / "sync.md"),
        "heading": "Sync",
        "page": None,
    }
    assert "8080" in first.page_content


def test_langchain_at_searches_an_older_version(kb: KnowledgeBase) -> None:
    kb.tag(2, "prod")
    for at in (2, "prod"):
        old = CurataRetriever(knowledge_base=kb, k=5, at=at).invoke(QUERY)
        text = _port_chunk([d.page_content for d in old])
        assert "7070" in text and "8080" not in text
        sync_docs = [d for d in old if d.metadata["doc_id"] == "guides/sync.md"]
        assert {d.metadata["doc_version"] for d in sync_docs} == {1}
    head = CurataRetriever(knowledge_base=kb, k=5).invoke(QUERY)
    assert "8080" in _port_chunk([d.page_content for d in head])


def test_langchain_passes_mode_filter_and_k(kb: KnowledgeBase) -> None:
    keyword = CurataRetriever(knowledge_base=kb, k=1, mode="keyword").invoke("invoices")
    assert [d.metadata["doc_id"] for d in keyword] == ["billing.md"]
    assert keyword[0].metadata["score"] > 0
    only_guides = CurataRetriever(
        knowledge_base=kb, k=5, mode="vector", filter="doc_id LIKE 'guides/%'"
    ).invoke("invoices by email")
    assert only_guides
    assert {d.metadata["doc_id"] for d in only_guides} == {"guides/sync.md"}


def test_langchain_from_lake_path_async_and_batch(kb: KnowledgeBase, tmp_path: Path) -> None:
    retriever = CurataRetriever.from_lake(str(tmp_path / "project"), "handbook", k=2)
    expected = [d.page_content for d in CurataRetriever(knowledge_base=kb, k=2).invoke(QUERY)]
    assert [d.page_content for d in retriever.invoke(QUERY)] == expected
    # ainvoke runs the search in a worker thread.
    assert [d.page_content for d in asyncio.run(retriever.ainvoke(QUERY))] == expected
    first, second = retriever.batch([QUERY, "invoices"])
    assert [d.page_content for d in first] == expected
    assert second[0].metadata["doc_id"] == "billing.md"


def test_langchain_retriever_composes_in_a_chain(kb: KnowledgeBase) -> None:
    context = RunnableLambda(lambda docs: "\n\n".join(d.page_content for d in docs))
    chain = CurataRetriever(knowledge_base=kb, k=1, mode="keyword") | context
    assert "Invoices are sent" in chain.invoke("invoices")


def test_langchain_rejects_bad_settings(kb: KnowledgeBase, tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        CurataRetriever(knowledge_base=kb, k=0)
    with pytest.raises(ValidationError):
        CurataRetriever(knowledge_base=kb, mode="semantic")  # type: ignore[arg-type]
    with pytest.raises(curata.NotFound):
        CurataRetriever.from_lake(str(tmp_path / "project"), "no-such-kb")
    with pytest.raises(curata.NotFound):
        CurataRetriever(knowledge_base=kb, at=99).invoke(QUERY)
    with pytest.raises(InvalidInput, match="nosuchcol"):
        CurataRetriever(knowledge_base=kb, filter="nosuchcol = 1").invoke(QUERY)


# -- LlamaIndex -----------------------------------------------------------------------------


def test_llamaindex_nodes_are_the_search_hits(kb: KnowledgeBase) -> None:
    nodes = CurataLlamaRetriever(kb, k=3).retrieve(QUERY)
    hits = kb.search(QUERY, k=3)
    assert all(isinstance(n, NodeWithScore) and isinstance(n.node, TextNode) for n in nodes)
    assert [n.node.node_id for n in nodes] == [h.chunk_id for h in hits]
    assert [n.node.get_content() for n in nodes] == [h.text for h in hits]
    assert [n.score for n in nodes] == [h.score for h in hits]
    node = nodes[0].node
    assert list(node.metadata) == METADATA_KEYS
    assert node.metadata["doc_id"] == node.ref_doc_id == "guides/sync.md"
    assert node.metadata["doc_version"] == 2
    # What the LLM reads: the text with where it comes from, not the bookkeeping.
    for_llm = node.get_content(metadata_mode=MetadataMode.LLM)
    assert "heading: Sync" in for_llm and "source: " in for_llm
    assert "chunk_id" not in for_llm and "doc_version" not in for_llm
    assert node.metadata["page"] is None and "page:" not in for_llm  # a markdown file


def test_llamaindex_at_searches_an_older_version(kb: KnowledgeBase) -> None:
    old = CurataLlamaRetriever(kb, k=5, at=2).retrieve(QUERY)
    text = _port_chunk([n.node.get_content() for n in old])
    assert "7070" in text and "8080" not in text
    head = asyncio.run(CurataLlamaRetriever(kb, k=5).aretrieve(QUERY))
    assert "8080" in _port_chunk([n.node.get_content() for n in head])


def test_llamaindex_options_and_from_lake(kb: KnowledgeBase, tmp_path: Path) -> None:
    retriever = CurataLlamaRetriever.from_lake(
        str(tmp_path / "project"), "handbook", k=5, mode="keyword", filter="doc_id = 'billing.md'"
    )
    nodes = retriever.retrieve("invoices")
    assert [n.node.metadata["doc_id"] for n in nodes] == ["billing.md"]
    with pytest.raises(InvalidInput, match="at least 1"):
        CurataLlamaRetriever(kb, k=0)
    with pytest.raises(InvalidInput, match="Unknown search mode"):
        CurataLlamaRetriever(kb, mode="semantic")  # type: ignore[arg-type]


# -- without the framework ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "framework", "extra"),
    [
        ("curata.rag.adapters.langchain", "langchain_core", "langchain"),
        ("curata.rag.adapters.llamaindex", "llama_index", "llamaindex"),
    ],
)
def test_a_missing_framework_names_the_pip_line(
    monkeypatch: pytest.MonkeyPatch, module: str, framework: str, extra: str
) -> None:
    for name in [m for m in sys.modules if m == framework or m.startswith(framework + ".")]:
        monkeypatch.setitem(sys.modules, name, None)  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, framework, None)  # type: ignore[arg-type]
    monkeypatch.delitem(sys.modules, module)
    with pytest.raises(MissingDependency) as caught:
        importlib.import_module(module)
    assert f'pip install "curata[{extra}]"' in str(caught.value)
