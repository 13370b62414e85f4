"""Where a query's time goes, in process: encoding the query, then everything else.

    python bench/query.py INDEX_DIR QUERIES.jsonl [--queries 300] [--rounds 3]
    python bench/query.py INDEX_DIR QUERIES.jsonl --against OTHER_CHECKOUT [--rounds 4]

For each of the first --queries queries (one at a time, as a person or an agent sends them),
in the same run and interleaved so that neither side gets a warmer machine:

  encode   the query encoder alone on the one query (what no search can avoid);
  dense    `query --mode dense` end to end: encode, FAISS, hits and their snippets;
  bm25     `--mode bm25`: the keyword side, hits and snippets (no encoding);
  hybrid   the default: encode, FAISS, keywords, fusion, the feedback search, per-document
           grouping and snippets, as `searchcore.search_results` gives the one answer shape.

It prints p50 and p99 of each in milliseconds, the hybrid budget (1.3 x encode p50 + 1 ms)
and hybrid minus encode at p50 (what the search itself adds), with the CPU's flags.

With --against, the same is measured for this checkout's code and for another checkout's
(the code before a change: `git worktree add ../before HEAD~1`), each in a process of its
own, in alternating blocks of all the queries (the order swapped every round, a pause
between blocks so that the other process's encoder threads have gone idle; processes
answering query by query in turn slow each other down). It prints both, the ratios, and
how many queries got the same answer (hits, scores) from both.
"""

from __future__ import annotations

import sys

sys.path = [p for p in sys.path if p not in ("", __file__.rsplit("/", 1)[0])]

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

MODES = ("dense", "bm25", "hybrid")


def cpu_flags() -> str:
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return platform.machine()
    have = [f for f in ("amx_int8", "avx512_vnni", "avx512_bf16", "avx512f", "avx2") if f" {f}" in flags]
    return "+".join(have) or platform.machine()


class Timer:
    """One query's encode and its three searches, timed, with the answers."""

    def __init__(self, index: Path):
        from searchcore.config import Config
        from searchcore.options import SearchOptions
        from searchcore.search import Searcher

        self.searcher = Searcher(Config(index_dir=index))
        self.options = {mode: SearchOptions(k=10, mode=mode, per_doc=True) for mode in MODES}

    def time(self, text: str) -> dict:
        from searchcore import search_results

        started = time.perf_counter()
        self.searcher.query_embedder.embed([text])
        out: dict = {"encode": time.perf_counter() - started, "answers": {}}
        for mode, chosen in self.options.items():
            started = time.perf_counter()
            found = search_results(self.searcher, [text], chosen)[0]
            out[mode] = time.perf_counter() - started
            out["answers"][mode] = [[h["chunk_id"], h["score"]] for h in found["hits"]]
        return out


def worker(index: Path) -> int:
    """Answer queries read from stdin, one JSON string a line, with ``Timer.time``'s figures."""
    timer = Timer(index)
    with timer.searcher:
        for line in sys.stdin:
            print(json.dumps(timer.time(json.loads(line))), flush=True)
    return 0


def figures(timings: dict[str, list[float]]) -> dict:
    ms = {name: {p: float(np.percentile(v, int(p[1:]))) * 1000 for p in ("p50", "p99")} for name, v in timings.items()}
    return {
        "ms": ms,
        "hybrid_budget_ms": 1.3 * ms["encode"]["p50"] + 1.0,
        "hybrid_minus_encode_ms": ms["hybrid"]["p50"] - ms["encode"]["p50"],
    }


def show(label: str, found: dict) -> None:
    print(label)
    for name, f in found["ms"].items():
        print(f"  {name:7s} p50 {f['p50']:7.2f} ms   p99 {f['p99']:7.2f} ms")
    hybrid, budget = found["ms"]["hybrid"]["p50"], found["hybrid_budget_ms"]
    print(
        f"  hybrid budget 1.3 x encode + 1 ms = {budget:.2f} ms; hybrid p50 {hybrid:.2f} ms "
        f"({'within' if hybrid <= budget else 'over'}); hybrid - encode = {found['hybrid_minus_encode_ms']:.2f} ms"
    )


