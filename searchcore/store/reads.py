"""Reads: what search, labelling, fine-tuning and the tools read from index.db."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import numpy as np

from ..errors import IndexFormatError
from ..options import Filters
from .core import ChunkRecord, DocumentRow, StoreBase
from .filters import filter_sql

__all__ = ["Reads"]

_MAX_VARIABLES = 30_000


_CHUNK_RECORDS = (
    "SELECT chunks.id, documents.id, files.path, documents.key, documents.title, chunks.text, "
    "chunks.char_start, chunks.char_end, chunks.line_start, chunks.line_end, documents.metadata, files.kind, "
    "files.mtime_ns "
    "FROM chunks JOIN documents ON documents.id = chunks.doc_id JOIN files ON files.id = documents.file_id "
)


class Reads(StoreBase):
    def chunk_records(self, chunk_ids: Sequence[int]) -> dict[int, ChunkRecord]:
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        sql = _CHUNK_RECORDS + f"WHERE chunks.id IN ({marks})"
        return {record.chunk_id: record for record in self._records(sql, [int(i) for i in chunk_ids])}

    def stored_vectors(self, doc_id: int) -> tuple[str | None, dict[str, np.ndarray]]:
        """(the document's title, chunk text -> its stored vector): what a changed document
        can keep of its old chunks, the ones whose text did not change."""
        rows = self.conn.execute(
            "SELECT documents.title, chunks.text, vectors.vector FROM documents JOIN chunks ON chunks.doc_id = "
            "documents.id JOIN vectors ON vectors.chunk_id = chunks.id WHERE documents.id = ?",
            (int(doc_id),),
        ).fetchall()
        title = rows[0][0] if rows else None
        return title, {text: np.frombuffer(blob, dtype=np.float32) for _, text, blob in rows}

    def metadata_fields(self) -> set[str] | None:
        """Every metadata field some document has (what ``--where`` can filter on)."""
        rows = self.conn.execute("SELECT DISTINCT field.key FROM documents, json_each(documents.metadata) AS field")
        return {row[0] for row in rows}

    def file_chunks(self, path: str) -> list[ChunkRecord]:
        """Every chunk of the indexed file at exactly ``path``, by document, in document order."""
        sql = _CHUNK_RECORDS + "WHERE files.path = ? AND files.hash != '' ORDER BY documents.id, chunks.ordinal"
        return self._records(sql, [path])

    def _records(self, sql: str, args: list) -> list[ChunkRecord]:
        out = []
        for row in self.conn.execute(sql, args):
            chunk_id, doc_id, path, key, title, text, char_start, char_end, line_start, line_end, meta, kind, mtime = (
                row
            )
            spans = (char_start, char_end, line_start, line_end)
            out.append(ChunkRecord(chunk_id, doc_id, path, key, title, text, *spans, json.loads(meta), kind, mtime))
        return out

    def all_vectors(self, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids int64, vectors float32 (n, dim)) for every chunk, in id order."""
        rows = self.conn.execute("SELECT chunk_id, vector FROM vectors ORDER BY chunk_id").fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        if not rows:
            return ids, np.zeros((0, dim), dtype=np.float32)
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
        if matrix.shape[1] != dim:
            raise IndexFormatError(
                f"{self.path} holds {matrix.shape[1]}-d vectors but its meta says {dim}; "
                "build a new index with `searchctl index DIR --index NEW`"
            )
        return ids, matrix

    def bm25(self, match: str, limit: int, allowed: str | None = None) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) for an FTS5 MATCH expression, best first; higher is better.

        ``allowed`` names a temporary table of chunk ids to keep (see ``allow()``)."""
        where = f"AND rowid IN (SELECT id FROM temp.{allowed})" if allowed else ""
        sql = f"SELECT rowid, -bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? {where} ORDER BY rank LIMIT ?"
        return [(int(r[0]), float(r[1])) for r in self.conn.execute(sql, (match, int(limit)))]

    def allow(self, filters: Filters, name: str | None = "allowed") -> np.ndarray:
        """The ids of the chunks ``filters`` let through, in id order; with ``name``, also
        in temporary table ``name`` (``bm25(allowed=name)`` then matches only those)."""
        where, params = filter_sql(filters)
        select = (
            "SELECT chunks.id FROM chunks JOIN documents ON documents.id = chunks.doc_id "
            f"JOIN files ON files.id = documents.file_id WHERE {where}"
        )
        if name is None:
            rows = self.conn.execute(select, list(params)).fetchall()
        else:
            self.conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} (id INTEGER PRIMARY KEY)")
            self.conn.execute(f"DELETE FROM temp.{name}")
            self.conn.execute(f"INSERT INTO temp.{name} (id) {select}", list(params))
            rows = self.conn.execute(f"SELECT id FROM temp.{name}").fetchall()
        return np.sort(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))

    def allow_ids(self, ids: np.ndarray, name: str = "allowed") -> None:
        """Temporary table ``name`` holding exactly ``ids`` (see ``allow()``)."""
        self.conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} (id INTEGER PRIMARY KEY)")
        self.conn.execute(f"DELETE FROM temp.{name}")
        self.conn.executemany(f"INSERT INTO temp.{name} (id) VALUES (?)", ((int(i),) for i in ids))

    def document_chunks(self, doc_ids: Sequence[int]) -> dict[int, list[tuple[int, str]]]:
        """doc id -> [(chunk id, text)] in document order."""
        out: dict[int, list[tuple[int, str]]] = {int(d): [] for d in doc_ids}
        if not out:
            return out
        marks = ",".join("?" * len(out))
        rows = self.conn.execute(
            f"SELECT doc_id, id, text FROM chunks WHERE doc_id IN ({marks}) ORDER BY doc_id, ordinal", list(out)
        )
        for doc_id, chunk_id, text in rows:
            out[doc_id].append((chunk_id, text))
        return out

    def vectors_of(self, chunk_ids: Sequence[int]) -> dict[int, np.ndarray]:
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        rows = self.conn.execute(f"SELECT chunk_id, vector FROM vectors WHERE chunk_id IN ({marks})", list(chunk_ids))
        return {int(c): np.frombuffer(blob, dtype=np.float32) for c, blob in rows}

    def places_of(self, chunk_ids: Sequence[int]) -> dict[int, tuple[str, str, int]]:
        """chunk id -> (record key, path, first character)."""
        out: dict[int, tuple[str, str, int]] = {}
        ids = [int(c) for c in chunk_ids]
        for start in range(0, len(ids), _MAX_VARIABLES):
            part = ids[start : start + _MAX_VARIABLES]
            rows = self.conn.execute(
                "SELECT chunks.id, documents.key, files.path, chunks.char_start FROM chunks JOIN documents ON "
                "documents.id = chunks.doc_id JOIN files ON files.id = documents.file_id "
                f"WHERE chunks.id IN ({','.join('?' * len(part))})",
                part,
            )
            out.update((c, (key, path, first)) for c, key, path, first in rows)
        return out

    def doc_ids_of(self, chunk_ids: Sequence[int]) -> dict[int, int]:
        """chunk id -> document id."""
        out: dict[int, int] = {}
        ids = [int(c) for c in chunk_ids]
        for start in range(0, len(ids), _MAX_VARIABLES):  # SQLite's limit on parameters of one statement
            part = ids[start : start + _MAX_VARIABLES]
            marks = ",".join("?" * len(part))
            out.update(self.conn.execute(f"SELECT id, doc_id FROM chunks WHERE id IN ({marks})", part).fetchall())
        return out

    def keyword_rows(self, chunk_ids: Sequence[int] | None = None, batch: int = 5000) -> Iterator[list[tuple]]:
        """Batches of (chunk id, document title, chunk text): of ``chunk_ids``, else of every
        chunk in id order (read a batch at a time, so a million chunks never sit in memory)."""
        head = "SELECT id, title, text FROM chunk_text "  # as the full-text table reads them
        if chunk_ids is not None:
            ids = [int(c) for c in chunk_ids]
            for start in range(0, len(ids), batch):
                part = ids[start : start + batch]
                yield self.conn.execute(head + f"WHERE id IN ({','.join('?' * len(part))})", part).fetchall()
            return
        after, page = -1, head + "WHERE id > ? ORDER BY id LIMIT ?"
        while rows := self.conn.execute(page, (after, batch)).fetchall():
            yield rows
            after = rows[-1][0]

    def keyword_languages(self) -> list[str]:
        """The languages whose own stemmer reduced some chunk's keyword terms (a query is
        reduced by each of them too)."""
        # A skip-scan of the index on lang: a step per language, not a read of every row.
        sql = (
            "WITH RECURSIVE found(lang) AS (SELECT min(lang) FROM chunk_terms UNION ALL "
            "SELECT (SELECT min(lang) FROM chunk_terms WHERE lang > found.lang) FROM found "
            "WHERE found.lang IS NOT NULL) SELECT lang FROM found WHERE lang IS NOT NULL"
        )
        return [r[0] for r in self.conn.execute(sql)]

    def chunk_ids(self) -> list[int]:
        return [int(r[0]) for r in self.conn.execute("SELECT id FROM chunks ORDER BY id")]

    def all_doc_ids(self) -> list[int]:
        return [int(r[0]) for r in self.conn.execute("SELECT id FROM documents ORDER BY id")]

    def sample_texts(self, limit: int) -> list[str]:
        """The text of the first ``limit`` chunks, in id order."""
        return [r[0] for r in self.conn.execute("SELECT text FROM chunks ORDER BY id LIMIT ?", (int(limit),))]

    def document_list(self) -> list[DocumentRow]:
        """(doc id, key, title, file path, file kind) of every document, in id order."""
        rows = self.conn.execute(
            "SELECT documents.id, documents.key, documents.title, files.path, files.kind FROM documents "
            "JOIN files ON files.id = documents.file_id ORDER BY documents.id"
        )
        return [DocumentRow(*row) for row in rows]

    def chunk_rows(self) -> list[tuple]:
        """(path, key, ordinal, char span, line span, text, vector blob) of every chunk: an
        index's content independent of its ids (to compare two builds)."""
        return self.conn.execute(
            "SELECT files.path, documents.key, chunks.ordinal, chunks.char_start, chunks.char_end, chunks.line_start, "
            "chunks.line_end, chunks.text, vectors.vector FROM chunks JOIN documents ON documents.id = chunks.doc_id "
            "JOIN files ON files.id = documents.file_id JOIN vectors ON vectors.chunk_id = chunks.id"
        ).fetchall()

    def file_list(self) -> list[dict]:
        """Every indexed file: path, kind, size, mtime_ns, indexed_at, notes (a list),
        documents and chunks, by path."""
        rows = self.db.query(
            "SELECT files.path, files.kind, files.size, files.mtime_ns, files.indexed_at, files.notes, "
            "(SELECT count(*) FROM documents WHERE documents.file_id = files.id) AS documents, "
            "(SELECT count(*) FROM chunks JOIN documents ON documents.id = chunks.doc_id "
            "WHERE documents.file_id = files.id) AS chunks FROM files WHERE files.hash != '' ORDER BY files.path"
        )
        return [{**row, "notes": json.loads(row["notes"]) if row["notes"] else []} for row in rows]

    def file_kind(self, path: str) -> str | None:
        """The kind of the indexed file at exactly ``path``; None when the index holds no such file."""
        row = self.conn.execute("SELECT kind FROM files WHERE path = ? AND hash != ''", (path,)).fetchone()
        return row[0] if row else None

    def image_files(self) -> tuple[int, int]:
        """(indexed image files, those of them without exactly one document)."""
        row = self.conn.execute(
            "SELECT count(*), coalesce(sum((SELECT count(*) FROM documents WHERE documents.file_id = files.id) "
            "!= 1), 0) FROM files WHERE kind = 'image' AND hash != ''"
        ).fetchone()
        return int(row[0]), int(row[1])

    def skipped_list(self) -> list[dict]:
        """Every file the index's runs looked at and could not index: path, reason, seen_at."""
        return list(self.db.query("SELECT path, reason, size, seen_at FROM skipped ORDER BY path"))

    def document_ids(self) -> tuple[set[str], set[str]]:
        """(record ids, paths of whole-file documents): the ids a judgement can name."""
        keys, paths = set(), set()
        for key, path in self.conn.execute(
            "SELECT documents.key, files.path FROM documents JOIN files ON files.id = documents.file_id"
        ):
            if key:
                keys.add(key)
            else:
                paths.add(path)
        return keys, paths
