"""Ingest speed: `searchctl index` against the encoder alone on the same chunk texts.

    python bench/ingest.py ../shared/eval-data/scifact [--runs 2] [--workdir DIR]

1. `searchctl index CORPUS_DIR/corpus.jsonl` into a fresh folder (a subprocess: start-up,
   model load, reading, chunking, SQLite writes, keyword cache and vector file included).
2. The same chunk texts as the run embedded them (title and chunk, read back from the new
   index), embedded by the same model and backend in this process, in batches of the
   run's size, with nothing else to do.

Both are counted in the model's tokens (special tokens included, as the encoder sees
them); the figure is the run's tokens/s as a share of the encoder's. The two alternate
--runs times and the medians are compared, so a shared machine's noise hits both.
"""

from __future__ import annotations

import sys

sys.path = [p for p in sys.path if p not in ("", __file__.rsplit("/", 1)[0])]

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def index_run(corpus: Path, folder: Path) -> float:
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "searchctl", "index", str(corpus), "--index", str(folder), "--no-progress",
                    "--json"], check=True, capture_output=True)  # fmt: skip
    return time.perf_counter() - started


def chunk_texts(folder: Path) -> tuple[list[str], str, str]:
    from searchcore.embedder import embedded_text
    from searchcore.store import Store

    with Store.open(folder, reader=True) as store:
        meta = store.meta()
        texts = [embedded_text(title or None, text) for rows in store.keyword_rows() for _, title, text in rows]
    assert meta.model is not None and meta.backend is not None, f"{folder} holds no vectors"
    return texts, meta.model, meta.backend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("beir", type=Path, help="a BEIR folder holding corpus.jsonl")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workdir", type=Path, default=None)
    opts = parser.parse_args()
    from searchcore.models import make_embedder

    work = opts.workdir or Path(tempfile.mkdtemp(prefix="searchctl-ingest-"))
    corpus = (opts.beir / "corpus.jsonl").resolve()
    folder = work / "index"
    index_run(corpus, folder)  # warm: the model's export and the page cache
    texts, model, backend = chunk_texts(folder)
    embedder = make_embedder(model, backend, None)
    limit = embedder.max_tokens  # what the encoder sees of each text
    tokens = sum(min(n, limit) for i in range(0, len(texts), 1000) for n in embedder.count_tokens(texts[i : i + 1000]))
    embedder.embed(texts[:64], opts.batch_size)
    runs, alone = [], []
    for _ in range(opts.runs):
        runs.append(index_run(corpus, folder))
        started = time.perf_counter()
        embedder.embed(texts, opts.batch_size)
        alone.append(time.perf_counter() - started)
    run_s, alone_s = float(np.median(runs)), float(np.median(alone))
    report = {
        "data": opts.beir.name, "chunks": len(texts), "tokens": tokens, "model": model, "backend": backend,
        "index_run_s": round(run_s, 1), "encoder_alone_s": round(alone_s, 1),
        "index_tokens_per_s": round(tokens / run_s), "encoder_tokens_per_s": round(tokens / alone_s),
        "share": round(alone_s / run_s, 3),
    }  # fmt: skip
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
