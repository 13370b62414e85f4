"""Sweep the hybrid-fusion settings on a BEIR data set's split, to choose the defaults.

    python bench/fusion.py ../shared/eval-data/scifact --split train --index DIR

Runs the dense and BM25 retrievers once per query (best chunk per document, depth 100,
through the Searcher's own retrievers), then fuses their lists offline with each
setting: RRF with several k and dense:bm25 weights, and weighted fusion of min-max
normalised scores with several weights. Prints nDCG@10 and Recall@100 per setting,
scored by pytrec_eval. The index must already hold the corpus.
"""

from __future__ import annotations

import sys

sys.path = [p for p in sys.path if p not in ("", __file__.rsplit("/", 1)[0])]

import argparse
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    import pytrec_eval

    from searchcore.config import Config
    from searchcore.evaluate import load_beir
    from searchcore.fusion import rrf, weighted
    from searchcore.search import Searcher

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus_dir", type=Path)
    parser.add_argument("--split", default="train")
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--depth", type=int, default=100)
    args = parser.parse_args()

    queries, qrels = load_beir(args.corpus_dir, args.split)
    queries = {q: t for q, t in queries.items() if q in qrels}
    lists = {}
    with Searcher(Config(index_dir=args.index)) as searcher:
        ids, texts = list(queries), list(queries.values())
        dense = searcher.search_many(texts, args.depth, per_doc=True, mode="dense")
        sparse = searcher.search_many(texts, args.depth, per_doc=True, mode="bm25")
        for qid, d, s in zip(ids, dense, sparse):
            lists[qid] = ([(h.key or h.path, h.score) for h in d], [(h.key or h.path, h.score) for h in s])

    def score(fuse) -> tuple[float, float]:
        run = {}
        for qid, (dense, sparse) in lists.items():
            fused = fuse(dense, sparse)
            top = sorted(fused, key=lambda d: -fused[d])[:100]
            run[qid] = {d: float(100 - i) for i, d in enumerate(top)}
        table = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"}).evaluate(run)
        return (
            float(np.mean([table[q]["ndcg_cut_10"] for q in run])),
            float(np.mean([table[q]["recall_100"] for q in run])),
        )

    rows = [
        ("dense only", score(lambda d, s: {k: v for k, v in d})),
        ("bm25 only", score(lambda d, s: {k: v for k, v in s})),
    ]
    for k in (10, 30, 60, 100):
        for wd, ws in ((1, 1), (1, 1.5), (1.5, 1), (1, 2), (2, 1)):
            rows.append(
                (
                    f"rrf k={k} w={wd}:{ws}",
                    score(lambda d, s, k=k, w=(wd, ws): rrf([[x for x, _ in d], [x for x, _ in s]], k=k, weights=w)),
                )
            )
    for wd, ws in ((1, 1), (1, 0.5), (0.5, 1), (0.7, 0.3), (0.3, 0.7)):
        rows.append((f"weighted w={wd}:{ws}", score(lambda d, s, w=(wd, ws): weighted([dict(d), dict(s)], weights=w))))
    print(f"{args.corpus_dir.name} {args.split}: {len(lists)} queries, depth {args.depth}")
    print(f"{'setting':<24} {'nDCG@10':>8} {'R@100':>8}")
    for name, (ndcg, recall) in rows:
        print(f"{name:<24} {ndcg:>8.4f} {recall:>8.4f}")


if __name__ == "__main__":
    main()
