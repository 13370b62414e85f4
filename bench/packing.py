"""What packing sequences into one run would cost the encoder: tokens/s of one run by length.

    python bench/packing.py [--lengths 16 32 64 128] [--pack 4] [--backends onnx-int8 onnx]
                            [--index DIR ...]

`searchctl index` runs each chunk alone, unpadded, on a one-thread session per core.
Sequence packing puts several short sequences into one run (one row, a block-diagonal
attention mask) so that a run carries more tokens. For each backend and each length L this
times one run of L tokens and one run of `--pack` x L tokens on a one-thread session (the
same kind of session `index` uses), and prints tokens/s of each and their ratio. The long
run is what a packed run costs at least: a mask hides tokens from each other but takes no
work away (ONNX Runtime's fused attention computes every pair and masks after; the
export's graph has no mask input at all, since a run holds one sequence, so packing would
need it back), so a ratio below 1 means packing loses at that length, and one near 1 that
it cannot win.
A packed run longer than the model's positions (512 for the default model) is left out.
With --index, it also prints how long each index's chunks are as the encoder reads them
(title and chunk, in the default model's tokens): the lengths packing would work with.
"""

from __future__ import annotations

import sys

sys.path = [p for p in sys.path if p not in ("", __file__.rsplit("/", 1)[0])]

import argparse
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))

from quality import cpu_kind  # noqa: E402

POSITIONS = 512  # the default model's position embeddings


def random_run(inputs: list[str], length: int) -> dict[str, np.ndarray]:
    """The arrays of one run of ``length`` random word pieces (between [CLS] and [SEP]),
    for a session whose inputs are named ``inputs``."""
    ids = np.random.default_rng(length).integers(1000, 20000, (1, length)).astype(np.int64)
    ids[0, 0], ids[0, -1] = 101, 102
    arrays = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    return {name: arrays[name] for name in inputs}


def run_time(session, inputs: list[str], length: int, seconds: float) -> float:
    """Median milliseconds of one run of ``length`` tokens (random word pieces)."""
    feed = random_run(inputs, length)
    for _ in range(3):
        session.run(None, feed)
    times, deadline = [], time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 5:
        started = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - started) * 1000)
    return float(np.median(times))


def chunk_lengths(index_dir: Path, embedder) -> None:
    """Median tokens of an index's chunks as embedded, and the share of short ones."""
    from searchcore.config import Config
    from searchcore.embedder import embedded_text, short_title
    from searchcore.search import Searcher

    with Searcher(Config(index_dir=index_dir)) as searcher:
        documents = searcher.records.document_list()
        titles = {d.doc_id: short_title(embedder, d.title) for d in documents}
        chunks = searcher.records.document_chunks([d.doc_id for d in documents])
    texts = [embedded_text(titles[doc], text) for doc, listed in chunks.items() for _, text in listed]
    lengths = np.array([len(ids) for ids in embedder.encoder.tokenizer.token_ids(texts, embedder.encoder.max_tokens)])
    short = lengths <= 32
    print(
        f"{index_dir}: {len(lengths):,} chunks, median {int(np.median(lengths))} tokens; "
        f"{short.mean():.1%} of chunks and {lengths[short].sum() / lengths.sum():.1%} of tokens in chunks of <= 32"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--pack", type=int, default=4, help="sequences a packed run would hold")
    parser.add_argument("--backends", nargs="+", default=["onnx-int8", "onnx"], choices=["onnx-int8", "onnx"])
    parser.add_argument("--seconds", type=float, default=2.0, help="time spent on each measurement")
    parser.add_argument("--index", type=Path, nargs="*", default=[], help="indexes whose chunk lengths to print")
    args = parser.parse_args()

    from searchcore.embedder import Embedder
    from searchcore.onnx_runtime import new_session

    print(f"CPU {cpu_kind()}; one-thread session; packing {args.pack} sequences into one run")
    packed_head = f"x{args.pack} tok/s"
    print(f"{'backend':10s} {'L':>5s} {'alone tok/s':>12s} {packed_head:>12s} {'packed/alone':>13s}")
    embedders = {backend: Embedder(backend=backend) for backend in args.backends}
    for backend, embedder in embedders.items():
        encoder = embedder.encoder  # exported and cached on first use
        session = new_session(encoder.model_file, 1)
        inputs = [i.name for i in session.get_inputs()]
        for length in args.lengths:
            if args.pack * length > POSITIONS:
                too_long = f"(a packed run of {args.pack * length} tokens: past the model's {POSITIONS})"
                print(f"{backend:10s} {length:5d}  {too_long}")
                continue
            alone = length / run_time(session, inputs, length, args.seconds)
            packed = args.pack * length / run_time(session, inputs, args.pack * length, args.seconds)
            print(f"{backend:10s} {length:5d} {alone * 1000:12.0f} {packed * 1000:12.0f} {packed / alone:13.2f}")
    counting = embedders.get("onnx-int8") or Embedder(backend="onnx-int8")  # one tokenizer for every index
    for index_dir in args.index:
        chunk_lengths(index_dir, counting)


if __name__ == "__main__":
    main()
