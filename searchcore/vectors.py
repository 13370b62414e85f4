"""The FAISS side of an index: a derived, rebuildable cache of the vectors in index.db.

The FAISS factory string is the whole index configuration ("IDMap,Flat": exact search;
"IDMap,HNSW32" or "IVF...,PQ..." later are a rebuild, not a re-embed). Vectors are
L2-normalised, so inner product is cosine similarity. FAISS ids are chunk primary keys.

Files are written whole to a temporary name, fsynced, renamed over the target and the
folder fsynced, so a reader sees the old file or the new one, never half of one.

The file's whole life is here, and only here is faiss imported: ``load_current`` (the
file of the committed generation, rebuilt from index.db in memory when it is missing or
does not match; only a writer saves the rebuilt file), ``sync`` (a writer's run: the
previous file plus the run's added and removed chunks, else a rebuild), ``rebuild``,
``verify`` (what ``searchctl check`` reports) and ``remove_stale_files``.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .config import DEFAULT_FAISS_FACTORY

if TYPE_CHECKING:
    from .store import Store

__all__ = [
    "VectorIndex",
    "vectors_path",
    "fsync_dir",
    "load_current",
    "sync",
    "rebuild",
    "verify",
    "remove_stale_files",
]


@functools.cache
def _faiss():
    """faiss, with its OpenMP pool cut to one thread.

    FAISS and torch each bring an OpenMP runtime whose idle threads spin for a while
    after every parallel region; alternating a FAISS search with a torch forward pass
    then leaves the two pools fighting over the cores, which measured here doubled the
    time of a single query (21 ms -> 12 ms on 2 cores once FAISS runs on one thread).
    A one-query search over an exact index is a single matrix-vector product: one
    thread does it in well under a millisecond for 10k vectors.
    """
    import faiss

    faiss.omp_set_num_threads(1)
    return faiss


def vectors_path(index_dir: Path, generation: int) -> Path:
    return Path(index_dir) / f"vectors-{generation}.faiss"


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class VectorIndex:
    def __init__(self, index, factory: str = DEFAULT_FAISS_FACTORY):
        self.index = index
        self.factory = factory

    @classmethod
    def empty(cls, dim: int, factory: str = DEFAULT_FAISS_FACTORY) -> VectorIndex:
        faiss = _faiss()

        return cls(faiss.index_factory(int(dim), factory, faiss.METRIC_INNER_PRODUCT), factory)

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, factory: str = DEFAULT_FAISS_FACTORY) -> VectorIndex:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        made = cls.empty(vectors.shape[1], factory)
        if not made.index.is_trained and len(vectors):
            made.index.train(vectors)
        made.add(ids, vectors)
        return made

    @property
    def dim(self) -> int:
        return int(self.index.d)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> np.ndarray:
        """Every id in the index (an IDMap index; empty for any other kind)."""
        id_map = getattr(self.index, "id_map", None)
        return _faiss().vector_to_array(id_map) if id_map is not None else np.zeros(0, np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(
                np.ascontiguousarray(vectors, dtype=np.float32), np.ascontiguousarray(ids, dtype=np.int64)
            )

    def remove(self, ids: np.ndarray) -> int:
        faiss = _faiss()

        if not len(ids):
            return 0
        return int(self.index.remove_ids(faiss.IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64))))

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (n, k'); k' = min(k, ntotal). Missing slots have id -1.

        ``allowed``: only these ids may be returned (an exact filter inside the search,
        so k allowed hits come back whenever k allowed vectors exist)."""
        faiss = _faiss()
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = min(int(k), self.ntotal if allowed is None else len(allowed))
        if k <= 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        faiss.omp_set_num_threads(1)  # per calling thread in OpenMP; see _faiss()
        if allowed is None:
            return self.index.search(queries, k)
        selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
        return self.index.search(queries, k, params=faiss.SearchParameters(sel=selector))

    def save(self, path: Path) -> None:
        faiss = _faiss()

        path = Path(path)
        data = faiss.serialize_index(self.index)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(memoryview(data))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(path.parent)

    @classmethod
    def load(cls, path: Path, factory: str = DEFAULT_FAISS_FACTORY) -> VectorIndex:
        faiss = _faiss()

        data = np.fromfile(path, dtype=np.uint8)
        return cls(faiss.deserialize_index(data), factory)


