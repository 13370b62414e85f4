"""indexer: folders and files -> documents -> chunks -> vectors -> index.db + FAISS.

It owns reading what people keep (``sources``, ``readers``), cutting it into chunks
(``chunker``), the incremental, crash-safe indexing run (``build``), labelling documents
with classifiers (``labels``), re-embedding an index with another model (``reindex``)
and comparing models on one collection (``compare``). It imports only searchcore.
"""

from .build import IndexSummary, build_index
from .chunker import Chunk, chunk_text
from .readers import Document, Skip, read_document
from .sources import walk

__all__ = ["build_index", "IndexSummary", "Chunk", "chunk_text", "Document", "Skip", "read_document", "walk"]
