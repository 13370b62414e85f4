"""The vector file of each generation: ``vectors-<generation>.faiss`` beside index.db.

The file is a derived cache of the vectors in index.db, so it can always be rebuilt
without re-embedding. ``load_current`` (the file of the committed generation, rebuilt
from index.db in memory when it is missing or does not match; only a writer saves the
rebuilt file), ``sync`` (a writer's run: the previous file plus the run's added and
removed chunks, else a rebuild), ``rebuild``, ``verify`` (what ``searchctl check``
reports), ``remove_stale_files`` and ``describe`` (what ``searchctl info`` shows). The
FAISS index itself is ``searchcore.vectors.VectorIndex``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import ann
from .config import DEFAULT_FAISS_FACTORY
from .meta import IndexMeta
from .vectors import VectorIndex, tombstones_path, vectors_path

if TYPE_CHECKING:
    from .store import Store

__all__ = [
    "load_current",
    "sync",
    "rebuild",
    "verify",
    "remove_stale_files",
    "partial_files",
    "remove_partial_files",
    "describe",
    "vectors_path",
]


def _factory(meta: IndexMeta) -> str:
    return meta.faiss_factory or DEFAULT_FAISS_FACTORY


def _with_tombstones(index: VectorIndex, store: Store, count: int, recorded: Path | None = None) -> VectorIndex | None:
    """``index`` with its tombstones set, if it holds every one of the ``count`` stored
    vectors and only tombstones besides (ids are never reused, so an id index.db no
    longer has is a removed chunk); else None. ``recorded``: the tombstones file its
    writer left, trusted when the counts agree (a reader's open: the full comparison
    reads every id of index.db, seconds at a million chunks)."""
    if index.ntotal == count:
        index.dead = np.zeros(0, np.int64)
        return index
    if index.kind != "hnsw" or index.ntotal < count:
        return None
    if recorded is not None and recorded.exists():
        dead = np.fromfile(recorded, dtype=np.int64)
        if index.ntotal - len(dead) == count:
            index.dead = dead
            return index
    held = index.ids()
    live = np.asarray(store.chunk_ids(), dtype=np.int64)
    dead = np.setdiff1d(held, live, assume_unique=True)
    if len(live) != count or len(held) - len(dead) != count:
        return None
    index.dead = dead
    return index


def _load_matching(
    path: Path, meta: IndexMeta, store: Store, count: int, *, mapped: bool, thorough: bool = False
) -> VectorIndex | None:
    """The file at ``path`` if it is readable and holds the ``count`` stored vectors
    (``thorough``: its tombstones compared with index.db's ids, not taken as recorded)."""
    if not path.exists():
        return None
    try:
        loaded = VectorIndex.load(path, _factory(meta), mapped=mapped)
    except Exception:  # unreadable or truncated
        return None
    if loaded.dim != meta.dim:
        return None
    return _with_tombstones(loaded, store, count, None if thorough else tombstones_path(path))


def _from_store(store: Store, meta: IndexMeta, current: str | None = None, *, exact: bool = False) -> VectorIndex:
    """``exact``: a flat index whatever ``--ann`` says (a reader's stopgap: no graph to build)."""
    ids, matrix = store.all_vectors(meta.dim or 0)
    kind = "flat" if exact else ann.wanted_kind(meta.ann, len(ids), current)
    return VectorIndex.build(ids, matrix, ann.factory_for(kind, len(ids), meta.faiss_factory))


def load_current(
    store: Store, index_dir: Path, *, save: bool = False, counts: dict[str, int] | None = None
) -> tuple[VectorIndex | None, bool]:
    """The FAISS index for the store's committed generation, and whether it was rebuilt.

    Call it inside a read transaction on ``store`` (``store.snapshot()``), so that the
    generation, the vector count and the vectors read all belong to one committed state.
    A missing file, or one whose vectors disagree with index.db (a crash between the
    SQLite commit and the FAISS rename, a file copied from elsewhere), is rebuilt from
    the stored vectors: nothing is re-embedded. ``save``: write the rebuilt file (writers
    only; a reader never writes, and memory-maps the file it reads).
    Returns (None, False) for an index with no vectors yet.
    """
    meta = store.meta()
    if not meta.dim:
        return None, False
    path = vectors_path(index_dir, meta.generation)
    vectors = (counts or store.counts())["vectors"]  # ``counts``: the caller's, of the same transaction
    loaded = _load_matching(path, meta, store, vectors, mapped=not save)
    if loaded is not None:
        return loaded, False
    rebuilt = _from_store(store, meta, exact=not save)
    if save:
        rebuilt.save(path)
    return rebuilt, True


def rebuild(store: Store, index_dir: Path) -> None:
    """Writers: the committed generation's file from index.db, and no older one left."""
    with store.snapshot():
        meta = store.meta()
        generation = meta.generation
        if meta.dim:
            _from_store(store, meta).save(vectors_path(index_dir, generation))
    remove_stale_files(index_dir, generation)


def sync(store: Store, index_dir: Path, start: tuple[int, int], added: set[int], removed: set[int]) -> None:
    """Writers, after a run's last commit: the file of the committed generation, made from
    the file of the run's first generation (``start`` = its generation and vector count)
    with ``removed`` taken out (or kept as tombstones) and ``added`` put in, when that
    file is sound, the result holds exactly the stored vectors, it is still the kind
    ``--ann`` wants at this size and tombstones are not too many; else from index.db."""
    since, since_count = start
    with store.snapshot():
        meta = store.meta()
        generation = meta.generation
        count = store.counts()["vectors"]
        fresh = store.vectors_of(sorted(added - removed)) if meta.dim else {}
        index = None
        path = vectors_path(index_dir, since)
        if meta.dim and path.exists():
            try:
                index = VectorIndex.load(path, _factory(meta))
            except Exception:  # unreadable: rebuilt below
                index = None
        # (an HNSW file's count includes its tombstones: it is checked once the run is applied)
        whole = index is not None and (index.kind == "hnsw" or index.ntotal == since_count)
        if index is not None and whole and index.dim == meta.dim:
            index.remove(np.fromiter(removed, dtype=np.int64, count=len(removed)))
            if fresh:
                index.add(np.fromiter(fresh, dtype=np.int64, count=len(fresh)), np.stack(list(fresh.values())))
            sound = _with_tombstones(index, store, count)
            if (
                sound is not None
                and sound.kind == ann.wanted_kind(meta.ann, count, sound.kind)
                and len(sound.dead) <= ann.TOMBSTONE_SHARE * max(sound.ntotal, 1)
            ):
                sound.save(vectors_path(index_dir, generation))
                remove_stale_files(index_dir, generation)
                return
    rebuild(store, index_dir)


def verify(store: Store, index_dir: Path) -> str:
    """The committed generation's file: "ok", "missing", "mismatch", or "none" (no vectors yet)."""
    meta = store.meta()
    if not meta.dim:
        return "none"
    path = vectors_path(index_dir, meta.generation)
    if not path.exists():
        return "missing"
    found = _load_matching(path, meta, store, store.counts()["vectors"], mapped=True, thorough=True)
    return "ok" if found is not None else "mismatch"


def remove_stale_files(index_dir: Path, keep_generation: int) -> None:
    """Delete FAISS files (and tombstones) of older generations (newer ones belong to a
    concurrent writer) and the partial files of writers that were killed mid-save."""
    for path in [*Path(index_dir).glob("vectors-*.faiss"), *Path(index_dir).glob("vectors-*.dead")]:
        try:
            generation = int(path.stem.split("-", 1)[1])
        except ValueError:
            continue
        if generation < keep_generation:
            path.unlink(missing_ok=True)
    remove_partial_files(index_dir)


def partial_files(index_dir: Path) -> list[Path]:
    """``.vectors-<generation>.faiss.<pid>.tmp`` files whose writer is no longer running
    (killed mid-save); a file being written by a live process is not one."""
    found = []
    for path in Path(index_dir).glob(".vectors-*.tmp"):
        try:
            pid = int(path.name.rsplit(".", 2)[-2])
        except ValueError:
            pid = 0
        if _abandoned(path, pid):  # this process's own are removed by the save that made them
            found.append(path)
    return found


def remove_partial_files(index_dir: Path) -> int:
    """Delete the partial files of killed writers; how many were removed."""
    leftovers = partial_files(index_dir)
    for path in leftovers:
        path.unlink(missing_ok=True)
    return len(leftovers)


def _abandoned(path: Path, pid: int) -> bool:
    if os.name == "nt":  # no signal 0 there (it would be a Ctrl-C): a file untouched for an hour
        try:
            return time.time() - path.stat().st_mtime > 3600
        except OSError:
            return False
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # another user's process (EPERM): alive
        return False
    return False


def describe(index_dir: Path, meta: IndexMeta) -> str | None:
    """What the committed generation's file is ("ivf: IVF1264,SQfp16, 32 lists probed"),
    None when there is none yet."""
    path = vectors_path(index_dir, meta.generation)
    try:
        index = VectorIndex.load(path, _factory(meta), mapped=True)
    except Exception:  # missing or unreadable: check says which
        return None
    return index.describe()
