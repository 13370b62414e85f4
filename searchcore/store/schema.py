"""The schema of index.db, as numbered migrations.

Migration N (1-based) brings the schema from version N-1 to N; ``Store.migrate`` applies
the pending ones, each in its own write transaction, and records ``schema_version`` in
``meta``. A reader never migrates: an index whose schema is older than this version of
searchctl is upgraded by the next command that writes it.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "DB_NAME"]

DB_NAME = "index.db"

# Never edit a shipped migration: append a new one.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE files (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            path TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            hash TEXT NOT NULL,          -- '' until every document of the file is committed
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            indexed_at TEXT NOT NULL
        )""",
        """CREATE TABLE documents (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
            key TEXT NOT NULL,           -- record id inside a JSON/JSONL file, '' for a whole file
            title TEXT,
            hash TEXT NOT NULL,
            metadata TEXT NOT NULL DEFAULT '{}',
            UNIQUE (file_id, key)
        )""",
        """CREATE TABLE chunks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            ordinal INTEGER NOT NULL,
            char_start INTEGER NOT NULL,
            char_end INTEGER NOT NULL,
            line_start INTEGER NOT NULL,
            line_end INTEGER NOT NULL,
            text TEXT NOT NULL
        )""",
        "CREATE INDEX chunks_doc ON chunks (doc_id)",
        """CREATE TABLE vectors (
            chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
            vector BLOB NOT NULL
        )""",
    ),
    (
        # BM25 over each chunk with its document's title; rowid = chunk id. Written in the
        # same transactions as the chunks, so the keyword and vector views never disagree.
        "CREATE VIRTUAL TABLE chunks_fts USING fts5(title, text, tokenize='porter unicode61 remove_diacritics 2')",
        """INSERT INTO chunks_fts (rowid, title, text)
           SELECT chunks.id, coalesce(documents.title, ''), chunks.text
           FROM chunks JOIN documents ON documents.id = chunks.doc_id""",
        "CREATE INDEX files_mtime ON files (mtime_ns)",
    ),
    (
        # One label per document and classifier ("facet"); doc_hash and classifier say
        # whether it is still current (a changed document or a retrained classifier is
        # labelled again).
        """CREATE TABLE labels (
            doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            facet TEXT NOT NULL,
            label TEXT NOT NULL,
            score REAL NOT NULL,
            classifier TEXT NOT NULL,
            doc_hash TEXT NOT NULL,
            PRIMARY KEY (doc_id, facet)
        )""",
        "CREATE INDEX labels_label ON labels (label, facet)",
    ),
    (
        # searchctl reindex: the next model's vectors fill vectors_next batch by batch (a
        # crash resumes); one transaction swaps the tables, and the replaced vectors stay
        # in vectors_previous for a rollback.
        """CREATE TABLE vectors_next (
            chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
            vector BLOB NOT NULL
        )""",
        """CREATE TABLE vectors_previous (
            chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
            vector BLOB NOT NULL
        )""",
    ),
    (
        # Files an indexing run looked at and could not index, each with the reason, and
        # its size and mtime so an unchanged one is not read again; notes on files read
        # with a warning (bad bytes replaced, a JSONL line left out).
        """CREATE TABLE skipped (
            path TEXT PRIMARY KEY,
            reason TEXT NOT NULL,
            size INTEGER NOT NULL DEFAULT -1,
            mtime_ns INTEGER NOT NULL DEFAULT -1,
            readers TEXT NOT NULL DEFAULT '',
            seen_at TEXT NOT NULL
        )""",
        "ALTER TABLE files ADD COLUMN notes TEXT NOT NULL DEFAULT ''",
        "CREATE INDEX files_hash ON files (hash)",
    ),
    (
        # The full-text table keeps no copy of the text (it was a second copy of every
        # chunk): its content is read from the chunks and their titles through a view.
        # Rows are removed with FTS5's 'delete' command, given the values they were
        # indexed with, before the chunk itself goes (``Writes._forget_text``).
        "DROP TABLE chunks_fts",
        """CREATE VIEW chunk_text AS
           SELECT chunks.id AS id, coalesce(documents.title, '') AS title, chunks.text AS text
           FROM chunks JOIN documents ON documents.id = chunks.doc_id""",
        """CREATE VIRTUAL TABLE chunks_fts USING fts5(title, text, content='chunk_text', content_rowid='id',
           tokenize='porter unicode61 remove_diacritics 2')""",
        "INSERT INTO chunks_fts (chunks_fts) VALUES ('rebuild')",
    ),
    (
        # count(*) scans the smallest b-tree of a table; the vectors table's own holds
        # every BLOB (1.9 GB at a million chunks: a second per count, and opening a
        # searcher counts). This index of its ids alone is the small one.
        "CREATE INDEX vectors_ids ON vectors (chunk_id)",
    ),
    (
        # Chunks of documents in a language with its own stemmer: their title and text as the
        # keyword side indexes them (words reduced by that language's Snowball stemmer, under
        # FTS5's porter as for every text). The full-text table reads them through the view;
        # English chunks (and any language without a stemmer) keep their own text there.
        """CREATE TABLE chunk_terms (
            chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
            lang TEXT NOT NULL,
            title TEXT NOT NULL,
            text TEXT NOT NULL
        )""",
        "CREATE INDEX chunk_terms_lang ON chunk_terms (lang)",
        "DROP VIEW chunk_text",
        """CREATE VIEW chunk_text AS
           SELECT chunks.id AS id, coalesce(chunk_terms.title, documents.title, '') AS title,
                  coalesce(chunk_terms.text, chunks.text) AS text
           FROM chunks JOIN documents ON documents.id = chunks.doc_id
           LEFT JOIN chunk_terms ON chunk_terms.chunk_id = chunks.id""",
    ),
]
