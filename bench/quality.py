"""Retrieval quality on every shared collection, in every mode, against a committed baseline.

    python bench/quality.py [DATA] [--collections cranfield med] [--fts5] [--work DIR --reuse]
    python bench/quality.py --write-baseline      # after a ranking change, with its reason

DATA defaults to ../shared/eval-data beside the project: every folder there with a
corpus.jsonl, queries.jsonl and qrels/<split>.tsv is a collection. For each one, in one run:

  1. `searchctl index CORPUS` into a fresh index (a subprocess, the default model and
     backend; with --work DIR --reuse, an index already there is used as it is);
  2. every judged query of the split through the library, one hit per document, k=100,
     in dense, bm25 and hybrid mode; nDCG@10 and Recall@100 by pytrec_eval;
  3. with --fts5, bm25 and hybrid again with the keyword side answered by index.db's FTS5
     table instead of the keyword cache (the path every reader falls back to), as the
     reference the cache must rank at least as well as;
  4. every figure against the baseline file (bench/quality-baseline.json) recorded for
     this machine's CPU kind: a collection and mode below it by more than --tolerance
     (0.003) is named and the script exits 1. The int8 encoder's numbers differ slightly
     between CPU kinds (AVX-512 VNNI against AVX2 only), so each kind has its own
     baseline; a kind with none is compared with another kind's at 0.01 and says so.

The baseline changes only with a ranking change, by --write-baseline, and the commit that
changes it gives the figures and the reason.
"""

from __future__ import annotations

import sys

sys.path = [p for p in sys.path if p not in ("", __file__.rsplit("/", 1)[0])]

import argparse
import csv
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "eval-data"
BASELINE = Path(__file__).resolve().with_name("quality-baseline.json")
MODES = ("dense", "bm25", "hybrid")
METRICS = ("ndcg@10", "recall@100")
TOLERANCE = 0.003
OTHER_KIND_TOLERANCE = 0.01


def cpu_kind() -> str:
    """avx512-vnni, avx2, arm64 or the machine's name: what the int8 encoder's numbers depend on."""
    machine = platform.machine().lower()
    if machine in ("arm64", "aarch64"):
        return "arm64"
    try:
        flags = next(
            (line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), ""
        ).split()
    except OSError:
        flags = []
    if "avx512_vnni" in flags:
        return "avx512-vnni"
    if "avx2" in flags:
        return "avx2"
    return machine or "unknown"


def collections(data: Path, split: str) -> list[Path]:
    return sorted(
        p
        for p in data.iterdir()
        if (p / "corpus.jsonl").exists() and (p / "queries.jsonl").exists() and (p / "qrels" / f"{split}.tsv").exists()
    )


def judged(folder: Path, split: str) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    qrels: dict[str, dict[str, int]] = {}
    with open(folder / "qrels" / f"{split}.tsv", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    queries = {}
    with open(folder / "queries.jsonl") as fh:
        for line in fh:
            record = json.loads(line)
            if record["_id"] in qrels:
                queries[record["_id"]] = record["text"]
    return queries, {q: qrels[q] for q in queries}


def index(corpus: Path, target: Path, extra: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "searchctl", "index", str(corpus), "--index", str(target), "--no-progress", *extra],
        check=True,
        capture_output=True,
        text=True,
    )
    return time.perf_counter() - started


def scores(searcher, queries: dict[str, str], qrels: dict[str, dict[str, int]], mode: str) -> dict[str, float]:
    import pytrec_eval

    results = searcher.search_many(list(queries.values()), 100, per_doc=True, mode=mode)
    # trec_eval ranks by score: hand it the searcher's order
    run = {qid: {(h.key or h.path): float(100 - i) for i, h in enumerate(hits)} for qid, hits in zip(queries, results)}
    table = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"}).evaluate(run)
    return {
        "ndcg@10": float(np.mean([table[q]["ndcg_cut_10"] for q in qrels])),
        "recall@100": float(np.mean([table[q]["recall_100"] for q in qrels])),
    }


def keyword_ms(searcher, queries: dict[str, str]) -> float:
    """Median milliseconds of the keyword side's top 100 (the engine alone: no fusion, no records)."""
    times = []
    for text in queries.values():
        started = time.perf_counter()
        searcher.engine.keyword(text, 100, None)
        times.append((time.perf_counter() - started) * 1000)
    return round(float(np.median(times)), 3)


def measure(folder: Path, target: Path, split: str, fts5: bool, reuse: bool, extra: list[str]) -> dict:
    from searchcore.config import Config
    from searchcore.search import Searcher

    queries, qrels = judged(folder, split)
    seconds = None
    if not (reuse and (target / "index.db").exists()):
        seconds = index(folder / "corpus.jsonl", target, extra)
    out: dict = {"queries": len(queries), "index_seconds": round(seconds, 1) if seconds else "reused"}
    with Searcher(Config(index_dir=target)) as searcher:
        out["backend"] = searcher.embedder.backend
        out["chunks"] = searcher.counts["chunks"]
        out["keyword_cache"] = getattr(searcher.engine, "keywords", None) is not None
        for mode in MODES:
            out[mode] = scores(searcher, queries, qrels, mode)
        out["keyword_top100_p50_ms"] = keyword_ms(searcher, queries)
        if fts5:
            searcher.engine.keywords = None  # type: ignore[attr-defined]  # the FTS5 path every reader falls back to
            for mode in ("bm25", "hybrid"):
                out[f"{mode} (fts5)"] = scores(searcher, queries, qrels, mode)
            out["keyword_top100_p50_ms (fts5)"] = keyword_ms(searcher, queries)
    return out


