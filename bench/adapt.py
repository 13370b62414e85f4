"""`searchctl adapt` measured: the base and the adapted query encoder on judged queries that
no step of the run saw, on every collection, in one run.

    python bench/adapt.py [DATA] [--collections scifact cranfield] [--work DIR --reuse]
                          [--query-backend onnx] [--json-out FILE] [-- options for searchctl adapt]

For each collection of DATA (default ../shared/eval-data; a folder with corpus.jsonl,
queries.jsonl and qrels/<split>.tsv):

  1. `searchctl index CORPUS` into a fresh index (or, with --work DIR --reuse, the one
     already there);
  2. `searchctl adapt --dry-run` on it with the options after `--` (a subprocess, timed
     from start to end: writing queries, grading, training). Only the corpus is used: no
     query and no judgement of the collection;
  3. dense and hybrid nDCG@10 with the index's own query encoder and with the adapted one
     (``finetune.adapt.judge``) on every judged split of the collection, so settings can be
     chosen on one split (e.g. SciFact train) and reported on another (test). With
     --query-backend onnx, both are scored a second time with fp32 query encoders over the
     same index: int8 quantisation of each encoder on its own moves nDCG@10 by a few
     thousandths whatever the weights learned, and this shows the change without it.

It prints one table (collection, split, mode, base, adapted, change) with the CPU kind
and the run's seconds, and writes every figure as JSON with --json-out.
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

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from quality import DEFAULT_DATA, collections, cpu_kind, index  # noqa: E402

from searchcore.embedder import BACKENDS  # noqa: E402


def measure(folder: Path, target: Path, reuse: bool, adapt_args: list[str], query_backend: str | None) -> dict:
    from finetune.adapt import judge
    from searchcore.config import Config

    seconds = None
    if not (reuse and (target / "index.db").exists()):
        seconds = index(folder / "corpus.jsonl", target, [])
    run = Path(tempfile.mkdtemp(prefix=f"adapt-{folder.name}-"))
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "searchctl", "adapt", "--index", str(target), "--out", str(run / "run"), "--dry-run",
         "--swap-unjudged", "--no-progress", *adapt_args],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    adapt_seconds = time.perf_counter() - started
    report = json.loads((run / "run" / "adapt.json").read_text())
    if report["training"].get("steps_done", 0) == 0:
        raise SystemExit(f"{folder.name}: adapt failed: {done.stderr.strip().splitlines()[-1]}")
    out = {"index_seconds": seconds, "adapt_seconds": round(adapt_seconds, 1), "splits": {}}
    out |= {key: report[key] for key in ("graded", "written", "settings")} | {"stages": report["seconds"]}
    for qrels in sorted(p for p in (folder / "qrels").glob("*.tsv") if p.stem in ("train", "dev", "test")):
        before, after = judge(Config(index_dir=target), run / "run" / "query-encoder", (folder, qrels.stem))
        out["splits"][qrels.stem] = {"before": before, "after": after}
        if query_backend:
            before, after = judge(Config(index_dir=target), run / "run" / "query-encoder", (folder, qrels.stem),
                                  query_backend=query_backend)  # fmt: skip
            out["splits"][qrels.stem] |= {f"before {query_backend}": before, f"after {query_backend}": after}
    return out


def main(argv: list[str]) -> int:
    cut = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--collections", nargs="*", default=None, help="only these collections")
    parser.add_argument("--work", type=Path, default=None, help="where the indexes are built (default: temporary)")
    parser.add_argument("--reuse", action="store_true", help="with --work: use an index already there as it is")
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument(
        "--query-backend", default=None, choices=BACKENDS, help="also score both query encoders on this backend (onnx)"
    )
    args, adapt_args = parser.parse_args(argv[:cut]), argv[cut + 1 :]
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-adapt-"))
    found = [p for p in collections(args.data, "test") if not args.collections or p.name in args.collections]
    if not found:
        raise SystemExit(f"no collection in {args.data}")
    from searchcore.probe import cpu_signature

    results = {"cpu": cpu_kind(), "cpu signature": cpu_signature(), "adapt options": adapt_args, "collections": {}}
    print(f"searchctl adapt {' '.join(adapt_args) or '(defaults)'}; CPU {results['cpu']}: {results['cpu signature']}")
    print(f"{'collection':<11} {'split':<6} {'mode':<7} {'base':>7} {'adapted':>8} {'change':>8}")
    for folder in found:
        figures = measure(folder, work / folder.name, args.reuse, adapt_args, args.query_backend)
        results["collections"][folder.name] = figures
        for split, pair in figures["splits"].items():
            for mode in ("dense", "hybrid"):
                b, a = pair["before"][mode], pair["after"][mode]
                line = f"{folder.name:<11} {split:<6} {mode:<7} {b:>7.4f} {a:>8.4f} {a - b:>+8.4f}"
                if args.query_backend:
                    b, a = pair[f"before {args.query_backend}"][mode], pair[f"after {args.query_backend}"][mode]
                    line += f"   {args.query_backend} queries {b:.4f} -> {a:.4f} ({a - b:+.4f})"
                print(line)
        stages = ", ".join(f"{k} {v:.0f} s" for k, v in figures["stages"].items())
        print(f"{folder.name:<11} adapt {figures['adapt_seconds']:.0f} s ({figures['graded']:,} graded; {stages})")
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
