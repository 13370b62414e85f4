"""The FAISS side of an index: a derived, rebuildable cache of the vectors in index.db.

The FAISS factory string is the whole index configuration, chosen by ``--ann`` and the
collection's size (``searchcore.ann``: exact "IDMap,Flat", "IVFn,SQfp16" or
"IDMap,HNSW32,SQfp16"; a change of kind is a rebuild, not a re-embed). Vectors are L2-normalised, so inner
product is cosine similarity. FAISS ids are chunk primary keys. Readers memory-map the
file (the first query needs no read of it); writers read it whole to add to it.

Files are written whole to a temporary name, fsynced, renamed over the target and the
folder fsynced, so a reader sees the old file or the new one, never half of one.

The file's whole life is here, and only here is faiss imported: ``load_current`` (the
file of the committed generation, rebuilt from index.db in memory when it is missing or
does not match; only a writer saves the rebuilt file), ``sync`` (a writer's run: the
previous file plus the run's added and removed chunks, else a rebuild), ``rebuild``,
``verify`` (what ``searchctl check`` reports) and ``remove_stale_files``.

Why this module is long: the kinds of file ``searchcore.ann`` chooses differ in how they
remove (HNSW keeps tombstones, written beside the file), how they are searched (search
parameters, small allow-lists scored one by one) and how they are read (memory-mapped
by readers); keeping all of it with the one faiss import keeps the rule that nothing
else touches FAISS.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import ann
from .config import DEFAULT_FAISS_FACTORY

if TYPE_CHECKING:
    from .store import Store

__all__ = [
    "VectorIndex",
    "vectors_path",
    "tombstones_path",
    "fsync_dir",
    "load_current",
    "sync",
    "rebuild",
    "verify",
    "remove_stale_files",
    "describe",
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


def tombstones_path(path: Path) -> Path:
    """The ids an HNSW file still holds for removed chunks, as raw int64, beside it."""
    return Path(path).with_suffix(".dead")


def _write_whole(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _kind_of(index) -> str:
    """ "hnsw", "ivf" or "flat" (anything else FAISS builds is searched as it comes)."""
    faiss = _faiss()
    inner = faiss.downcast_index(index.index) if hasattr(index, "id_map") else index
    return "hnsw" if isinstance(inner, faiss.IndexHNSW) else "ivf" if isinstance(inner, faiss.IndexIVF) else "flat"


def _search_params(kind: str, k: int, selector):
    """FAISS parameters of one search of ``k`` on ``kind`` (None when the defaults do)."""
    faiss = _faiss()
    if kind == "hnsw":
        params = faiss.SearchParametersHNSW()
        params.efSearch = max(ann.HNSW_EF_SEARCH, int(k))
    elif kind == "ivf":
        params = faiss.SearchParametersIVF()
        params.nprobe = ann.IVF_NPROBE
    elif selector is None:
        return None
    else:
        params = faiss.SearchParameters()
    if selector is not None:
        params.sel = selector
    return params


class VectorIndex:
    """One FAISS index and its tombstones: ids it still holds whose chunks are gone
    (an HNSW graph cannot remove a node), which every search leaves out."""

    def __init__(self, index, factory: str = DEFAULT_FAISS_FACTORY):
        self.index = index
        self.factory = factory
        self.kind = _kind_of(index)
        self.dead = np.zeros(0, np.int64)
        self._positions: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def empty(cls, dim: int, factory: str = DEFAULT_FAISS_FACTORY) -> VectorIndex:
        faiss = _faiss()

        return cls(faiss.index_factory(int(dim), factory, faiss.METRIC_INNER_PRODUCT), factory)

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, factory: str = DEFAULT_FAISS_FACTORY) -> VectorIndex:
        faiss = _faiss()
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        made = cls.empty(vectors.shape[1], factory)
        faiss.omp_set_num_threads(os.cpu_count() or 1)  # a writer builds on every core
        try:
            if made.kind == "ivf":
                inner = faiss.downcast_index(made.index)
                inner.set_direct_map_type(faiss.DirectMap.Hashtable)  # vectors by id, removal in place
                if len(vectors):
                    made.index.train(ann.training_sample(vectors, inner.nlist))
            elif not made.index.is_trained and len(vectors):
                made.index.train(vectors)
            made.add(ids, vectors)
        finally:
            faiss.omp_set_num_threads(1)
        return made

    @property
    def dim(self) -> int:
        return int(self.index.d)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @property
    def live(self) -> int:
        """Vectors a search can return (tombstones left out)."""
        return self.ntotal - len(self.dead)

    def ids(self) -> np.ndarray:
        """Every id in the index, tombstones included (empty for a kind that keeps none)."""
        faiss = _faiss()
        id_map = getattr(self.index, "id_map", None)
        if id_map is not None:
            return faiss.vector_to_array(id_map)
        if self.kind == "ivf":
            inner = faiss.extract_index_ivf(self.index)
            lists = inner.invlists
            parts = [
                faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                for i in range(inner.nlist)
                if lists.list_size(i)
            ]
            return np.concatenate(parts) if parts else np.zeros(0, np.int64)
        return np.zeros(0, np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(
                np.ascontiguousarray(vectors, dtype=np.float32), np.ascontiguousarray(ids, dtype=np.int64)
            )
            self._positions = None

    def remove(self, ids: np.ndarray) -> int:
        """Take ``ids`` out; a kind that cannot (HNSW) keeps them as tombstones."""
        faiss = _faiss()

        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if not len(ids):
            return 0
        if not ann.removes(self.kind):
            held = np.intersect1d(ids, self.ids())
            self.dead = np.union1d(self.dead, held)
            return len(held)
        if self.kind == "ivf":  # its id hashtable removes only by an explicit array
            return int(self.index.remove_ids(faiss.IDSelectorArray(len(ids), faiss.swig_ptr(ids))))
        self._positions = None
        return int(self.index.remove_ids(faiss.IDSelectorBatch(ids)))

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of ``ids`` (each must be in the index), read from the file."""
        faiss = _faiss()
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if self.kind == "ivf":
            return self.index.reconstruct_batch(ids)
        if self._positions is None:
            held = self.ids()
            order = np.argsort(held, kind="stable")
            self._positions = (held[order], order)
        held_sorted, order = self._positions
        positions = order[np.searchsorted(held_sorted, ids)]
        return faiss.downcast_index(self.index.index).reconstruct_batch(positions.astype(np.int64))

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (n, k'); k' = min(k, vectors searched). Missing slots have id -1.

        ``allowed``: only these ids may be returned (an exact filter inside the search,
        so k allowed hits come back whenever k allowed vectors exist; a small allow-list
        is scored exactly on every kind)."""
        faiss = _faiss()
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = min(int(k), self.live if allowed is None else len(allowed))
        if k <= 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        faiss.omp_set_num_threads(1)  # per calling thread in OpenMP; see _faiss()
        if allowed is not None and self.kind != "flat" and len(allowed) <= ann.EXACT_FILTER_MAX:
            return self._exact(queries, k, np.ascontiguousarray(allowed, dtype=np.int64))
        selector = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
        elif len(self.dead):
            tombstones = faiss.IDSelectorBatch(self.dead)
            selector = faiss.IDSelectorNot(tombstones)
        params = _search_params(self.kind, k, selector)
        if params is None:
            return self.index.search(queries, k)
        return self.index.search(queries, k, params=params)

    def _exact(self, queries: np.ndarray, k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = queries @ self.vectors_of(allowed).T
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, top, axis=1).astype(np.float32), allowed[top]

    def save(self, path: Path) -> None:
        """Write the file, and its tombstones beside it first (``tombstones_path``), so a
        reader that finds the file finds them; each written whole, fsynced and renamed."""
        faiss = _faiss()

        path = Path(path)
        dead = tombstones_path(path)
        if len(self.dead):
            _write_whole(dead, lambda tmp: np.ascontiguousarray(self.dead, dtype=np.int64).tofile(tmp))
        else:
            dead.unlink(missing_ok=True)
        _write_whole(path, lambda tmp: faiss.write_index(self.index, str(tmp)))

    @classmethod
    def load(cls, path: Path, factory: str = DEFAULT_FAISS_FACTORY, *, mapped: bool = False) -> VectorIndex:
        """``mapped``: memory-map the stored vectors instead of reading them (readers: the
        first query comes without reading the file; nothing may be added to it then)."""
        faiss = _faiss()

        flags = 0
        if mapped:  # IVF files map their lists, the others their stored vectors
            with open(path, "rb") as fh:
                ivf = fh.read(2) == b"Iw"
            flags = (faiss.IO_FLAG_MMAP if ivf else faiss.IO_FLAG_MMAP_IFC) | faiss.IO_FLAG_READ_ONLY
        index = faiss.read_index(str(path), flags)
        if flags & faiss.IO_FLAG_MMAP == faiss.IO_FLAG_MMAP:
            # mapped lists prefetch on 32 threads by default: 2 ms a query instead of 0.4 (1M chunks)
            faiss.downcast_InvertedLists(faiss.extract_index_ivf(index).invlists).prefetch_nthread = 0
        return cls(index, factory)


def _factory(meta: dict[str, str]) -> str:
    return meta.get("faiss_factory") or DEFAULT_FAISS_FACTORY


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
    path: Path, meta: dict[str, str], store: Store, count: int, *, mapped: bool, thorough: bool = False
) -> VectorIndex | None:
    """The file at ``path`` if it is readable and holds the ``count`` stored vectors
    (``thorough``: its tombstones compared with index.db's ids, not taken as recorded)."""
    if not path.exists():
        return None
    try:
        loaded = VectorIndex.load(path, _factory(meta), mapped=mapped)
    except Exception:  # unreadable or truncated
        return None
    if loaded.dim != int(meta["dim"]):
        return None
    return _with_tombstones(loaded, store, count, None if thorough else tombstones_path(path))


def _from_store(store: Store, meta: dict[str, str], current: str | None = None, *, exact: bool = False) -> VectorIndex:
    """``exact``: a flat index whatever ``--ann`` says (a reader's stopgap: no graph to build)."""
    ids, matrix = store.all_vectors(int(meta["dim"]))
    kind = "flat" if exact else ann.wanted_kind(meta.get("ann"), len(ids), current)
    return VectorIndex.build(ids, matrix, ann.factory_for(kind, len(ids), meta.get("faiss_factory")))


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
    if not meta.get("dim"):
        return None, False
    path = vectors_path(index_dir, int(meta.get("generation", 0)))
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
        generation = int(meta.get("generation", 0))
        if meta.get("dim"):
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
        generation = int(meta.get("generation", 0))
        count = store.counts()["vectors"]
        fresh = store.vectors_of(sorted(added - removed)) if meta.get("dim") else {}
        index = None
        path = vectors_path(index_dir, since)
        if meta.get("dim") and path.exists():
            try:
                index = VectorIndex.load(path, _factory(meta))
            except Exception:  # unreadable: rebuilt below
                index = None
        # (an HNSW file's count includes its tombstones: it is checked once the run is applied)
        whole = index is not None and (index.kind == "hnsw" or index.ntotal == since_count)
        if index is not None and whole and index.dim == int(meta["dim"]):
            index.remove(np.fromiter(removed, dtype=np.int64, count=len(removed)))
            if fresh:
                index.add(np.fromiter(fresh, dtype=np.int64, count=len(fresh)), np.stack(list(fresh.values())))
            sound = _with_tombstones(index, store, count)
            if (
                sound is not None
                and sound.kind == ann.wanted_kind(meta.get("ann"), count, sound.kind)
                and len(sound.dead) <= ann.TOMBSTONE_SHARE * max(sound.ntotal, 1)
            ):
                sound.save(vectors_path(index_dir, generation))
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
    found = _load_matching(path, meta, store, store.counts()["vectors"], mapped=True, thorough=True)
    return "ok" if found is not None else "mismatch"


def remove_stale_files(index_dir: Path, keep_generation: int) -> None:
    """Delete FAISS files (and tombstones) of older generations (newer ones belong to a
    concurrent writer)."""
    for path in [*Path(index_dir).glob("vectors-*.faiss"), *Path(index_dir).glob("vectors-*.dead")]:
        try:
            generation = int(path.stem.split("-", 1)[1])
        except ValueError:
            continue
        if generation < keep_generation:
            path.unlink(missing_ok=True)


def describe(index_dir: Path, meta: dict[str, str]) -> str | None:
    """What the committed generation's file is ("ivf: IVF1264,SQfp16, 32 lists probed"),
    None when there is none yet."""
    path = vectors_path(index_dir, int(meta.get("generation", 0)))
    try:
        index = VectorIndex.load(path, _factory(meta), mapped=True)
    except Exception:  # missing or unreadable: check says which
        return None
    if index.kind == "ivf":
        lists = _faiss().extract_index_ivf(index.index).nlist
        return f"ivf: IVF{lists},SQfp16, {min(ann.IVF_NPROBE, lists)} lists probed"
    if index.kind == "hnsw":
        return f"hnsw: IDMap,HNSW{ann.HNSW_LINKS},SQfp16, efSearch {ann.HNSW_EF_SEARCH}"
    return f"flat: {_factory(meta)} (exact)"
