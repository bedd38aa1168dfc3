"""A knowledge base as a LlamaIndex retriever (``pip install "curata[llamaindex]"``).

>>> from curata.rag.adapters.llamaindex import CurataLlamaRetriever  # doctest: +SKIP
>>> retriever = CurataLlamaRetriever(kb, k=4, at="prod")  # doctest: +SKIP
>>> nodes = retriever.retrieve("which port does sync use?")  # doctest: +SKIP
>>> nodes[0].score, nodes[0].node.metadata["source"]  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Literal

from curata.errors import InvalidInput, MissingDependency
from curata.rag.kb import KnowledgeBase
from curata.rag.search import MODES

try:
    from llama_index.core.callbacks import CallbackManager
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import (
        NodeRelationship,
        NodeWithScore,
        QueryBundle,
        RelatedNodeInfo,
        TextNode,
    )
except ImportError as err:
    raise MissingDependency(
        "llama-index-core",
        "llamaindex",
        "The LlamaIndex retriever (curata.rag.adapters.llamaindex)",
    ) from err

if TYPE_CHECKING:
    from curata.lake import Lake
    from curata.rag.search import SearchHit

__all__ = ["CurataLlamaRetriever"]

#: metadata kept out of the text LlamaIndex shows the LLM or embeds (bookkeeping, not content)
HIDDEN_METADATA = ["chunk_id", "doc_id", "doc_version", "score"]


class CurataLlamaRetriever(BaseRetriever):
    """Retrieves the chunks of a curata knowledge base as LlamaIndex nodes.

    Each result is a ``NodeWithScore`` of a ``TextNode`` whose id is the chunk id, whose text
    is the chunk's, and whose ``metadata`` holds ``chunk_id``, ``doc_id``, ``doc_version``,
    ``score``, ``source``, ``heading`` and ``page`` (only the last three reach the LLM); the
    node's source document (``ref_doc_id``) is the chunk's ``doc_id``.

    Args:
        knowledge_base: the knowledge base to search.
        k: how many chunks each query returns.
        mode: ``vector``, ``keyword`` (BM25) or ``hybrid`` (both, fused by rank).
        at: the version to search (a number or a tag such as ``prod``); None: the head,
            read anew at each query.
        embedder: which embedder's chunks to search (default: the knowledge base's first).
        filter: a SQL predicate over chunk columns, e.g. ``doc_id LIKE 'guides/%'``.
        callback_manager: LlamaIndex callbacks (default: those of ``Settings``).
        verbose: print what recursive retrieval does, as other LlamaIndex retrievers do.

    Raises:
        InvalidInput: ``k`` below 1 or an unknown ``mode``.

    >>> retriever = CurataLlamaRetriever(kb, k=3)  # doctest: +SKIP
    >>> retriever.retrieve("default sync port")[0].node.get_content()  # doctest: +SKIP
    """

    def __init__(
        self,
        knowledge_base: KnowledgeBase,
        *,
        k: int = 5,
        mode: Literal["vector", "keyword", "hybrid"] = "hybrid",
        at: str | int | None = None,
        embedder: str | None = None,
        filter: str | None = None,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        if k < 1:
            raise InvalidInput(f"k must be at least 1, not {k}.")
        if mode not in MODES:
            raise InvalidInput(f"Unknown search mode {mode!r}.", hint=f"Modes: {', '.join(MODES)}.")
        super().__init__(callback_manager=callback_manager, verbose=verbose)
        self.knowledge_base = knowledge_base
        self.k = k
        self.mode = mode
        self.at = at
        self.embedder = embedder
        self.filter = filter

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
    ) -> CurataLlamaRetriever:
        """A retriever of knowledge base ``name`` in ``lake`` (a lake or its path).

        Raises:
            NotFound: there is no lake at the path, or no such knowledge base in it.
        """
        if isinstance(lake, str):
            import curata

            lake = curata.open(lake)
        return cls(
            KnowledgeBase(lake, name), k=k, mode=mode, at=at, embedder=embedder, filter=filter
        )

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self.knowledge_base.search(
            query_bundle.query_str,
            self.k,
            at=self.at,
            mode=self.mode,
            embedder=self.embedder,
            filter=self.filter,
        )
        return [NodeWithScore(node=_node(hit), score=hit.score) for hit in hits]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        # A search blocks (Lance, the catalog, perhaps an embedding endpoint): off the loop.
        return await asyncio.to_thread(self._retrieve, query_bundle)


def _node(hit: SearchHit) -> TextNode:
    metadata: dict[str, Any] = hit.to_dict()
    del metadata["text"]
    # The LLM is not told "page: None" for a file without pages, nor an empty heading.
    empty = [key for key, value in metadata.items() if value is None or value == ""]
    return TextNode(
        id_=hit.chunk_id,
        text=hit.text,
        metadata=metadata,
        excluded_llm_metadata_keys=[*HIDDEN_METADATA, *empty],
        excluded_embed_metadata_keys=list(HIDDEN_METADATA),
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=hit.doc_id)},
    )
