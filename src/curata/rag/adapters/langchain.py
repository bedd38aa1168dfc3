"""A knowledge base as a LangChain retriever (``pip install "curata[langchain]"``).

>>> from curata.rag.adapters.langchain import CurataRetriever  # doctest: +SKIP
>>> retriever = CurataRetriever(knowledge_base=kb, k=4, at="prod")  # doctest: +SKIP
>>> docs = retriever.invoke("which port does sync use?")  # doctest: +SKIP
>>> docs[0].metadata["source"], docs[0].metadata["doc_version"]  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from curata.errors import MissingDependency
from curata.rag.kb import KnowledgeBase

try:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
    from pydantic import ConfigDict, Field
except ImportError as err:
    raise MissingDependency(
        "langchain-core", "langchain", "The LangChain retriever (curata.rag.adapters.langchain)"
    ) from err

if TYPE_CHECKING:
    from curata.lake import Lake

__all__ = ["CurataRetriever"]


class CurataRetriever(BaseRetriever):
    """Retrieves the chunks of a curata knowledge base as LangChain ``Document`` objects.

    Each document's ``page_content`` is the chunk's text and its ``metadata`` holds
    ``chunk_id``, ``doc_id``, ``doc_version``, ``score``, ``source``, ``heading`` and ``page``;
    its ``id`` is the chunk id. The fields are the arguments of
    :meth:`curata.rag.KnowledgeBase.search`.

    Attributes:
        knowledge_base: the knowledge base to search.
        k: how many chunks each query returns.
        mode: ``vector``, ``keyword`` (BM25) or ``hybrid`` (both, fused by rank).
        at: the version to search (a number or a tag such as ``prod``); None: the head,
            read anew at each query.
        embedder: which embedder's chunks to search (default: the knowledge base's first).
        filter: a SQL predicate over chunk columns, e.g. ``doc_id LIKE 'guides/%'``.

    >>> retriever = CurataRetriever(knowledge_base=kb, k=3)  # doctest: +SKIP
    >>> retriever.invoke("default sync port")[0].page_content  # doctest: +SKIP
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    knowledge_base: KnowledgeBase
    k: int = Field(default=5, ge=1)
    mode: Literal["vector", "keyword", "hybrid"] = "hybrid"
    at: str | int | None = None
    embedder: str | None = None
    filter: str | None = None

    @classmethod
    def from_lake(
        cls,
        lake: Lake | str,
        name: str,
        *,
        k: int = 5,
        mode: Literal["vector", "keyword", "hybrid"] = "hybrid",
        at: str | int | None = None,
        embedder: str | None = None,
        filter: str | None = None,
    ) -> CurataRetriever:
        """A retriever of knowledge base ``name`` in ``lake`` (a lake or its path).

        Raises:
            NotFound: there is no lake at the path, or no such knowledge base in it.
        """
        if isinstance(lake, str):
            import curata

            lake = curata.open(lake)
        return cls(
            knowledge_base=KnowledgeBase(lake, name),
            k=k,
            mode=mode,
            at=at,
            embedder=embedder,
            filter=filter,
        )

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        hits = self.knowledge_base.search(
            query,
            self.k,
            at=self.at,
            mode=self.mode,
            embedder=self.embedder,
            filter=self.filter,
        )
        documents = []
        for hit in hits:
            metadata: dict[str, Any] = hit.to_dict()
            del metadata["text"]
            documents.append(Document(page_content=hit.text, metadata=metadata, id=hit.chunk_id))
        return documents
