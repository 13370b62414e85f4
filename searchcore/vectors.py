"""The FAISS side of an index: a derived, rebuildable cache of the vectors in index.db.

The FAISS factory string is the whole index configuration, chosen by ``--ann`` and the
collection's size (``searchcore.ann``: exact "IDMap,Flat", "IVFn,SQfp16" or
"IDMap,HNSW32,SQfp16"; a change of kind is a rebuild, not a re-embed). Vectors are L2-normalised, so inner
product is cosine similarity. FAISS ids are chunk primary keys. Readers memory-map the
file (the first query needs no read of it); writers read it whole to add to it.

Files are written whole to a temporary name, fsynced, renamed over the target and the
folder fsynced, so a reader sees the old file or the new one, never half of one.

Only here is faiss imported: ``VectorIndex`` is one FAISS index of any kind
``searchcore.ann`` chooses, and the kinds differ in how they remove (HNSW keeps
tombstones, written beside the file), how they are searched (search parameters, small
allow-lists scored one by one) and how they are read (memory-mapped by readers). Which
file belongs to which generation, and how a run brings it up to date, is
``searchcore.vector_files``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import ann
from .config import DEFAULT_FAISS_FACTORY
from .int8_scan import Int8Scan
from .onnx_runtime import onnxruntime_available

__all__ = ["VectorIndex", "vectors_path", "tombstones_path", "fsync_dir"]


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
        self._shortlist: _Shortlist | None = None
        self._shortlist_made = False  # made (or found not to apply) since the last change

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
            self._positions, self._shortlist, self._shortlist_made = None, None, False

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
        self._positions, self._shortlist, self._shortlist_made = None, None, False
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
            shortlist = self._exact_shortlist() if len(queries) < _PER_ROW_QUERIES else None
            if shortlist is not None:
                return shortlist.search(queries, k, lambda query: self.index.search(query, k))
            return self.index.search(queries, k)
        return self.index.search(queries, k, params=params)

    def _exact_shortlist(self) -> _Shortlist | None:
        """The int8 shortlist of an exact float index (made on its first search), or None
        for any other kind, one too large to copy, or where ONNX Runtime is missing."""
        if not self._shortlist_made:
            self._shortlist_made = True
            faiss = _faiss()
            inner = faiss.downcast_index(self.index.index) if hasattr(self.index, "id_map") else None
            exact = self.kind == "flat" and type(inner) in (faiss.IndexFlatIP, faiss.IndexFlat)
            if inner is not None and exact and inner.metric_type == faiss.METRIC_INNER_PRODUCT:
                n, d = int(inner.ntotal), int(inner.d)
                # (ONNX Runtime is imported only for an index this large)
                if SHORTLIST_FROM <= n and 2 * n * d <= SHORTLIST_MAX_BYTES and onnxruntime_available():
                    matrix = faiss.rev_swig_ptr(inner.get_xb(), n * d).reshape(n, d)
                    self._shortlist = _Shortlist(matrix, self.ids())
        return self._shortlist

    def _exact(self, queries: np.ndarray, k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = queries @ self.vectors_of(allowed).T
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, top, axis=1).astype(np.float32), allowed[top]

    def describe(self) -> str:
        """What kind of file this is, in a few words ("ivf: IVF1264,SQfp16, 32 lists probed")."""
        if self.kind == "ivf":
            lists = _faiss().extract_index_ivf(self.index).nlist
            return f"ivf: IVF{lists},SQfp16, {min(ann.IVF_NPROBE, lists)} lists probed"
        if self.kind == "hnsw":
            return f"hnsw: IDMap,HNSW{ann.HNSW_LINKS},SQfp16, efSearch {ann.HNSW_EF_SEARCH}"
        return f"flat: {self.factory} (exact)"

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


# An exact index's vectors are first scanned as int8 (a quarter of the bytes, an integer
# kernel), then the best of that scan are scored exactly; see ``_Shortlist``. Below this
# many vectors (the two passes' own cost wins: 1,883 Cranfield chunks 0.10 ms against
# 0.11), or past this many bytes of int8 codes (held twice: ONNX Runtime packs its own
# copy), the scan stays FAISS's one pass.
SHORTLIST_FROM = 4096
SHORTLIST_MAX_BYTES = 256 << 20
# FAISS scores fewer queries than this one row at a time (its BLAS threshold): the path the
# shortlist's exact scores are bitwise equal to. More queries are left to FAISS as they were.
_PER_ROW_QUERIES = 20
# float32's own rounding, in an exact score's sum and in scaling an approximate one back,
# beside the int8 pass's bound.
_SUM_ERROR = 1e-4


class _Shortlist:
    """Exact top k of an exact index in two passes, the same scores as FAISS's one pass.

    The first pass scans int8 codes of the vectors (``searchcore.int8_scan``) for a
    shortlist of the best ``2k + 64``; the second scores those exactly with FAISS's own
    per-vector inner product (the one its exact search uses for a single query, so every
    score is bitwise what it gives). The shortlist is provably enough when its exact k-th
    score beats what any vector left out of it could score (the last shortlisted
    approximate score plus the int8 pass's error bound and the rounding error); otherwise
    that query is searched by the plain exact scan. SciFact's 10,174 chunks, one query in
    a query's flow: a first pass 0.39 ms in bfloat16 (FAISS's codes), 0.33 in int8; the
    whole search 0.54 -> 0.47 ms, on a 2-core Xeon with AMX (README, Benchmarks).
    """

    def __init__(self, matrix: np.ndarray, ids: np.ndarray):
        self.matrix, self.ids = matrix, ids
        self.scan = Int8Scan(matrix)

    def search(
        self, queries: np.ndarray, k: int, exact: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Like FAISS's search of ``queries``; ``exact`` is the plain scan of one query."""
        faiss = _faiss()
        n, d = self.matrix.shape
        k = min(k, n)
        want = min(n, 2 * k + 64)
        scores, found = np.empty((len(queries), k), np.float32), np.empty((len(queries), k), np.int64)
        finite = np.isfinite(queries).all(axis=1)
        if finite.any():
            approx, rows, errors = self.scan.top(queries[finite], want)
        shortlisted = iter(range(int(finite.sum())))  # the row of each finite query in the pass
        for i, query in enumerate(queries):
            if not finite[i]:  # a query of NaN: FAISS's own scan says what it finds (nothing)
                scores[i], found[i] = (part[0] for part in exact(query[None]))
                continue
            j = next(shortlisted)
            rows_i = np.ascontiguousarray(rows[j])
            exact_scores = np.empty(want, np.float32)
            faiss.fvec_inner_products_by_idx(
                faiss.swig_ptr(exact_scores),
                faiss.swig_ptr(query),
                faiss.swig_ptr(self.matrix),
                faiss.swig_ptr(rows_i),
                d,
                1,
                want,
            )
            # Equal scores are listed later vector first, as FAISS's heap gives them; which
            # of equal scores at the cut its heap keeps depends on the order it met them,
            # so such a cut is left to the plain scan.
            ranked = np.lexsort((-rows_i, -exact_scores))
            order = ranked[:k]
            cut_tied = want > k and exact_scores[ranked[k]] == exact_scores[order[-1]]
            if cut_tied or (want < n and not exact_scores[order[-1]] > approx[j, -1] + errors[j] + _SUM_ERROR):
                scores[i], found[i] = (part[0] for part in exact(query[None]))
                continue
            scores[i], found[i] = exact_scores[order], self.ids[rows_i[order]]
        return scores, found
