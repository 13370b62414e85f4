"""How fast the generator writes `adapt`'s queries: queries/s and tokens/s on this CPU.

    python bench/generate.py [--corpus ../shared/eval-data/scifact/corpus.jsonl]
                             [--chunks 96] [--per-chunk 2] [--batch-size N] [--rounds 2]

--chunks documents of the corpus (drawn with a fixed seed, the same every run) are given
to ``finetune.writers.generated_queries`` as `adapt --queries generated` gives its chunks:
the default generator (SmolLM2-135M-Instruct), the same prompt, --per-chunk samples each
at temperature 1 and top-p 0.95, at most 40 new tokens. It prints, per round, the seconds,
queries/s, generated tokens/s, tokens per query and the queries kept by the cleaning,
then the median round, with the CPU's kind. The model is loaded and warmed before the
clock starts. To compare two versions of the code, run each one's copy of this script
alternately on the same machine (nothing else running).
"""

from __future__ import annotations

import sys

sys.path = [p for p in sys.path if p not in ("", __file__.rsplit("/", 1)[0])]

import argparse
import json
import os
import random
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from quality import cpu_kind  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "eval-data" / "scifact" / "corpus.jsonl"


def documents(corpus: Path, n: int) -> list[tuple[int, int, str]]:
    rows = [json.loads(line) for line in corpus.open(encoding="utf-8") if line.strip()]
    rows = [r for r in rows if len(f"{r.get('title', '')} {r.get('text', '')}".split()) >= 40]
    random.Random(0).shuffle(rows)
    return [(i, i, f"{r.get('title', '')}\n{r.get('text', '')}".strip()) for i, r in enumerate(rows[:n])]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--chunks", type=int, default=96)
    parser.add_argument("--per-chunk", type=int, default=2)
    parser.add_argument("--batch-size", type=int, help="prompts a batch (default: the code's own)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not args.corpus.exists():
        print(f"bench/generate.py: no corpus at {args.corpus}; pass --corpus FILE.jsonl", file=sys.stderr)
        return 2

    from finetune.writers import generated_queries
    from searchcore.generator import Generator

    generator = Generator()
    items = documents(args.corpus, args.chunks)
    sizes = {"batch_size": args.batch_size} if args.batch_size else {}
    generated_queries(None, generator, items[:4], args.per_chunk, 1, **sizes)  # warm
    rounds = []
    for round_ in range(args.rounds):
        started = time.perf_counter()
        kept, cost = generated_queries(None, generator, items, args.per_chunk, 100 + round_, **sizes)
        seconds = time.perf_counter() - started
        rounds.append({
            "seconds": round(seconds, 1),
            "queries_per_s": round(cost["written"] / seconds, 2),
            "tokens_per_s": round(cost["tokens"] / seconds, 1),
            "tokens_per_query": round(cost["tokens"] / max(cost["written"], 1), 1),
            "kept": len(kept),
            "written": cost["written"],
        })  # fmt: skip
        r = rounds[-1]
        print(f"round {round_ + 1}: {r['seconds']} s, {r['queries_per_s']} queries/s, {r['tokens_per_s']} tokens/s, "
              f"{r['tokens_per_query']} tokens a query, {r['kept']} of {r['written']} kept")  # fmt: skip
    median = {key: round(statistics.median(r[key] for r in rounds), 3) for key in rounds[0]}
    print(f"generator {generator.name} (bf16: {generator.bf16}), {args.chunks} chunks x {args.per_chunk}, "
          f"CPU {cpu_kind()} ({os.cpu_count()} cores): median {median['queries_per_s']} queries/s, "
          f"{median['tokens_per_s']} tokens/s")  # fmt: skip
    if args.json:
        print(json.dumps({"cpu": cpu_kind(), "rounds": rounds, "median": median}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
