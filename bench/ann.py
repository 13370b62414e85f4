"""Choosing the approximate index: FAISS HNSW and IVF variants against exact search.

    python bench/ann.py ../shared/eval-data --index /tmp/searchctl-scale/scale-1000000

Reads every vector of the index (one `bench/scale.py` made, or any other), embeds the
data sets' real queries (SciFact and Cranfield test) with the index's model, finds their
exact top-10 (a flat inner-product index), then for each variant: build seconds (both
cores), file size, and for each search setting recall@10 against exact and p50/p99 of a
one-query search on one core.
"""

from __future__ import annotations

import sys

sys.path = [p for p in sys.path if p not in ("", __file__.rsplit("/", 1)[0])]

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# (factory, efConstruction for HNSW, the search settings to try)
VARIANTS = [
    ("HNSW32,SQ8", 40, [128, 256, 512]),
    ("HNSW32,SQ8", 100, [128, 256, 512]),
    ("HNSW32", 40, [128, 256, 512]),
    ("IVF4096,Flat", None, [32, 64]),
    ("IVF4096,SQ8", None, [16, 32, 64]),
    ("IVF4096,SQfp16", None, [16, 32, 64]),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="the folder holding scifact/ and cranfield/ (BEIR layout)")
    parser.add_argument("--index", type=Path, required=True)
    opts = parser.parse_args()
    import faiss

    from searchcore.evaluate import load_beir
    from searchcore.models import make_embedder
    from searchcore.store import Store

    with Store.open(opts.index, reader=True) as store:
        meta = store.meta()
        _, vectors = store.all_vectors(int(meta.dim or 0))
    texts: list[str] = []
    for name in ("scifact", "cranfield"):
        if (opts.data / name / "queries.jsonl").exists():
            texts += list(load_beir(opts.data / name, "test")[0].values())
    queries = make_embedder(str(meta.model), str(meta.backend), None).embed(texts)
    cores = os.cpu_count() or 1
    faiss.omp_set_num_threads(cores)
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(queries, 10)
    del exact
    sample = vectors[np.random.default_rng(0).choice(len(vectors), min(len(vectors), 262_144), replace=False)]
    print(f"{len(vectors):,} vectors, {len(queries)} queries")
    for factory, construction, settings in VARIANTS:
        index = faiss.index_factory(vectors.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
        if construction:
            index.hnsw.efConstruction = construction
        started = time.perf_counter()
        if not index.is_trained:
            index.train(sample if factory.startswith("IVF") else vectors)
        index.add(vectors)
        build = time.perf_counter() - started
        with tempfile.NamedTemporaryFile(suffix=".faiss") as fh:
            faiss.write_index(index, fh.name)
            size = os.path.getsize(fh.name) >> 20
        faiss.omp_set_num_threads(1)
        for setting in settings:
            if factory.startswith("HNSW"):
                params = faiss.SearchParametersHNSW()
                params.efSearch = setting
            else:
                params = faiss.SearchParametersIVF()
                params.nprobe = setting
            times, found = [], []
            for query in queries:
                step = time.perf_counter()
                _, ids = index.search(query[None], 10, params=params)
                times.append((time.perf_counter() - step) * 1000)
                found.append(ids[0])
            recall = np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found)])
            label = f"{factory} efC{construction}" if construction else factory
            p50, p99 = np.percentile(times, 50), np.percentile(times, 99)
            print(f"{label:24} {setting:4}  build {build:5.0f} s  {size:5} MB  recall@10 {recall:.4f}  "
                  f"p50 {p50:.3f} ms  p99 {p99:.3f} ms", flush=True)  # fmt: skip
        faiss.omp_set_num_threads(cores)
        del index


if __name__ == "__main__":
    main()
