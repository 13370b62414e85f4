"""The Milvus engine: an index's chunks searched in a Milvus collection.

The same client (``pymilvus.MilvusClient``) talks to Milvus Lite in a local file
(``--milvus-uri ./chunks.db``), to a ``milvus-lite server`` and to a Standalone or
Distributed cluster (``http://host:19530``). index.db stays the manifest of what was read;
the collection holds everything a search needs (text, vectors, BM25 terms, metadata,
labels), so daemons on other machines serve it with no local index.

``target``: where a collection is and connecting to it; ``schema``: the collection's
fields, rows and properties; ``reader``: the engine a Searcher uses and the records it
shows; ``writer``: what an indexing run publishes. pymilvus is imported only here.
"""

from .target import MilvusTarget

__all__ = ["MilvusTarget"]