def in_process(index: Path, texts: list[str], rounds: int) -> tuple[dict, int]:
    timer = Timer(index)
    timings: dict[str, list[float]] = {name: [] for name in ("encode", *MODES)}
    for text in texts[:20]:  # warm every path
        timer.time(text)
    with timer.searcher:
        for _ in range(rounds):
            for text in texts:
                for name, value in timer.time(text).items():
                    if name != "answers":
                        timings[name].append(value)
        return figures(timings), timer.searcher.counts["chunks"]


def against(index: Path, texts: list[str], rounds: int, other: Path) -> dict:
    """Both checkouts' figures, in alternating blocks (see the module's docstring)."""
    here = Path(__file__).resolve().parents[1]
    procs = {}
    for name, tree in (("this checkout", here), ("against", other.resolve())):
        env = dict(os.environ, PYTHONPATH=str(tree))
        procs[name] = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), str(index), "-", "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tree,
        )

    def ask(name: str, text: str) -> dict:
        procs[name].stdin.write(json.dumps(text) + "\n")  # type: ignore[union-attr]
        procs[name].stdin.flush()  # type: ignore[union-attr]
        return json.loads(procs[name].stdout.readline())  # type: ignore[union-attr]

    timings = {name: {t: [] for t in ("encode", *MODES)} for name in procs}
    same = 0
    try:
        for name in procs:
            for text in texts[:20]:
                ask(name, text)
        for r in range(rounds):
            answers = {}
            for name in list(procs) if r % 2 == 0 else list(procs)[::-1]:
                time.sleep(0.5)
                found = [ask(name, text) for text in texts]
                answers[name] = [f.pop("answers") for f in found]
                for f in found:
                    for t, value in f.items():
                        timings[name][t].append(value)
            same += sum(a == b for a, b in zip(*answers.values()))
    finally:
        for proc in procs.values():
            proc.stdin.close()  # type: ignore[union-attr]
            proc.wait()
    return {"figures": {name: figures(t) for name, t in timings.items()}, "same": same, "of": rounds * len(texts)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("index", type=Path)
    parser.add_argument("queries", type=Path, help="a BEIR queries.jsonl (its `text` fields)")
    parser.add_argument("--queries", dest="limit", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3, help="passes over the queries")
    parser.add_argument("--against", type=Path, default=None, help="another checkout to time in the same run")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.worker:
        return worker(args.index)
    texts = [json.loads(line)["text"] for line in args.queries.open(encoding="utf-8")][: args.limit]
    if args.against is not None:
        found = against(args.index, texts, args.rounds, args.against)
        if args.json:
            print(json.dumps({"cpu": cpu_flags(), **found}, indent=2))
            return 0
        print(f"{cpu_flags()}; {len(texts)} queries x {args.rounds} rounds, one at a time, in alternating blocks")
        for label, figs in found["figures"].items():
            show(f"{label}:", figs)
        mine, theirs = found["figures"].values()
        ratios = ", ".join(f"{m} {mine['ms'][m]['p50'] / theirs['ms'][m]['p50']:.3f}" for m in ("encode", *MODES))
        print(f"p50 ratios, this checkout / against: {ratios}")
        print(f"the same answer from both: {found['same']} of {found['of']} queries")
        return 0
    summary, chunks = in_process(args.index, texts, args.rounds)
    if args.json:
        print(json.dumps({"cpu": cpu_flags(), "index": str(args.index), "chunks": chunks, **summary}, indent=2))
        return 0
    show(f"{cpu_flags()}; {chunks:,} chunks; {len(texts)} queries x {args.rounds} rounds, one at a time", summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
