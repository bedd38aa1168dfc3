"""Knowledge bases for retrieval: sources -> parsed documents -> chunks -> embeddings -> search.

>>> from curata.rag import KnowledgeBase  # doctest: +SKIP
>>> kb = KnowledgeBase.create(lake, "handbook")  # doctest: +SKIP
>>> kb.sync("docs/").to_dict()["documents"]  # doctest: +SKIP
{'new': 34, 'changed': 0, 'unchanged': 0, 'deleted': 0, 'failed': 0}
>>> kb.search("default sync port", k=3)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from curata.rag.embedders import Embedder, load_embedder
    from curata.rag.kb import KnowledgeBase
    from curata.rag.search import SearchHit
    from curata.rag.source_list import KbSource
    from curata.rag.sync import SyncResult

__all__ = ["Embedder", "KbSource", "KnowledgeBase", "SearchHit", "SyncResult", "load_embedder"]

_WHERE = {
    "Embedder": "curata.rag.embedders",
    "load_embedder": "curata.rag.embedders",
    "KbSource": "curata.rag.source_list",
    "KnowledgeBase": "curata.rag.kb",
    "SearchHit": "curata.rag.search",
    "SyncResult": "curata.rag.sync",
}


def __getattr__(name: str) -> Any:
    # Lazy, so that `import curata.rag` does not import the parsers or a model.
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'curata.rag' has no attribute {name!r}")
