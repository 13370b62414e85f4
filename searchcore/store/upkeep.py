"""Upkeep of index.db: the integrity checks and repairs of ``searchctl check``, the space
reclaimed by ``compact``, and the table swap of ``reindex``.

Repairs drop only what can be rebuilt or embedded again (orphan rows, the full-text
table); nothing here touches a document that is whole.
"""

from __future__ import annotations

from .core import StoreBase

__all__ = ["Upkeep", "ORPHANS"]

# What check counts, by the name it reports.
ORPHANS = {
    "chunks without a vector": "SELECT count(*) FROM chunks LEFT JOIN vectors ON vectors.chunk_id = chunks.id "
    "WHERE vectors.chunk_id IS NULL",
    "vectors without a chunk": "SELECT count(*) FROM vectors LEFT JOIN chunks ON chunks.id = vectors.chunk_id "
    "WHERE chunks.id IS NULL",
    "chunks without a document": "SELECT count(*) FROM chunks "
    "LEFT JOIN documents ON documents.id = chunks.doc_id WHERE documents.id IS NULL",
}

_VECTORS_TABLE = "(chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE, vector BLOB NOT NULL)"


class Upkeep(StoreBase):
    def _count(self, sql: str) -> int:
        return int(self.conn.execute(sql).fetchone()[0])

    # -- check and repair ----------------------------------------------------------------

    def integrity_problems(self) -> list[str]:
        """SQLite's own integrity check: [] when the file is sound."""
        result = [r[0] for r in self.conn.execute("PRAGMA integrity_check").fetchall()]
        return [] if result == ["ok"] else result

    def orphans(self) -> dict[str, int]:
        return {label: self._count(sql) for label, sql in ORPHANS.items()}

    def drop_orphans(self, label: str) -> None:
        """Inside ``write()``: remove one kind of orphan. A chunk without a vector takes its
        document with it, and its file's hash, so the next run embeds it again."""
        if label == "vectors without a chunk":
            self.conn.execute("DELETE FROM vectors WHERE chunk_id NOT IN (SELECT id FROM chunks)")
            return
        self.conn.execute(
            "UPDATE files SET hash = '' WHERE id IN (SELECT file_id FROM documents WHERE id IN "
            "(SELECT doc_id FROM chunks WHERE id NOT IN (SELECT chunk_id FROM vectors)))"
        )
        self.conn.execute(
            "DELETE FROM documents WHERE id IN "
            "(SELECT doc_id FROM chunks WHERE id NOT IN (SELECT chunk_id FROM vectors))"
        )
        self.conn.execute("DELETE FROM chunks WHERE doc_id NOT IN (SELECT id FROM documents)")
        self.rebuild_text_index()  # the full-text rows of the chunks just removed go too

    def text_rows(self) -> int:
        return self._count("SELECT count(*) FROM chunks_fts_docsize")  # rows indexed, not rows of the content

    def rebuild_text_index(self) -> None:
        """Inside ``write()``: the full-text table again from the chunks and their titles."""
        self.conn.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('rebuild')")

    def unfinished_files(self) -> int:
        """Files an interrupted run left with some documents uncommitted."""
        return self._count("SELECT count(*) FROM files WHERE hash = ''")

    def reclaim_space(self) -> None:
        """Outside any transaction: FTS5 optimise, VACUUM, and the WAL folded back."""
        self.conn.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('optimize')")
        self.conn.execute("VACUUM")
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- reindex: vectors_next fills, then one transaction swaps ----------------------------

    def chunks_without_next_vector(self) -> int:
        return self._count("SELECT count(*) FROM chunks WHERE id NOT IN (SELECT chunk_id FROM vectors_next)")

    def next_to_embed(self, limit: int) -> list[tuple[int, int, str | None, str]]:
        """(chunk id, doc id, title, text) of chunks with no new vector yet, in id order."""
        return self.conn.execute(
            "SELECT chunks.id, chunks.doc_id, documents.title, chunks.text FROM chunks "
            "JOIN documents ON documents.id = chunks.doc_id "
            "WHERE chunks.id NOT IN (SELECT chunk_id FROM vectors_next) ORDER BY chunks.id LIMIT ?",
            (int(limit),),
        ).fetchall()

    def put_next_vectors(self, rows: list[tuple[int, bytes]]) -> None:
        """Inside ``write()``: (chunk id, float32 bytes) of the next model."""
        self.conn.executemany("INSERT OR REPLACE INTO vectors_next (chunk_id, vector) VALUES (?, ?)", rows)

    def start_next(self, target: dict, *, reuse_previous: bool) -> int:
        """Inside ``write()``: begin filling vectors_next for ``target`` unless a run for it
        was already under way (it then resumes); returns the vectors reused from
        vectors_previous (a rollback re-uses what the last reindex replaced)."""
        recorded = self.meta().reindex_target
        if recorded is not None and dict(recorded) == target:
            return 0
        self.conn.execute("DELETE FROM vectors_next")
        self.update_meta(reindex_target=target)
        if not reuse_previous:
            return 0
        return self.conn.execute(
            "INSERT INTO vectors_next (chunk_id, vector) SELECT chunk_id, vector FROM vectors_previous "
            "WHERE chunk_id IN (SELECT id FROM chunks)"
        ).rowcount

    def swap_vectors(self) -> int:
        """Inside ``write()``: vectors_next becomes the vectors, the vectors become the
        previous ones; returns how many vectors are now current."""
        self.conn.execute("DROP TABLE vectors_previous")
        self.conn.execute("ALTER TABLE vectors RENAME TO vectors_previous")
        self.conn.execute("ALTER TABLE vectors_next RENAME TO vectors")
        self.conn.execute(f"CREATE TABLE vectors_next {_VECTORS_TABLE}")
        self.update_meta(reindex_target=None)
        return self._count("SELECT count(*) FROM vectors")