def _factory(meta: dict[str, str]) -> str:
    return meta.get("faiss_factory") or DEFAULT_FAISS_FACTORY


def _load_matching(path: Path, factory: str, count: int, dim: int) -> VectorIndex | None:
    """The file at ``path`` if it is readable and holds ``count`` vectors of ``dim``."""
    if not path.exists():
        return None
    try:
        loaded = VectorIndex.load(path, factory)
    except Exception:  # unreadable or truncated
        return None
    return loaded if loaded.ntotal == count and loaded.dim == dim else None


def _from_store(store: Store, dim: int, factory: str) -> VectorIndex:
    ids, matrix = store.all_vectors(dim)
    return VectorIndex.build(ids, matrix, factory)


def load_current(store: Store, index_dir: Path, *, save: bool = False) -> tuple[VectorIndex | None, bool]:
    """The FAISS index for the store's committed generation, and whether it was rebuilt.

    Call it inside a read transaction on ``store`` (``store.snapshot()``), so that the
    generation, the vector count and the vectors read all belong to one committed state.
    A missing file, or one whose size disagrees with index.db (a crash between the
    SQLite commit and the FAISS rename, a file copied from elsewhere), is rebuilt from
    the stored vectors: nothing is re-embedded. ``save``: write the rebuilt file (writers
    only; a reader never writes). Returns (None, False) for an index with no vectors yet.
    """
    meta = store.meta()
    if not meta.get("dim"):
        return None, False
    dim, factory = int(meta["dim"]), _factory(meta)
    path = vectors_path(index_dir, int(meta.get("generation", 0)))
    loaded = _load_matching(path, factory, store.counts()["vectors"], dim)
    if loaded is not None:
        return loaded, False
    rebuilt = _from_store(store, dim, factory)
    if save:
        rebuilt.save(path)
    return rebuilt, True


def rebuild(store: Store, index_dir: Path) -> None:
    """Writers: the committed generation's file from index.db, and no older one left."""
    with store.snapshot():
        meta = store.meta()
        generation = int(meta.get("generation", 0))
        if meta.get("dim"):
            _from_store(store, int(meta["dim"]), _factory(meta)).save(vectors_path(index_dir, generation))
    remove_stale_files(index_dir, generation)


def sync(store: Store, index_dir: Path, start: tuple[int, int], added: set[int], removed: set[int]) -> None:
    """Writers, after a run's last commit: the file of the committed generation, made from
    the file of the run's first generation (``start`` = its generation and vector count)
    with ``removed`` taken out and ``added`` put in, when that file is sound and the
    result holds exactly the stored vectors; else from index.db."""
    since, since_count = start
    with store.snapshot():
        meta = store.meta()
        generation = int(meta.get("generation", 0))
        count = store.counts()["vectors"]
        fresh = store.vectors_of(sorted(added - removed)) if meta.get("dim") else {}
    if meta.get("dim"):
        index = _load_matching(vectors_path(index_dir, since), _factory(meta), since_count, int(meta["dim"]))
        if index is not None:
            index.remove(np.fromiter(removed, dtype=np.int64, count=len(removed)))
            if fresh:
                index.add(np.fromiter(fresh, dtype=np.int64, count=len(fresh)), np.stack(list(fresh.values())))
            if index.ntotal == count:
                index.save(vectors_path(index_dir, generation))
                remove_stale_files(index_dir, generation)
                return
    rebuild(store, index_dir)


def verify(store: Store, index_dir: Path) -> str:
    """The committed generation's file: "ok", "missing", "mismatch", or "none" (no vectors yet)."""
    meta = store.meta()
    if not meta.get("dim"):
        return "none"
    path = vectors_path(index_dir, int(meta.get("generation", 0)))
    if not path.exists():
        return "missing"
    return "ok" if _load_matching(path, _factory(meta), store.counts()["vectors"], int(meta["dim"])) else "mismatch"


def remove_stale_files(index_dir: Path, keep_generation: int) -> None:
    """Delete FAISS files of older generations (newer ones belong to a concurrent writer)."""
    for path in Path(index_dir).glob("vectors-*.faiss"):
        try:
            generation = int(path.stem.split("-", 1)[1])
        except ValueError:
            continue
        if generation < keep_generation:
            path.unlink(missing_ok=True)
