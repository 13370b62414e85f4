"""Where a query's time goes, in process: encoding the query, then everything else.

    python bench/query.py INDEX_DIR QUERIES.jsonl [--queries 300] [--rounds 3]

For each of the first --queries queries (one at a time, as a person or an agent sends them),
in the same run and interleaved so that neither side gets a warmer machine:

  encode   the query encoder alone on the one query (what no search can avoid);
  dense    `query --mode dense` end to end: encode, FAISS, hits and their snippets;
  bm25     `--mode bm25`: the keyword side, hits and snippets (no encoding);
  hybrid   the default: encode, FAISS, keywords, fusion, the feedback search, per-document
           grouping and snippets, as `searchcore.search_results` gives the one answer shape.

It prints p50 and p99 of each in milliseconds, the hybrid budget (1.3 x encode p50 + 1 ms)
and hybrid minus encode at p50 (what the search itself adds), with the CPU's flags.
"""

from __future__ import annotations

import sys

sys.path = [p for p in sys.path if p not in ("", __file__.rsplit("/", 1)[0])]

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def cpu_flags() -> str:
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return platform.machine()
    have = [f for f in ("avx512_vnni", "avx512_bf16", "avx512f", "avx2") if f" {f}" in flags]
    return "+".join(have) or platform.machine()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("index", type=Path)
    parser.add_argument("queries", type=Path, help="a BEIR queries.jsonl (its `text` fields)")
    parser.add_argument("--queries", dest="limit", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3, help="passes over the queries")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from searchcore import search_results
    from searchcore.config import Config
    from searchcore.options import SearchOptions
    from searchcore.search import Searcher

    texts = [json.loads(line)["text"] for line in args.queries.open(encoding="utf-8")][: args.limit]
    timings: dict[str, list[float]] = {"encode": [], "dense": [], "bm25": [], "hybrid": []}
    with Searcher(Config(index_dir=args.index)) as searcher:
        encoder = searcher.query_embedder
        options = {mode: SearchOptions(k=10, mode=mode, per_doc=True) for mode in ("dense", "bm25", "hybrid")}
        for text in texts[:20]:  # warm every path
            encoder.embed([text])
            for mode in options:
                search_results(searcher, [text], options[mode])
        for _ in range(args.rounds):
            for text in texts:
                started = time.perf_counter()
                encoder.embed([text])
                timings["encode"].append(time.perf_counter() - started)
                for mode, chosen in options.items():
                    started = time.perf_counter()
                    search_results(searcher, [text], chosen)
                    timings[mode].append(time.perf_counter() - started)
        chunks = searcher.counts["chunks"]
    figures = {
        name: {"p50": float(np.percentile(ms, 50)) * 1000, "p99": float(np.percentile(ms, 99)) * 1000}
        for name, ms in timings.items()
    }
    budget = 1.3 * figures["encode"]["p50"] + 1.0
    summary = {
        "cpu": cpu_flags(),
        "index": str(args.index),
        "chunks": chunks,
        "queries": len(texts) * args.rounds,
        "ms": figures,
        "hybrid_budget_ms": budget,
        "hybrid_minus_encode_ms": figures["hybrid"]["p50"] - figures["encode"]["p50"],
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{cpu_flags()}; {chunks:,} chunks; {len(texts)} queries x {args.rounds} rounds, one at a time")
    for name, f in figures.items():
        print(f"  {name:7s} p50 {f['p50']:7.2f} ms   p99 {f['p99']:7.2f} ms")
    print(
        f"  hybrid budget 1.3 x encode + 1 ms = {budget:.2f} ms; hybrid p50 {figures['hybrid']['p50']:.2f} ms "
        f"({'within' if figures['hybrid']['p50'] <= budget else 'over'}); "
        f"hybrid - encode = {summary['hybrid_minus_encode_ms']:.2f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
