"""Writes of documents, chunks and vectors: each inside ``Store.write()``.

A document's chunks, their vectors and their full-text rows are written in the same
transaction, so the vector and keyword views of an index never disagree. Ids use
AUTOINCREMENT, so a deleted chunk's id is never reused: an older FAISS file can then
never point at somebody else's text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Protocol

import numpy as np

from .core import StoreBase, now
from .stemming import keyword_text


class ChunkLike(Protocol):
    @property
    def text(self) -> str: ...
    @property
    def char_start(self) -> int: ...
    @property
    def char_end(self) -> int: ...
    @property
    def line_start(self) -> int: ...
    @property
    def line_end(self) -> int: ...


__all__ = ["Writes"]


class Writes(StoreBase):
    def file_row(self, path: str) -> dict | None:
        rows = list(self.db.query("SELECT * FROM files WHERE path = ?", [path]))
        return rows[0] if rows else None

    def file_paths(self) -> list[str]:
        return [row[0] for row in self.conn.execute("SELECT path FROM files ORDER BY path")]

    def ensure_file(self, path: str, kind: str) -> int:
        """Inside ``write()``: the file's id, creating a row marked unfinished (hash '')."""
        row = self.conn.execute("SELECT id FROM files WHERE path = ?", (path,)).fetchone()
        if row:
            self.conn.execute("UPDATE files SET hash = '', kind = ? WHERE id = ?", (kind, row[0]))
            return int(row[0])
        cur = self.conn.execute(
            "INSERT INTO files (path, kind, hash, size, mtime_ns, indexed_at) VALUES (?, ?, '', 0, 0, ?)",
            (path, kind, now()),
        )
        return int(cur.lastrowid or 0)

    def finish_file(
        self, file_id: int, *, kind: str, hash: str, size: int, mtime_ns: int, notes: Sequence[str] = ()
    ) -> None:
        """Inside ``write()``: every document of the file is committed."""
        self.conn.execute(
            "UPDATE files SET kind = ?, hash = ?, size = ?, mtime_ns = ?, indexed_at = ?, notes = ? WHERE id = ?",
            (kind, hash, size, mtime_ns, now(), json.dumps(list(notes)) if notes else "", file_id),
        )
        self.conn.execute("DELETE FROM skipped WHERE path = (SELECT path FROM files WHERE id = ?)", (file_id,))

    # -- moves and copies: a known content hash is never embedded again ----------------------

    def files_with_hash(self, digest: str) -> list[dict]:
        """Finished files whose content hash is ``digest``."""
        return list(self.db.query("SELECT * FROM files WHERE hash = ? ORDER BY id", [digest]))

    def move_file(self, file_id: int, path: str, *, size: int, mtime_ns: int) -> None:
        """Inside ``write()``: the file now lives at ``path`` (its documents, chunks and
        vectors stay as they are)."""
        self.conn.execute("DELETE FROM skipped WHERE path = ?", (path,))
        self.conn.execute(
            "UPDATE files SET path = ?, size = ?, mtime_ns = ?, indexed_at = ? WHERE id = ?",
            (path, size, mtime_ns, now(), file_id),
        )

    def copy_file(self, source_id: int, path: str, *, size: int, mtime_ns: int) -> tuple[int, list[int]]:
        """Inside ``write()``: a new file at ``path`` with a copy of the documents, chunks,
        vectors, full-text rows and labels of file ``source_id``; returns (documents,
        chunk ids added)."""
        self.conn.execute("DELETE FROM skipped WHERE path = ?", (path,))
        self._forget_text(self._chunk_ids("documents.file_id IN (SELECT id FROM files WHERE path = ?)", (path,)))
        self.conn.execute("DELETE FROM files WHERE path = ?", (path,))
        cur = self.conn.execute(
            "INSERT INTO files (path, kind, hash, size, mtime_ns, indexed_at, notes) "
            "SELECT ?, kind, hash, ?, ?, ?, notes FROM files WHERE id = ?",
            (path, size, mtime_ns, now(), source_id),
        )
        file_id = int(cur.lastrowid or 0)
        added: list[int] = []
        docs = self.conn.execute(
            "SELECT id, key, title, hash, metadata FROM documents WHERE file_id = ? ORDER BY id", (source_id,)
        ).fetchall()
        for old_doc, key, title, doc_hash, metadata in docs:
            new_doc = self.conn.execute(
                "INSERT INTO documents (file_id, key, title, hash, metadata) VALUES (?, ?, ?, ?, ?)",
                (file_id, key, title, doc_hash, metadata),
            ).lastrowid
            self.conn.execute(
                "INSERT INTO labels (doc_id, facet, label, score, classifier, doc_hash) "
                "SELECT ?, facet, label, score, classifier, doc_hash FROM labels WHERE doc_id = ?",
                (new_doc, old_doc),
            )
            rows = self.conn.execute(
                "SELECT chunks.id, ordinal, char_start, char_end, line_start, line_end, text, vectors.vector "
                "FROM chunks JOIN vectors ON vectors.chunk_id = chunks.id WHERE doc_id = ? ORDER BY ordinal",
                (old_doc,),
            ).fetchall()
            for _, ordinal, char_start, char_end, line_start, line_end, text, vector in rows:
                chunk_id = int(
                    self.conn.execute(
                        "INSERT INTO chunks (doc_id, ordinal, char_start, char_end, line_start, line_end, text) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (new_doc, ordinal, char_start, char_end, line_start, line_end, text),
                    ).lastrowid
                    or 0
                )
                self.conn.execute("INSERT INTO vectors (chunk_id, vector) VALUES (?, ?)", (chunk_id, vector))
                self._index_text(chunk_id, title, text, _language(metadata))
                added.append(chunk_id)
        return len(docs), added

    # -- files that could not be indexed -------------------------------------------------

    def skip_row(self, path: str) -> dict | None:
        rows = list(self.db.query("SELECT * FROM skipped WHERE path = ?", [path]))
        return rows[0] if rows else None

    def record_skips(self, skips: Sequence[tuple[str, str, int, int, str]]) -> None:
        """Inside ``write()``: (path, reason, size, mtime_ns, readers version) of files a
        run could not index."""
        self.conn.executemany(
            "INSERT INTO skipped (path, reason, size, mtime_ns, readers, seen_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (path) DO UPDATE SET reason = excluded.reason, size = excluded.size, "
            "mtime_ns = excluded.mtime_ns, readers = excluded.readers, seen_at = excluded.seen_at",
            [(*skip, now()) for skip in skips],
        )

    def forget_skips(self, paths: Iterable[str]) -> None:
        """Inside ``write()``: these paths are no longer skipped (gone, or indexed)."""
        self.conn.executemany("DELETE FROM skipped WHERE path = ?", [(p,) for p in paths])

    def skipped_rows(self) -> dict[str, dict]:
        """path -> the skipped table's row."""
        return {row["path"]: row for row in self.db.query("SELECT * FROM skipped")}

    def touch_file(self, file_id: int, *, size: int, mtime_ns: int) -> None:
        """Inside ``write()``: same content, new timestamp."""
        self.conn.execute("UPDATE files SET size = ?, mtime_ns = ? WHERE id = ?", (size, mtime_ns, file_id))

    def documents_of(self, file_id: int) -> dict[str, tuple[int, str]]:
        rows = self.conn.execute("SELECT key, id, hash FROM documents WHERE file_id = ?", (file_id,))
        return {key: (doc_id, doc_hash) for key, doc_id, doc_hash in rows}

    def _chunk_ids(self, where: str, params: Sequence[object]) -> list[int]:
        sql = f"SELECT chunks.id FROM chunks JOIN documents ON documents.id = chunks.doc_id WHERE {where}"
        return [row[0] for row in self.conn.execute(sql, params)]

    def _index_text(
        self, chunk_id: int, title: str | None, text: str, lang: str | None, title_terms: str | None = None
    ) -> None:
        """The chunk's full-text row: its title and text, or for a document in a language
        with a stemmer of its own, both reduced by it (kept in chunk_terms, which the
        full-text table reads them from)."""
        terms = keyword_text(text, lang)
        if terms is None:
            self.conn.execute(
                "INSERT INTO chunks_fts (rowid, title, text) VALUES (?, ?, ?)", (chunk_id, title or "", text)
            )
            return
        if title_terms is None:
            title_terms = keyword_text(title or "", lang) or ""
        self.conn.execute(
            "INSERT INTO chunk_terms (chunk_id, lang, title, text) VALUES (?, ?, ?, ?)",
            (chunk_id, lang, title_terms, terms),
        )
        self.conn.execute(
            "INSERT INTO chunks_fts (rowid, title, text) VALUES (?, ?, ?)", (chunk_id, title_terms, terms)
        )

    def _forget_text(self, chunk_ids: list[int]) -> None:
        """Take chunks out of the full-text table; call it before they (or their documents)
        are deleted: FTS5 reads the values to remove from them."""
        self.conn.executemany(
            "INSERT INTO chunks_fts (chunks_fts, rowid, title, text) SELECT 'delete', id, title, text "
            "FROM chunk_text WHERE id = ?",
            [(i,) for i in chunk_ids],
        )

    def delete_file(self, file_id: int) -> list[int]:
        """Inside ``write()``: drop a file and everything under it; returns the chunk ids removed."""
        removed = self._chunk_ids("documents.file_id = ?", (file_id,))
        self._forget_text(removed)
        self.conn.execute("DELETE FROM files WHERE id = ?", (file_id,))
        return removed

    def delete_documents(self, doc_ids: Iterable[int]) -> list[int]:
        """Inside ``write()``."""
        removed: list[int] = []
        for doc_id in doc_ids:
            chunk_ids = self._chunk_ids("documents.id = ?", (doc_id,))
            self._forget_text(chunk_ids)  # while the chunks are still there to say what to remove
            self.conn.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
            removed += chunk_ids
        return removed

    def put_document(
        self,
        file_id: int,
        key: str,
        *,
        title: str | None,
        hash: str,
        metadata: dict,
        chunks: Sequence[ChunkLike],
        vectors: np.ndarray,
    ) -> tuple[list[int], list[int]]:
        """Inside ``write()``: insert or replace one document with its chunks and vectors.

        ``chunks`` are objects with text, char_start, char_end, line_start, line_end.
        Returns (chunk ids removed, chunk ids added).
        """
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        row = self.conn.execute("SELECT id FROM documents WHERE file_id = ? AND key = ?", (file_id, key)).fetchone()
        removed: list[int] = []
        meta_json = json.dumps(metadata, ensure_ascii=False, sort_keys=True)
        if row:
            doc_id = int(row[0])
            removed = self._chunk_ids("documents.id = ?", (doc_id,))
            self._forget_text(removed)
            self.conn.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
            self.conn.execute(
                "UPDATE documents SET title = ?, hash = ?, metadata = ? WHERE id = ?", (title, hash, meta_json, doc_id)
            )
        else:
            cur = self.conn.execute(
                "INSERT INTO documents (file_id, key, title, hash, metadata) VALUES (?, ?, ?, ?, ?)",
                (file_id, key, title, hash, meta_json),
            )
            doc_id = int(cur.lastrowid or 0)
        added: list[int] = []
        lang = metadata.get("lang") if isinstance(metadata.get("lang"), str) else None
        title_terms = keyword_text(title or "", lang)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        for ordinal, (chunk, vector) in enumerate(zip(chunks, vectors)):
            cur = self.conn.execute(
                "INSERT INTO chunks (doc_id, ordinal, char_start, char_end, line_start, line_end, text) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (doc_id, ordinal, chunk.char_start, chunk.char_end, chunk.line_start, chunk.line_end, chunk.text),
            )
            chunk_id = int(cur.lastrowid or 0)
            self.conn.execute("INSERT INTO vectors (chunk_id, vector) VALUES (?, ?)", (chunk_id, vector.tobytes()))
            self._index_text(chunk_id, title, chunk.text, lang, title_terms)
            added.append(chunk_id)
        return removed, added

    def known_files(self) -> dict[str, dict]:
        """path -> the file's row, with how many documents it holds."""
        rows = self.db.query(
            "SELECT files.*, (SELECT count(*) FROM documents WHERE documents.file_id = files.id) AS documents "
            "FROM files"
        )
        return {row["path"]: row for row in rows}


def _language(metadata_json: str) -> str | None:
    """The ``lang`` of a document's stored metadata, if it names one."""
    lang = json.loads(metadata_json or "{}").get("lang")
    return lang if isinstance(lang, str) else None
