"""Rankings that do not depend on how an index was built: the same corpus indexed twice,
and once with its records in reverse order, must rank every query alike.

    python bench/determinism.py ../shared/eval-data/scifact [--split test] [--k 100]

Three fresh indexes of CORPUS_DIR/corpus.jsonl (the second a repeat of the first, the
third from a copy with the lines reversed, so every batch the encoder sees holds other
neighbours and every chunk gets another id), then every query of the split in dense,
bm25 and hybrid mode, one hit per document, k hits: the lists of document ids must be
equal, and so must the scores (to 1e-6). Prints, per mode and index, how many queries
differ, and exits 1 if any does.
"""

from __future__ import annotations

import sys

sys.path = [p for p in sys.path if p not in ("", __file__.rsplit("/", 1)[0])]

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

MODES = ("dense", "bm25", "hybrid")


def build(corpus: Path, target: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "searchctl", "index", str(corpus), "--index", str(target), "--no-progress"],
        check=True,
        capture_output=True,
    )


def rankings(index: Path, queries: list[str], k: int) -> dict[str, list[list[tuple[str, float]]]]:
    from searchcore.config import Config
    from searchcore.search import Searcher

    with Searcher(Config(index_dir=index)) as searcher:
        return {
            mode: [[(h.key or h.path, h.score) for h in hits] for hits in searcher.search_many(queries, k, per_doc=True,
                                                                                              mode=mode)]
            for mode in MODES
        }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus_dir", type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("--k", type=int, default=100)
    args = parser.parse_args()
    from searchcore.evaluate import load_beir

    queries = list(load_beir(args.corpus_dir, args.split)[0].values())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        lines = (args.corpus_dir / "corpus.jsonl").read_text().splitlines(keepends=True)
        reverse = work / "reversed" / "corpus.jsonl"
        reverse.parent.mkdir()
        reverse.write_text("".join(reversed(lines)))
        for name, corpus in (("first", args.corpus_dir / "corpus.jsonl"), ("again", args.corpus_dir / "corpus.jsonl"),
                             ("reversed", reverse)):  # fmt: skip
            build(corpus, work / name)
        found = {name: rankings(work / name, queries, args.k) for name in ("first", "again", "reversed")}
    report: dict = {"queries": len(queries), "k": args.k}
    differ = 0
    for name in ("again", "reversed"):
        for mode in MODES:
            ids = sum(
                1 for a, b in zip(found["first"][mode], found[name][mode]) if [d for d, _ in a] != [d for d, _ in b]
            )
            scores = sum(
                1
                for a, b in zip(found["first"][mode], found[name][mode])
                if any(abs(x - y) > 1e-6 for (_, x), (_, y) in zip(a, b))
            )
            report[f"{name} {mode}"] = {"rankings differing": ids, "scores differing": scores}
            differ += ids + scores
    print(json.dumps(report, indent=2))
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
