"""Encoding speed of each backend on a corpus, in one run: docs/s and single-query p50.

    python bench/embed.py ../shared/eval-data/scifact [--limit N] [--queries 200]

For each backend (torch, onnx fp32, onnx int8) it embeds the corpus documents (title and
text, truncated at the model's 256 tokens, batches of 32 sorted by token count: the same work
for every backend) and then encodes the data set's queries one at a time. It also
reports the mean cosine between each backend's vectors and torch's, and the speed ratio
to torch measured in this same run. ONNX exports are cached (first use exports).
"""

from __future__ import annotations

import sys

sys.path = [p for p in sys.path if p not in ("", __file__.rsplit("/", 1)[0])]

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def measure_one(backend: str, texts: list[str], queries: list[str], vectors_out: Path) -> dict:
    from searchcore.embedder import Embedder

    embedder = Embedder(backend=backend)
    embedder.embed(["warm-up"])  # load (and, the first time, export) outside the timing
    started = time.perf_counter()
    vectors = embedder.embed(texts, 32)
    docs_per_second = len(texts) / (time.perf_counter() - started)
    np.save(vectors_out, vectors)
    times = []
    for query in queries:
        started = time.perf_counter()
        embedder.embed([query])
        times.append((time.perf_counter() - started) * 1000)
    return {
        "backend": backend,
        "docs_per_second": docs_per_second,
        "p50": float(np.percentile(times, 50)),
        "p99": float(np.percentile(times, 99)),
    }


def main() -> None:
    from searchcore.embedder import BACKENDS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus_dir", type=Path)
    parser.add_argument("--limit", type=int, default=None, help="embed only the first N documents")
    parser.add_argument("--queries", type=int, default=200, help="how many single queries to time")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: measure one backend
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    texts = []
    with open(args.corpus_dir / "corpus.jsonl") as fh:
        for line in fh:
            record = json.loads(line)
            texts.append(f"{record.get('title') or ''}\n{record.get('text') or ''}".strip())
            if args.limit and len(texts) >= args.limit:
                break
    with open(args.corpus_dir / "queries.jsonl") as fh:
        queries = [json.loads(line)["text"] for line in fh][: args.queries]
    if args.one:
        print(json.dumps(measure_one(args.one, texts, queries, args.out)))
        return

    # Each backend in a process of its own, as in real use: two runtimes' thread pools in
    # one process slow each other down.
    rows, vectors = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends:
            out = Path(tmp) / f"{backend}.npy"
            cmd = [
                sys.executable,
                __file__,
                str(args.corpus_dir),
                "--one",
                backend,
                "--out",
                str(out),
                "--queries",
                str(args.queries),
            ] + (["--limit", str(args.limit)] if args.limit else [])
            result = subprocess.run(cmd, check=True, capture_output=True, text=True)
            rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
            vectors[backend] = np.load(out)
    base = next((r["docs_per_second"] for r in rows if r["backend"] == "torch"), None)
    print(f"{len(texts)} documents, {len(queries)} single queries")
    print(f"{'backend':<10} {'docs/s':>8} {'vs torch':>9} {'query p50 ms':>13} {'p99 ms':>8} {'cos to torch':>13}")
    for r in rows:
        backend = r["backend"]
        ratio = f"{r['docs_per_second'] / base:.2f}x" if base else "-"
        cos = (
            f"{float(np.mean(np.sum(vectors[backend] * vectors['torch'], axis=1))):.4f}" if "torch" in vectors else "-"
        )
        print(f"{backend:<10} {r['docs_per_second']:>8.1f} {ratio:>9} {r['p50']:>13.2f} {r['p99']:>8.2f} {cos:>13}")


if __name__ == "__main__":
    main()
