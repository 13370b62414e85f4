"""Approximate nearest neighbours by size: which FAISS index holds an index's vectors,
how it is searched, and how close to exact search it comes.

``--ann`` (recorded in index.db's meta as ``ann``) chooses:

- ``flat``: exact search (the meta's ``faiss_factory``, "IDMap,Flat" by default); one
  scan of every vector per query, so its time grows with the collection.
- ``hnsw``: FAISS HNSW (32 links per node, vectors stored as 8-bit scalar codes: a
  quarter of the memory and disk of floats, for a recall@10 0.996 against 1.000 on 100k
  chunks, measured), searched with ``efSearch`` = max(HNSW_EF_SEARCH, k). HNSW cannot
  remove a node: a deleted chunk stays in the file as a tombstone (its id is no longer in
  index.db) that every search leaves
  out, until a rebuild folds them away (a run whose tombstones pass TOMBSTONE_SHARE of the
  file, or ``searchctl compact``).
- ``ivf``: FAISS IVF with flat lists (4 * sqrt(n) lists, trained on a sample), searched
  with ``nprobe`` = IVF_NPROBE lists; removes in place.
- ``auto`` (the default): exact below HNSW_FROM vectors, HNSW from there on (and back to
  exact only below half of it, so an index near the line does not flip run after run).

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
    "HNSW_FROM",
    "wanted_kind",
    "factory_for",
    "removes",
]

ANN_CHOICES = ("auto", "flat", "hnsw", "ivf")
DEFAULT_ANN = "auto"
HNSW_FROM = 50_000
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
    if current == "hnsw":
        return "hnsw" if count >= HNSW_FROM // 2 else "flat"
    return "hnsw" if count >= HNSW_FROM else "flat"


def factory_for(kind: str, count: int, flat_factory: str | None) -> str:
    if kind == "hnsw":
        return f"IDMap,HNSW{HNSW_LINKS},SQ8"
    if kind == "ivf":
        lists = max(1, min(65536, int(4 * math.sqrt(max(count, 1)))))
        return f"IVF{lists},Flat"
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
