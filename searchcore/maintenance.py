"""Checking and repairing an index, and reclaiming space.

``check`` verifies everything that must hold between index.db and the FAISS file: SQLite's
own integrity check, one vector per chunk and one chunk per vector, one full-text row per
chunk, no file left half-indexed by an interrupted run, and a FAISS file that belongs to
the committed generation and holds exactly the stored vectors. ``repair=True`` rebuilds
what is derived (the FAISS file, the full-text table) and drops orphans; it never
re-embeds and never touches the documents themselves. ``compact`` reclaims the space of
deleted rows (VACUUM, FTS5 optimise), rewrites the FAISS file and removes older ones.
Both take the writer lock, so they never run beside an indexing run.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import IndexNotFoundError, IndexReadOnlyError
from .lock import WriterLock
from .store import DB_NAME, Store
from .vectors import VectorIndex, load_current, remove_stale_files, vectors_path

__all__ = ["CheckReport", "check", "compact", "index_bytes"]


@dataclass
class CheckReport:
    ok: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # states an interrupted run leaves; harmless
    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems


def index_bytes(index_dir: Path) -> int:
    return sum(p.stat().st_size for p in Path(index_dir).iterdir() if p.is_file())


def _count(store: Store, sql: str) -> int:
    return int(store.conn.execute(sql).fetchone()[0])


def _lock_for_check(index_dir: Path, repair: bool):
    """The writer lock; a read-only check of a folder this user cannot write goes without
    it (no writer of this user can be at work there)."""
    try:
        return WriterLock(index_dir).acquire()
    except IndexReadOnlyError:
        if repair:
            raise
        return contextlib.nullcontext()


def check(index_dir: Path, *, repair: bool = False) -> CheckReport:
    report = CheckReport()
    index_dir = Path(index_dir)
    if not (index_dir / DB_NAME).exists():
        raise IndexNotFoundError(index_dir)
    with _lock_for_check(index_dir, repair), Store.open(index_dir) as store:
        result = store.conn.execute("PRAGMA integrity_check").fetchall()
        if [r[0] for r in result] == ["ok"]:
            report.ok.append("SQLite integrity check passed")
        else:
            report.problems.append(f"SQLite integrity check failed: {'; '.join(r[0] for r in result[:3])}")
            return report  # nothing derived can be trusted to rebuild from a damaged database
        orphans = {
            "chunks without a vector": "SELECT count(*) FROM chunks LEFT JOIN vectors ON vectors.chunk_id = chunks.id "
            "WHERE vectors.chunk_id IS NULL",
            "vectors without a chunk": "SELECT count(*) FROM vectors LEFT JOIN chunks ON chunks.id = vectors.chunk_id "
            "WHERE chunks.id IS NULL",
            "chunks without a document": "SELECT count(*) FROM chunks "
            "LEFT JOIN documents ON documents.id = chunks.doc_id WHERE documents.id IS NULL",
        }
        for label, sql in orphans.items():
            n = _count(store, sql)
            if n:
                report.problems.append(f"{n} {label}")
                if repair:
                    with store.write():
                        if label == "vectors without a chunk":
                            store.conn.execute("DELETE FROM vectors WHERE chunk_id NOT IN (SELECT id FROM chunks)")
                        else:  # the document must be embedded again: forget it, and its file's hash
                            store.conn.execute(
                                "UPDATE files SET hash = '' WHERE id IN (SELECT file_id FROM documents WHERE id IN "
                                "(SELECT doc_id FROM chunks WHERE id NOT IN (SELECT chunk_id FROM vectors)))"
                            )
                            store.conn.execute(
                                "DELETE FROM documents WHERE id IN "
                                "(SELECT doc_id FROM chunks WHERE id NOT IN (SELECT chunk_id FROM vectors))"
                            )
                            store.conn.execute("DELETE FROM chunks WHERE doc_id NOT IN (SELECT id FROM documents)")
                        store.bump_generation()
                    report.repaired.append(f"removed {n} {label}")
        if not any("without" in p for p in report.problems):
            report.ok.append("every chunk has a vector and every vector a chunk")
        chunks = _count(store, "SELECT count(*) FROM chunks")
        text_rows = _count(store, "SELECT count(*) FROM chunks_fts")
        if text_rows == chunks:
            report.ok.append(f"full-text index holds all {chunks} chunks")
        else:
            report.problems.append(f"full-text index holds {text_rows} rows for {chunks} chunks")
            if repair:
                with store.write():
                    store.conn.execute("DELETE FROM chunks_fts")
                    store.conn.execute(
                        "INSERT INTO chunks_fts (rowid, title, text) SELECT chunks.id, coalesce(documents.title, ''), "
                        "chunks.text FROM chunks JOIN documents ON documents.id = chunks.doc_id"
                    )
                report.repaired.append("rebuilt the full-text index from the chunks")
        unfinished = _count(store, "SELECT count(*) FROM files WHERE hash = ''")
        if unfinished:
            # Their committed documents are whole and searchable; the next run finishes them.
            report.notes.append(
                f"{unfinished} files were left part-indexed by an interrupted run; the next `searchctl index` "
                "finishes them"
            )
        else:
            report.ok.append("no file is half-indexed")
        generation = store.generation
        dim = store.get_meta("dim")
        path = vectors_path(index_dir, generation)
        if dim is None:
            report.ok.append("no vectors yet")
        else:
            vectors = _count(store, "SELECT count(*) FROM vectors")
            loaded = None
            if path.exists():
                try:
                    loaded = VectorIndex.load(path)
                except Exception:
                    loaded = None
            if loaded is not None and loaded.ntotal == vectors and loaded.dim == int(dim):
                report.ok.append(f"{path.name} matches generation {generation} ({vectors} vectors)")
            elif not path.exists() and not repair:
                # A run stopped between its last commit and the FAISS write: the file is
                # derived, and the next open rebuilds it from index.db.
                report.notes.append(f"{path.name} is not written yet; it is rebuilt from index.db on the next open")
            else:
                why = "is missing" if not path.exists() else "does not match index.db"
                report.problems.append(f"{path.name} {why} (it is rebuilt from index.db on open)")
                if repair:
                    with store.snapshot():
                        load_current(store, index_dir)
                    report.repaired.append(f"rebuilt {path.name} from index.db")
        stale = [p.name for p in index_dir.glob("vectors-*.faiss") if p != path]
        if stale and repair:
            remove_stale_files(index_dir, generation)
            report.repaired.append(f"removed {len(stale)} FAISS files of older generations")
        leftovers = list(index_dir.glob(".vectors-*.tmp"))
        if leftovers:
            if repair:
                for leftover in leftovers:
                    leftover.unlink(missing_ok=True)
                report.repaired.append(f"removed {len(leftovers)} partial FAISS files of an interrupted run")
            else:
                report.notes.append(f"{len(leftovers)} partial FAISS files of an interrupted run (compact removes)")
    if repair and report.problems:
        # What is left after the repairs, checked afresh.
        again = check(index_dir, repair=False)
        again.repaired = report.repaired
        again.notes = [n for n in again.notes if n not in report.notes] + report.notes
        return again
    return report


def compact(index_dir: Path) -> tuple[int, int]:
    """(bytes before, bytes after)."""
    index_dir = Path(index_dir)
    before = index_bytes(index_dir)
    with WriterLock(index_dir), Store.open(index_dir) as store:
        store.conn.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('optimize')")
        store.conn.execute("VACUUM")
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        generation = store.generation
        if store.get_meta("dim"):
            with store.snapshot():
                ids, matrix = store.all_vectors(int(store.get_meta("dim")))
            VectorIndex.build(ids, matrix, store.get_meta("faiss_factory") or "IDMap,Flat").save(
                vectors_path(index_dir, generation)
            )
        remove_stale_files(index_dir, generation)
    for leftover in index_dir.glob(".vectors-*.tmp"):  # left by a writer killed mid-save
        leftover.unlink(missing_ok=True)
    return before, index_bytes(index_dir)
