"""Adapt the embedder to a BEIR corpus without its labels; score before and after.

    python bench/adapt.py ../shared/eval-data/scifact --index scifact-index \\
        [--splits train test] [--out DIR] [-- ADAPT OPTIONS...]

Steps, all in this one run on this machine, through the commands a user runs:
  1. `searchctl eval --compare mode=dense,bm25,hybrid` on the index, for each split: the
     baseline.
  2. `searchctl adapt --dry-run` on the index: the generator writes queries for sampled
     chunks of the corpus (no query or judgement of the data set is read), the index
     filters them, the embedder is fine-tuned, and before/after are judged on held-out
     generated queries, as a user without labels gets it. Timed as a whole.
  3. `searchctl reindex --model RUN/embedder` on a copy of the index (what adapt does
     with a better model; timed, and added to the adapt time).
  4. `searchctl eval --compare ...` on the copy, for each split: after.
Prints one table (split x mode: before, after, change), the stage times, generation
throughput and ten generated queries, kept and dropped; --json writes everything.
"""

from __future__ import annotations

import sys

# bench/ holds http.py, named like the standard library's http package: keep this folder
# off the import path so that `import http.client` (urllib, huggingface_hub) finds the real one.
sys.path = [p for p in sys.path if p not in ("", __file__.rsplit("/", 1)[0])]

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
MODES = ("dense", "bm25", "hybrid")


def searchctl(*args: str) -> tuple[str, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "searchctl", *args], capture_output=True, text=True, env={**os.environ}
    )
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1) or (done.returncode == 1 and "not better" not in done.stderr):
        sys.exit(f"searchctl {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout, seconds


def scores(beir: Path, split: str, index: Path) -> dict[str, float]:
    out, _ = searchctl(
        "eval", "--beir", str(beir), "--split", split, "--index", str(index),
        "--compare", "mode=" + ",".join(MODES), "--json",
    )  # fmt: skip
    return {run["label"].split("=", 1)[1]: run["ndcg@10"] for run in json.loads(out)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("beir", type=Path, help="a BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")
    parser.add_argument("--index", type=Path, required=True, help="an index of the folder's corpus.jsonl")
    parser.add_argument("--splits", nargs="+", default=["train", "test"], help="qrels splits to score")
    parser.add_argument("--out", type=Path, default=None, help="folder for the run (default: a temporary one)")
    parser.add_argument("--json", type=Path, default=None, help="also write the whole report to this file")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args, extra = parser.parse_args(argv[:cut]), argv[cut + 1 :]  # after --: options for searchctl adapt
    work = Path(tempfile.mkdtemp(prefix="bench-adapt-"))
    run_dir = args.out or work / "run"
    report: dict = {"beir": str(args.beir), "index": str(args.index), "adapt options": extra}
    try:
        report["before"] = {split: scores(args.beir, split, args.index) for split in args.splits}
        out, seconds = searchctl(
            "adapt", "--index", str(args.index), "--out", str(run_dir), "--dry-run", "--json", "--no-progress", *extra
        )
        report["adapt"] = json.loads((run_dir / "adapt.json").read_text())
        report["seconds"] = {"adapt (dry run)": round(seconds, 1)}
        copy = work / "index"
        shutil.copytree(args.index, copy, ignore=shutil.ignore_patterns("adapted", "*.lock"))
        _, seconds = searchctl("reindex", "--model", str((run_dir / "embedder").resolve()), "--index", str(copy))
        report["seconds"]["reindex"] = round(seconds, 1)
        report["seconds"]["adapt in all"] = round(sum(report["seconds"].values()), 1)
        report["after"] = {split: scores(args.beir, split, copy) for split in args.splits}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    queries = report["adapt"]["queries"]
    judge = report["adapt"]["embedder"]
    print(f"{args.beir.name}: adapt {' '.join(extra) or '(defaults)'}")
    print(f"{'split':<8}{'mode':<8}{'before':>8}{'after':>8}{'change':>9}")
    for split in args.splits:
        for mode in MODES:
            before, after = report["before"][split][mode], report["after"][split][mode]
            print(f"{split:<8}{mode:<8}{before:>8.4f}{after:>8.4f}{after - before:>+9.4f}")
    name = "dense nDCG@10"
    print(f"label-free judge ({judge['evaluation']}): {name} {judge['before'][name]:.4f} -> {judge['after'][name]:.4f}")
    rate = queries["generated"] / queries["seconds"] if queries["seconds"] else 0
    print(
        f"queries: {queries['generated']:,} written for {queries['chunks']:,} chunks, {queries['kept']:,} kept, "
        f"dropped {queries['dropped']}; {rate:.2f} queries/s, {queries['tokens'] / queries['seconds']:.0f} tokens/s"
    )
    for item in queries["samples"]:
        print(f"  {'kept' if item['kept'] else 'dropped (' + item['reason'] + ')'}: {item['query']}")
    print("seconds: " + ", ".join(f"{k} {v:,.0f}" for k, v in report["seconds"].items()))
    print("adapt stages: " + ", ".join(f"{k} {v:,.0f}" for k, v in report["adapt"]["seconds"].items()))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
