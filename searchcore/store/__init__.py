"""index.db: the SQLite file that is the source of truth of an index, and all of its SQL.

Tables: ``files`` (one row per source file: path, kind, content hash, size, mtime),
``documents`` (one per file, or one per record of a JSON/JSONL file), ``chunks`` (text,
character and line span), ``vectors`` (one float32 BLOB per chunk), ``chunks_fts`` (FTS5
over each chunk and its title, read from the chunks: it keeps no copy), ``labels`` and
``meta`` (model, dimension, FAISS factory string, generation, schema version). No module outside this package runs SQL.

Rooms: ``schema`` (the migrations), ``core`` (connection, transactions, meta),
``writes`` (documents, chunks, vectors), ``reads`` (what search and the tools read),
``filters`` (filters and query text as SQL), ``labels`` and ``upkeep`` (check, repair,
compact, the reindex swap). ``Store`` is all of them on one connection.

Trade-offs: the connection runs in autocommit mode and every write goes through
``Store.write()``, an explicit ``BEGIN IMMEDIATE`` ... ``COMMIT``, because a batch of
documents, chunks and vectors must land together or not at all; sqlite-utils' helpers
commit on their own, so they are used only for reads and schema inspection. WAL mode
lets readers go on while a writer commits.
"""

from __future__ import annotations

from .core import ChunkRecord, DocumentRow
from .filters import filter_sql, fts_query
from .labels import Labels
from .reads import Reads
from .schema import DB_NAME, MIGRATIONS
from .upkeep import Upkeep
from .writes import Writes

__all__ = ["Store", "ChunkRecord", "DocumentRow", "MIGRATIONS", "DB_NAME", "filter_sql", "fts_query"]


class Store(Writes, Reads, Labels, Upkeep):
    """One open index.db with every operation on it. Not thread-safe: one per thread."""
