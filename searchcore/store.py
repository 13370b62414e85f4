"""index.db: the SQLite file that is the source of truth of an index.

Tables: ``files`` (one row per source file: path, kind, content hash, size, mtime),
``documents`` (one per file, or one per record of a JSON/JSONL file), ``chunks`` (text,
character and line span), ``vectors`` (one float32 BLOB per chunk) and ``meta``
(model, dimension, FAISS factory string, generation, schema version).

Trade-offs: the connection runs in autocommit mode and every write goes through
``Store.write()``, an explicit ``BEGIN IMMEDIATE`` ... ``COMMIT``, because a batch of
documents, chunks and vectors must land together or not at all; sqlite-utils' helpers
commit on their own, so they are used only for reads and schema inspection. Ids use
AUTOINCREMENT so that a deleted chunk's id is never reused: an older FAISS file can then
never point at somebody else's text. WAL mode lets readers go on while a writer commits.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import sqlite_utils

from .errors import IndexFormatError, IndexNotFoundError

__all__ = ["Store", "ChunkRecord", "MIGRATIONS", "DB_NAME"]

DB_NAME = "index.db"

# Migration N (1-based) brings the schema from version N-1 to N. Never edit a shipped
# migration: append a new one.
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
]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class ChunkRecord:
    chunk_id: int
    doc_id: int
    path: str
    key: str
    title: str | None
    text: str
    char_start: int
    char_end: int
    line_start: int
    line_end: int
    metadata: dict = field(default_factory=dict)


class Store:
    """One open index.db. Not thread-safe: give each thread its own Store."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.read_only = False
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=False)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError as exc:  # a folder or file this user cannot write
                conn.close()
                conn = self._connect_read_only(exc)
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            raise IndexFormatError(
                f"{self.path} is not a searchctl index ({exc}); remove it or pick another --index"
            ) from exc
        self.conn = conn
        self.db = sqlite_utils.Database(conn)
        self.migrate()

    def _connect_read_only(self, why: sqlite3.OperationalError) -> sqlite3.Connection:
        """Open an index this user may read but not write: read-only, and when SQLite
        cannot set up WAL sharing without writing (no -shm file yet), as immutable, which
        is what a folder nobody here can write is. A WAL file with uncommitted-to-disk
        pages is never ignored that way."""
        uri = "file:" + urllib.parse.quote(str(self.path.resolve()))
        wal = self.path.with_name(self.path.name + "-wal")
        options = ["mode=ro"] + ([] if wal.exists() and wal.stat().st_size > 0 else ["immutable=1"])
        for option in options:
            try:
                conn = sqlite3.connect(f"{uri}?{option}", uri=True, isolation_level=None, check_same_thread=False)
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.OperationalError:
                continue
            self.read_only = True
            return conn
        raise sqlite3.OperationalError(f"cannot open it for reading ({why})")

    @classmethod
    def open(cls, index_dir: Path, *, create: bool = False) -> Store:
        index_dir = Path(index_dir)
        db_path = index_dir / DB_NAME
        if not db_path.exists():
            if not create:
                raise IndexNotFoundError(index_dir)
            index_dir.mkdir(parents=True, exist_ok=True)
        return cls(db_path)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions -------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[None]:
        """One atomic write transaction; rolled back on any exception."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Several reads that see one committed state."""
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    # -- schema -------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        if "meta" not in self.db.table_names():
            return 0
        return int(self.get_meta("schema_version") or 0)

    def migrate(self) -> int:
        """Apply pending migrations; returns how many ran. Safe to call any number of times."""
        try:
            current = self.schema_version
        except sqlite3.DatabaseError as exc:
            raise IndexFormatError(
                f"{self.path} is not a searchctl index ({exc}); remove it or pick another --index"
            ) from exc
        if current > len(MIGRATIONS):
            raise IndexFormatError(
                f"{self.path} has schema v{current} but this searchctl reads up to v{len(MIGRATIONS)}; "
                "upgrade searchctl"
            )
        if current < len(MIGRATIONS) and self.read_only:
            raise IndexFormatError(
                f"{self.path} has schema v{current} and needs an upgrade to v{len(MIGRATIONS)}, "
                "but this user cannot write it; open it once where it can be written"
            )
        ran = 0
        for version in range(current + 1, len(MIGRATIONS) + 1):
            with self.write():
                # Re-read inside the lock: another process may have migrated meanwhile.
                if self.schema_version >= version:
                    continue
                for statement in MIGRATIONS[version - 1]:
                    self.conn.execute(statement)
                self._set_meta("schema_version", str(version))
                if version == 1:
                    self._set_meta("generation", "0")
                    self._set_meta("created_at", _now())
            ran += 1
        return ran

    # -- meta -----------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def meta(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT key, value FROM meta").fetchall())

    def _set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def set_meta(self, **values: object) -> None:
        """Inside ``write()``."""
        for key, value in values.items():
            self._set_meta(key, value if isinstance(value, str) else json.dumps(value))

    @property
    def generation(self) -> int:
        return int(self.get_meta("generation") or 0)

    def bump_generation(self) -> int:
        """Inside ``write()``: mark the committed state as new."""
        generation = self.generation + 1
        self._set_meta("generation", str(generation))
        self._set_meta("updated_at", _now())
        return generation

    # -- files and documents --------------------------------------------------------

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
            (path, kind, _now()),
        )
        return int(cur.lastrowid)

    def finish_file(self, file_id: int, *, kind: str, hash: str, size: int, mtime_ns: int) -> None:
        """Inside ``write()``: every document of the file is committed."""
        self.conn.execute(
            "UPDATE files SET kind = ?, hash = ?, size = ?, mtime_ns = ?, indexed_at = ? WHERE id = ?",
            (kind, hash, size, mtime_ns, _now(), file_id),
        )

    def touch_file(self, file_id: int, *, size: int, mtime_ns: int) -> None:
        """Inside ``write()``: same content, new timestamp."""
        self.conn.execute("UPDATE files SET size = ?, mtime_ns = ? WHERE id = ?", (size, mtime_ns, file_id))

    def documents_of(self, file_id: int) -> dict[str, tuple[int, str]]:
        rows = self.conn.execute("SELECT key, id, hash FROM documents WHERE file_id = ?", (file_id,))
        return {key: (doc_id, doc_hash) for key, doc_id, doc_hash in rows}

    def _chunk_ids(self, where: str, params: Sequence[object]) -> list[int]:
        sql = f"SELECT chunks.id FROM chunks JOIN documents ON documents.id = chunks.doc_id WHERE {where}"
        return [row[0] for row in self.conn.execute(sql, params)]

    def _forget_text(self, chunk_ids: list[int]) -> None:
        self.conn.executemany("DELETE FROM chunks_fts WHERE rowid = ?", [(i,) for i in chunk_ids])

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
            removed += self._chunk_ids("documents.id = ?", (doc_id,))
            self.conn.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
        self._forget_text(removed)
        return removed

    def put_document(
        self,
        file_id: int,
        key: str,
        *,
        title: str | None,
        hash: str,
        metadata: dict,
        chunks: Sequence[object],
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
            doc_id = int(cur.lastrowid)
        added: list[int] = []
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        for ordinal, (chunk, vector) in enumerate(zip(chunks, vectors)):
            cur = self.conn.execute(
                "INSERT INTO chunks (doc_id, ordinal, char_start, char_end, line_start, line_end, text) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (doc_id, ordinal, chunk.char_start, chunk.char_end, chunk.line_start, chunk.line_end, chunk.text),
            )
            chunk_id = int(cur.lastrowid)
            self.conn.execute("INSERT INTO vectors (chunk_id, vector) VALUES (?, ?)", (chunk_id, vector.tobytes()))
            self.conn.execute(
                "INSERT INTO chunks_fts (rowid, title, text) VALUES (?, ?, ?)", (chunk_id, title or "", chunk.text)
            )
            added.append(chunk_id)
        return removed, added

    # -- reads for search -------------------------------------------------------------

    def chunk_records(self, chunk_ids: Sequence[int]) -> dict[int, ChunkRecord]:
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        sql = (
            "SELECT chunks.id, documents.id, files.path, documents.key, documents.title, chunks.text, "
            "chunks.char_start, chunks.char_end, chunks.line_start, chunks.line_end, documents.metadata "
            "FROM chunks JOIN documents ON documents.id = chunks.doc_id JOIN files ON files.id = documents.file_id "
            f"WHERE chunks.id IN ({marks})"
        )
        out = {}
        for row in self.conn.execute(sql, [int(i) for i in chunk_ids]):
            out[row[0]] = ChunkRecord(*row[:10], metadata=json.loads(row[10]))
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

    def allow(self, name: str, where: str, params: Sequence[object]) -> np.ndarray:
        """Fill temporary table ``name`` with the ids of the chunks matching ``where``
        (over chunks, documents and files); returns them."""
        self.conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} (id INTEGER PRIMARY KEY)")
        self.conn.execute(f"DELETE FROM temp.{name}")
        self.conn.execute(
            f"INSERT INTO temp.{name} (id) SELECT chunks.id FROM chunks "
            "JOIN documents ON documents.id = chunks.doc_id JOIN files ON files.id = documents.file_id "
            f"WHERE {where}",
            list(params),
        )
        rows = self.conn.execute(f"SELECT id FROM temp.{name}").fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    # -- labels -------------------------------------------------------------------------

    def classifiers(self) -> dict[str, dict]:
        """The classifiers whose labels this index keeps: facet -> {"path", "id"}."""
        return json.loads(self.get_meta("classifiers") or "{}")

    def documents_to_label(self, facet: str, classifier_id: str) -> list[tuple[int, str]]:
        """(doc id, hash) of documents with no current label of ``facet``."""
        rows = self.conn.execute(
            "SELECT documents.id, documents.hash FROM documents LEFT JOIN labels "
            "ON labels.doc_id = documents.id AND labels.facet = ? "
            "WHERE labels.doc_id IS NULL OR labels.classifier != ? OR labels.doc_hash != documents.hash "
            "ORDER BY documents.id",
            (facet, classifier_id),
        )
        return [(int(r[0]), r[1]) for r in rows]

    def documents_by_key(self, keys: Iterable[str]) -> dict[str, list[tuple[int, str | None]]]:
        """record id -> [(doc id, title)] of the documents with that key (one per file holding it)."""
        out: dict[str, list[tuple[int, str | None]]] = {}
        wanted = [k for k in dict.fromkeys(keys) if k]
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            marks = ",".join("?" * len(part))
            for doc_id, key, title in self.conn.execute(
                f"SELECT id, key, title FROM documents WHERE key IN ({marks}) ORDER BY id", part
            ):
                out.setdefault(key, []).append((int(doc_id), title))
        return out

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

    def put_labels(self, facet: str, classifier_id: str, rows: Iterable[tuple[int, str, float, str]]) -> None:
        """Inside ``write()``: (doc id, label, score, doc hash) rows of one facet."""
        self.conn.executemany(
            "INSERT OR REPLACE INTO labels (doc_id, facet, label, score, classifier, doc_hash) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(int(d), facet, label, float(score), classifier_id, h) for d, label, score, h in rows],
        )

    def drop_facet(self, facet: str) -> int:
        """Inside ``write()``: forget a classifier's labels; returns how many."""
        removed = self.conn.execute("DELETE FROM labels WHERE facet = ?", (facet,)).rowcount
        known = self.classifiers()
        known.pop(facet, None)
        self._set_meta("classifiers", json.dumps(known, sort_keys=True))
        return removed

    def labels_of(self, doc_ids: Sequence[int]) -> dict[int, dict[str, dict]]:
        """doc id -> {facet: {"label", "score"}}."""
        ids = sorted({int(d) for d in doc_ids})
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        out: dict[int, dict[str, dict]] = {}
        rows = self.conn.execute(f"SELECT doc_id, facet, label, score FROM labels WHERE doc_id IN ({marks})", ids)
        for doc_id, facet, label, score in rows:
            out.setdefault(doc_id, {})[facet] = {"label": label, "score": round(float(score), 4)}
        return out

    def label_counts(self) -> dict[str, dict[str, int]]:
        """facet -> label -> documents, over the whole index."""
        out: dict[str, dict[str, int]] = {}
        rows = self.conn.execute(
            "SELECT facet, label, count(*) FROM labels GROUP BY facet, label ORDER BY facet, label"
        )
        for facet, label, n in rows:
            out.setdefault(facet, {})[label] = int(n)
        return out

    def counts(self) -> dict[str, int]:
        return {
            table: int(self.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            for table in ("files", "documents", "chunks", "vectors")
        }
