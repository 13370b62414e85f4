"""indexer: folders and files -> documents -> chunks -> vectors -> index.db + FAISS."""

from .build import IndexSummary, build_index
from .chunker import Chunk, chunk_text
from .readers import Document, Skip, read_document
from .sources import walk

__all__ = ["build_index", "IndexSummary", "Chunk", "chunk_text", "Document", "Skip", "read_document", "walk"]
