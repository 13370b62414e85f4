"""`ask` on SciFact: do the quoted sentences come from a judged document as often as
hybrid search's top 3 documents do?

    python bench/ask.py [--data ../shared/eval-data/scifact] [--index DIR] [--claims 50]
    python bench/ask.py --tune 200     # choose the sentence weights on train claims first
    python bench/ask.py --generate 20  # also write answers with the default generator

For the first --claims judged claims of the test split (by id): whether any of hybrid
search's first 3 documents is judged relevant, and whether any document `ask` quotes is
(with how many quotes and documents it cites, and its time per question). With --tune N,
the weights of a sentence's score (words, rank: see searchcore.answers) are first chosen
on the first N claims of the *train* split, never on the split reported. With --generate
N, the first N test claims also get an answer written by the default generator from the
quotes: its time, how many answers cite a quote, and the share of the answer's words
found in the quotes it was given (how much it copies rather than invents).

The index is built with `searchctl index CORPUS` when --index names no index yet.
"""

from __future__ import annotations

import sys

sys.path = [p for p in sys.path if p not in ("", __file__.rsplit("/", 1)[0])]

import argparse
import itertools
import json
import os
import platform
import re
import subprocess
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "eval-data" / "scifact"


class CachedEmbedder:
    """The index's embedder, remembering each sentence's vector across the tuning grid."""

    def __init__(self, inner):
        self.inner, self.name, self.seen = inner, inner.name, {}

    def embed(self, texts, *args, **kwargs):
        missing = [t for t in dict.fromkeys(texts) if t not in self.seen]
        if missing:
            self.seen.update(zip(missing, self.inner.embed(missing)))
        return np.stack([self.seen[t] for t in texts])


def claims(data: Path, split: str, n: int) -> tuple[list[tuple[str, str]], dict[str, set[str]]]:
    from searchcore.evaluate import load_beir

    queries, qrels = load_beir(data, split)
    judged = {q: {d for d, s in docs.items() if s > 0} for q, docs in qrels.items()}
    ids = sorted((q for q in judged if judged[q] and q in queries), key=lambda q: (len(q), q))[:n]
    return [(q, queries[q]) for q in ids], judged


def measure(searcher, items, judged, words: float, rank: float, per_document: int, floor: float = 0.0) -> dict:
    from searchcore.answers import ask
    from searchcore.options import SearchOptions

    top3 = cited = quotes = docs = judged_docs = 0
    took = []
    for qid, text in items:
        found = searcher.run([text], SearchOptions(k=3, per_doc=True))[0]
        top3 += bool({h.key for h in found} & judged[qid])
        started = time.perf_counter()
        answer = ask(searcher, text, words=words, rank=rank, per_document=per_document, floor=floor)
        took.append((time.perf_counter() - started) * 1000)
        keys = {q.handle.rpartition("#")[2] for q in answer.quotes}
        cited += bool(keys & judged[qid])
        quotes += len(answer.quotes)
        docs += len(keys)
        judged_docs += len(keys & judged[qid])
    n = len(items)
    return {
        "claims": n,
        "top3_judged": top3,
        "ask_judged": cited,
        "quotes_per_claim": round(quotes / n, 2),
        "documents_per_claim": round(docs / n, 2),
        "quoted_documents_judged": round(judged_docs / max(docs, 1), 3),
        "ask_ms_p50": round(float(np.median(took)), 1),
    }


def generate(searcher, items, n: int) -> dict:
    from searchcore.answers import ask, write_answer
    from searchcore.generator import Generator

    generator = Generator()
    cites = 0
    support, took = [], []
    for _, text in items[:n]:
        answer = ask(searcher, text)
        started = time.perf_counter()
        written = write_answer(answer, generator)
        took.append((time.perf_counter() - started) * 1000)
        cites += bool(re.search(r"\[\d+\]", written.answer or ""))
        words = re.findall(r"[a-z]{3,}", (written.answer or "").lower())
        quoted = set(re.findall(r"[a-z]{3,}", " ".join(q.text for q in answer.quotes).lower()))
        support.append(sum(w in quoted for w in words) / len(words) if words else 0.0)
        print(f"  {text[:70]!r} -> {written.answer!r}", file=sys.stderr)
    return {
        "answers": n,
        "citing": cites,
        "words_found_in_quotes": round(float(np.mean(support)), 3),
        "write_ms_p50": round(float(np.median(took)), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--index", type=Path, default=Path("/tmp/searchctl-bench-ask-scifact"))
    parser.add_argument("--claims", type=int, default=50)
    parser.add_argument("--tune", type=int, default=0, metavar="N", help="choose the weights on N train claims")
    parser.add_argument("--grid", default="full", choices=("full", "floor"), help="floor: tune only the floor")
    parser.add_argument("--generate", type=int, default=0, metavar="N")
    args = parser.parse_args()
    if not (args.data / "corpus.jsonl").exists():
        sys.exit(f"no corpus.jsonl in {args.data}; give --data a BEIR folder (SciFact)")
    if not (args.index / "index.db").exists():
        subprocess.run(
            [sys.executable, "-m", "searchctl", "index", str(args.data / "corpus.jsonl"), "--index", str(args.index)],
            check=True,
        )
    from searchcore import Config, Searcher
    from searchcore.answers import FLOOR, PER_DOCUMENT, RANK, WORDS

    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    kind = "avx512-vnni" if "avx512_vnni" in flags else "avx2" if "avx2" in flags else platform.machine()
    out: dict = {"cpu": kind, "cores": os.cpu_count()}
    words, rank, per_document, chosen_floor = WORDS, RANK, PER_DOCUMENT, FLOOR
    with Searcher(Config(index_dir=args.index)) as searcher:
        searcher.embedder = CachedEmbedder(searcher.embedder)
        if args.tune:
            train, train_judged = claims(args.data, "train", args.tune)
            grid = {}
            settings = [(words, rank, per_document)]
            if args.grid == "full":
                settings = list(itertools.product((0.15, 0.3, 0.6), (0.0, 0.05), (1, 2, 3)))
            for setting in settings:
                grid[setting] = measure(searcher, train, train_judged, *setting)
                print(f"train words, rank, per_document={setting}: {grid[setting]}", file=sys.stderr)
            words, rank, per_document = max(grid, key=lambda s: (grid[s]["ask_judged"], s[2]))
            out["train"] = {"words={} rank={} per_document={}".format(*s): v for s, v in grid.items()}
            # then the highest floor that still quotes a judged document as often as the top 3 do
            floors = {}
            for floor in (0.0, 0.4, 0.5, 0.6, 0.7, 0.8):
                floors[floor] = measure(searcher, train, train_judged, words, rank, per_document, floor)
                print(f"train floor={floor}: {floors[floor]}", file=sys.stderr)
            enough = [f for f, r in floors.items() if r["ask_judged"] >= r["top3_judged"]]
            chosen_floor = max(enough) if enough else 0.0
            out["train_floor"] = {f"floor={f}": v for f, v in floors.items()}
            out["chosen"] = {"words": words, "rank": rank, "per_document": per_document, "floor": chosen_floor}
        test, test_judged = claims(args.data, "test", args.claims)
        searcher.embedder = searcher.embedder.inner  # timings of the test run without the cache
        out["test"] = measure(searcher, test, test_judged, words, rank, per_document, chosen_floor)
        if args.generate:
            out["generate"] = generate(searcher, test, args.generate)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
