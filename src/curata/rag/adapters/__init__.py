"""Knowledge bases as retrievers of the common RAG frameworks.

Each adapter is a module of its own, so that importing it loads that framework and no other;
a missing framework fails with the ``pip install`` line that adds it.

=====================================  ===================================================
``curata.rag.adapters.langchain``      :class:`CurataRetriever`, a LangChain retriever
                                       (``pip install "curata[langchain]"``)
``curata.rag.adapters.llamaindex``     :class:`CurataLlamaRetriever`, a LlamaIndex retriever
                                       (``pip install "curata[llamaindex]"``)
=====================================  ===================================================

>>> from curata.rag.adapters.langchain import CurataRetriever  # doctest: +SKIP
>>> retriever = CurataRetriever.from_lake("./project", "handbook", k=4, at="prod")  # doctest: +SKIP
>>> retriever.invoke("which port does sync use?")  # doctest: +SKIP
"""
