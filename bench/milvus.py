"""The Milvus engine beside the local one on a BEIR data set: quality, query speed, indexing.

    python bench/milvus.py ../shared/eval-data/scifact [--split test] [--index DIR] [--json]

Steps, all in this one run on this machine:
  1. Two indexes of CORPUS_DIR/corpus.jsonl with the same chunks and vectors. With
     --index DIR (an index of that corpus made by `searchctl index`), its index.db is
     copied twice; otherwise `searchctl index` builds the local one (a subprocess: seconds
     and docs/s, model load included) and its index.db is copied once.
  2. The Milvus one: the copy is moved to a fresh Milvus Lite file with `searchctl index
     CORPUS --engine milvus` (nothing is re-embedded: the run only publishes every chunk),
     timed in a subprocess: the cost the engine adds to indexing, in chunks/s.
  3. Every query of the split through the library on each engine (`Searcher.search`, best
     chunk per document, k=100) in dense, bm25 and hybrid mode: nDCG@10, MRR@10 and
     Recall@100 (pytrec_eval), and p50 / p99 ms per query from text to hits.
"""

from __future__ import annotations

import sys

sys.path = [p for p in sys.path if p not in ("", __file__.rsplit("/", 1)[0])]

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

MODES = ("dense", "bm25", "hybrid")


def searchctl(*args: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "searchctl", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"searchctl {args[0]} failed: {done.stderr[-2000:]}")
    return time.perf_counter() - started, done.stdout


def copy_index(source: Path, target: Path) -> None:
    target.mkdir(parents=True)
    shutil.copy2(source / "index.db", target / "index.db")


def measure(index: Path, queries: dict, qrels: dict) -> list[dict]:
    from searchcore.config import Config
    from searchcore.evaluate import evaluate
    from searchcore.search import Searcher

    out = []
    with Searcher(Config(index_dir=index)) as searcher:
        searcher.search("warm up the model and the engine", 10)
        for mode in MODES:
            result = evaluate(searcher, queries, qrels, mode=mode)
            times = []
            for text in list(queries.values()):
                started = time.perf_counter()
                searcher.search(text, 100, per_doc=True, mode=mode)
                times.append((time.perf_counter() - started) * 1000)
            out.append({"mode": mode, **{k: round(v, 4) for k, v in result.metrics.items()},
                        "p50_ms": round(float(np.percentile(times, 50)), 2),
                        "p99_ms": round(float(np.percentile(times, 99)), 2)})  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("beir", type=Path, help="a BEIR folder: corpus.jsonl, queries.jsonl, qrels/")
    parser.add_argument("--split", default="test")
    parser.add_argument("--index", type=Path, default=None, help="an index of the corpus to start from")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()
    from searchcore.evaluate import load_beir
    from searchcore.store import Store

    work = opts.workdir or Path(tempfile.mkdtemp(prefix="searchctl-milvus-"))
    local, remote = work / "local", work / "milvus"
    for folder in (local, remote):
        shutil.rmtree(folder, ignore_errors=True)
    corpus = (opts.beir / "corpus.jsonl").resolve()
    report: dict = {"data": opts.beir.name, "split": opts.split}
    if opts.index:
        copy_index(opts.index, local)
    else:
        seconds, _ = searchctl("index", str(corpus), "--index", str(local), "--no-progress")
        with Store.open(local, reader=True) as store:
            documents = store.counts()["documents"]
        report["local_index"] = {"seconds": round(seconds, 1), "docs_per_s": round(documents / seconds, 1)}
    copy_index(local, remote)
    lite = work / "chunks.db"
    if lite.exists():
        shutil.rmtree(lite) if lite.is_dir() else lite.unlink()
    seconds, _ = searchctl("index", str(corpus), "--index", str(remote), "--no-progress", "--engine", "milvus",
                           "--milvus-uri", str(lite))  # fmt: skip
    with Store.open(remote, reader=True) as store:
        counts = store.counts()
    report["milvus_publish"] = {"chunks": counts["chunks"], "seconds": round(seconds, 1),
                                "chunks_per_s": round(counts["chunks"] / seconds, 1)}  # fmt: skip
    queries, qrels = load_beir(opts.beir, opts.split)
    report["local"] = measure(local, queries, qrels)
    report["milvus"] = measure(remote, queries, qrels)
    if opts.json:
        print(json.dumps(report, indent=2))
        return
    for key in ("local_index", "milvus_publish"):
        if key in report:
            print(f"{key:<15} {report[key]}")
    print(f"{'mode':<8} {'engine':<7} {'nDCG@10':>8} {'MRR@10':>8} {'R@100':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for engine in ("local", "milvus"):
        for row in report[engine]:
            print(f"{row['mode']:<8} {engine:<7} {row['ndcg@10']:>8.4f} {row['mrr@10']:>8.4f} "
                  f"{row['recall@100']:>8.4f} {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
