"""Approximate nearest neighbours by size: which FAISS index holds an index's vectors,
how it is searched, and how close to exact search it comes.

``--ann`` (recorded in index.db's meta as ``ann``) chooses:

- ``flat``: exact search (the meta's ``faiss_factory``, "IDMap,Flat" by default); one
  scan of every vector per query, so its time grows with the collection (5-6 ms at 100k
  chunks, 57 ms at a million, one core).
- ``ivf`` (what ``auto`` picks from APPROXIMATE_FROM chunks on): FAISS IVF, 4 * sqrt(n)
  lists (at most n / 39) trained on at most 64 vectors per list, vectors stored as 16-bit floats (half the
  disk of float32, scores within about 1e-3 of exact), searched with ``nprobe`` =
  IVF_NPROBE lists; removes in place. At a million chunks: recall@10 0.990 against exact
  on the data sets' real queries, p50 0.48 ms on one core.
- ``hnsw``: FAISS HNSW (32 links per node, efConstruction 40, 16-bit floats), searched
  with ``efSearch`` = max(HNSW_EF_SEARCH, k). On the same million chunks (copies of real
  chunks clustered around their parents) its recall@10 was 0.69 at efSearch 128 and 0.87
  at 512 (0.92 with efConstruction 100): it is there to choose, not the default. HNSW
  cannot remove a node: a deleted chunk stays in the file as a tombstone (its id is no
  longer in index.db) that every search leaves out, until a rebuild folds them away (a
  run whose tombstones pass TOMBSTONE_SHARE of the file, or ``searchctl compact``).
- ``auto`` (the default): exact below APPROXIMATE_FROM vectors, IVF from there on (and
  back to exact only below half of it, so an index near the line does not flip run after
  run).

A filtered search whose allow-list is small (at most EXACT_FILTER_MAX ids) is exact on
every kind: the allowed vectors are read back from the file and scored one by one, so a
selective filter still finds its k best (a graph walk that must skip most nodes would
not). The figures behind these constants are in the README ("A million chunks") and come
from ``bench/scale.py``. This module holds the policy; ``searchcore.vectors`` (the one
module that imports faiss) applies it.
"""

from __future__ import annotations

import math

import numpy as np

from .config import DEFAULT_FAISS_FACTORY

__all__ = [
    "ANN_CHOICES",
    "DEFAULT_ANN",
    "APPROXIMATE_FROM",
    "wanted_kind",
    "factory_for",
    "removes",
]

ANN_CHOICES = ("auto", "flat", "hnsw", "ivf")
DEFAULT_ANN = "auto"
APPROXIMATE_FROM = 50_000
HNSW_LINKS = 32
HNSW_EF_SEARCH = 128
IVF_NPROBE = 32
EXACT_FILTER_MAX = 20_000
TOMBSTONE_SHARE = 0.2


def wanted_kind(ann: str | None, count: int, current: str | None) -> str:
    """The kind an index of ``count`` vectors should be, given ``--ann`` and the kind of
    its current file (for auto's hysteresis)."""
    ann = ann or DEFAULT_ANN
    if ann != "auto":
        return ann
    if current == "ivf":
        return "ivf" if count >= APPROXIMATE_FROM // 2 else "flat"
    return "ivf" if count >= APPROXIMATE_FROM else "flat"


def factory_for(kind: str, count: int, flat_factory: str | None) -> str:
    if kind == "hnsw":
        return f"IDMap,HNSW{HNSW_LINKS},SQfp16"
    if kind == "ivf":
        # 4 * sqrt(n) lists, but at least 39 vectors to train each (FAISS' own minimum)
        lists = max(1, min(65536, int(4 * math.sqrt(max(count, 1))), count // 39))
        return f"IVF{lists},SQfp16"
    return flat_factory or DEFAULT_FAISS_FACTORY


def removes(kind: str) -> bool:
    """Whether the kind removes vectors in place (HNSW keeps tombstones instead)."""
    return kind != "hnsw"


def training_sample(vectors: np.ndarray, lists: int, seed: int = 0) -> np.ndarray:
    """At most 64 vectors per IVF list, drawn at random (k-means needs no more)."""
    limit = 64 * lists
    if len(vectors) <= limit:
        return vectors
    rows = np.random.default_rng(seed).choice(len(vectors), limit, replace=False)
    return vectors[np.sort(rows)]