def compare(report: dict, baseline: dict, kind: str, tolerance: float) -> tuple[list[str], list[str]]:
    """(lines of figures below the baseline, notes)."""
    notes: list[str] = []
    recorded = baseline.get(kind)
    if recorded is None and baseline:
        other = sorted(baseline)[0]
        recorded, tolerance = baseline[other], max(tolerance, OTHER_KIND_TOLERANCE)
        notes.append(f"no baseline for CPU kind {kind}: compared with {other}'s at {tolerance}")
    below = []
    for name, figures in report["collections"].items():
        base = (recorded or {}).get(name)
        if base is None:
            notes.append(f"{name}: no baseline")
            continue
        for mode in MODES:
            for metric in METRICS:
                got, want = figures[mode][metric], base.get(mode, {}).get(metric)
                if want is not None and got < want - tolerance:
                    below.append(f"{name} {mode} {metric}: {got:.4f} < baseline {want:.4f} - {tolerance}")
    return below, notes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, nargs="?", default=DEFAULT_DATA, help="folder of BEIR-layout collections")
    parser.add_argument("--collections", nargs="+", default=None, help="only these (folder names)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--fts5", action="store_true", help="also rank bm25 and hybrid through FTS5 in the same run")
    parser.add_argument("--work", type=Path, default=None, help="where the indexes are built (default: temporary)")
    parser.add_argument("--reuse", action="store_true", help="with --work: use an index already there as it is")
    parser.add_argument("--baseline", type=Path, default=BASELINE)
    parser.add_argument("--write-baseline", action="store_true", help="record these figures for this CPU kind")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE)
    parser.add_argument("--index-args", default="", help="extra arguments for `searchctl index`, one string")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"no data folder at {args.data}", file=sys.stderr)
        return 2
    found = collections(args.data, args.split)
    if args.collections:
        found = [p for p in found if p.name in args.collections]
        missing = set(args.collections) - {p.name for p in found}
        if missing:
            print(f"no collection {', '.join(sorted(missing))} in {args.data}", file=sys.stderr)
            return 2
    kind = cpu_kind()
    report: dict = {"cpu": kind, "machine": platform.processor() or platform.machine(), "collections": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        for folder in found:
            started = time.perf_counter()
            figures = measure(folder, work / folder.name, args.split, args.fts5, args.reuse, args.index_args.split())
            figures["seconds"] = round(time.perf_counter() - started, 1)
            report["collections"][folder.name] = figures
            print(f"{folder.name}: {figures['queries']} queries, {figures['seconds']} s", file=sys.stderr, flush=True)
    baseline = json.loads(args.baseline.read_text()) if args.baseline.exists() else {}
    below, notes = compare(report, baseline, kind, args.tolerance)
    if args.write_baseline:
        kept = baseline.setdefault(kind, {})
        for name, figures in report["collections"].items():
            kept[name] = {mode: {m: round(figures[mode][m], 4) for m in METRICS} for mode in MODES}
        args.baseline.write_text(json.dumps(baseline, indent=2, sort_keys=True) + "\n")
        notes.append(f"wrote the baseline of {kind} to {args.baseline}")
    if args.json:
        print(json.dumps({**report, "below_baseline": below, "notes": notes}, indent=2))
    else:
        print_table(report, baseline.get(kind, {}))
        for line in notes:
            print(f"note: {line}")
        for line in below:
            print(f"BELOW BASELINE: {line}")
    return 1 if below and not args.write_baseline else 0


def print_table(report: dict, base: dict) -> None:
    columns = [c for c in ("dense", "bm25", "hybrid", "bm25 (fts5)", "hybrid (fts5)")
               if any(c in f for f in report["collections"].values())]  # fmt: skip
    print(f"CPU kind: {report['cpu']}; nDCG@10 / Recall@100, one hit per document (baseline nDCG@10 in brackets)")
    print(f"{'collection':<12}" + "".join(f" {c:>24}" for c in columns) + "  keyword top-100 p50 ms")
    for name, figures in report["collections"].items():
        cells = []
        for column in columns:
            got = figures.get(column)
            if got is None:
                cells.append(f" {'-':>24}")
                continue
            want = base.get(name, {}).get(column, {}).get("ndcg@10")
            shown = f"{got['ndcg@10']:.4f}/{got['recall@100']:.4f}" + (f" ({want:.4f})" if want is not None else "")
            cells.append(f" {shown:>24}")
        timing = f"{figures['keyword_top100_p50_ms']:.3f}"
        if "keyword_top100_p50_ms (fts5)" in figures:
            timing += f" (FTS5 {figures['keyword_top100_p50_ms (fts5)']:.3f})"
        print(f"{name:<12}" + "".join(cells) + f"  {timing}")


if __name__ == "__main__":
    sys.exit(main())
