"""Encoding speed of each backend on a corpus, in one run: docs/s and single-query p50.

    python bench/embed.py ../shared/eval-data/scifact [--limit N] [--queries 200]

For each backend (torch, onnx fp32, onnx int8; with --backends static-int8 also a
statically quantised int8 graph, its activation scales calibrated on the corpus's last
200 documents; with --backends torch-bf16 the torch model with its products in bfloat16,
as a CPU with AMX or AVX-512 BF16 computes them natively) it embeds the corpus documents (title and
text, truncated at the model's 256 tokens, batches of 32 sorted by token count: the same work
for every backend) and then encodes the data set's queries one at a time. It also
reports the mean cosine between each backend's vectors and torch's, and the speed ratio
to torch measured in this same run. ONNX exports are cached (first use exports).
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

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


class StaticInt8:
    """The candidate the probe leaves out: the plain export (no fused operators: ONNX
    Runtime's fused Attention has no static-int8 form), its MatMuls quantised with fixed
    activation scales (QDQ, unsigned activations, per-channel weights, min-max calibration
    on ``calibration`` run one text at a time), run as the int8 backend runs."""

    def __init__(self, calibration: list[str], work: Path):
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process

        from searchcore.embedder import DEFAULT_MODEL, model_location
        from searchcore.onnx_export import _export
        from searchcore.onnx_runtime import FastTokenizer, OnnxEncoder, pooling_config

        location = Path(model_location(DEFAULT_MODEL))
        pooling, normalise, self.dim, max_tokens = pooling_config(location)
        tokenizer = FastTokenizer(location)
        _export(location, work / "plain.onnx", fuse=False)
        quant_pre_process(str(work / "plain.onnx"), str(work / "pre.onnx"), skip_symbolic_shape=True)
        sequences = iter(tokenizer.token_ids(calibration, max_tokens))

        class Reader(CalibrationDataReader):
            def get_next(self):
                ids = next(sequences, None)
                if ids is None:
                    return None
                row = np.asarray([ids], dtype=np.int64)
                return {"input_ids": row, "attention_mask": np.ones_like(row), "token_type_ids": np.zeros_like(row)}

        quantize_static(
            str(work / "pre.onnx"),
            str(work / "static.onnx"),
            Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
        )
        self.encoder = OnnxEncoder(work / "static.onnx", tokenizer, pooling, normalise, max_tokens)

    def embed(self, texts, batch_size=32):
        from searchcore.embedder import l2_normalise

        return l2_normalise(self.encoder.encode(list(texts), batch_size))


class TorchBF16:
    """The torch backend with its forward passes autocast to bfloat16 (a candidate, not a backend)."""

    def __init__(self):
        from searchcore.embedder import Embedder

        self.embedder = Embedder(backend="torch")

    def embed(self, texts, batch_size=32):
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16):
            return self.embedder.embed(list(texts), batch_size)


def measure_one(
    backend: str, texts: list[str], queries: list[str], vectors_out: Path, calibration: list[str] = ()
) -> dict:
    from searchcore.embedder import Embedder

    if backend == "static-int8":
        work = Path(tempfile.mkdtemp(prefix="static-int8-"))
        embedder = StaticInt8(list(calibration), work)
    elif backend == "torch-bf16":
        embedder = TorchBF16()
    else:
        embedder = Embedder(backend=backend)
    embedder.embed(["warm-up"])  # load (and, the first time, export) outside the timing
    started = time.perf_counter()
    vectors = embedder.embed(texts, 32)
    docs_per_second = len(texts) / (time.perf_counter() - started)
    np.save(vectors_out, vectors)
    if backend == "static-int8":
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    times = []
    for query in queries:
        started = time.perf_counter()
        embedder.embed([query])
        times.append((time.perf_counter() - started) * 1000)
    return {
        "backend": backend,
        "docs_per_second": docs_per_second,
        "p50": float(np.percentile(times, 50)),
        "p99": float(np.percentile(times, 99)),
    }


def main() -> None:
    from searchcore.embedder import BACKENDS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus_dir", type=Path)
    parser.add_argument("--limit", type=int, default=None, help="embed only the first N documents")
    parser.add_argument("--queries", type=int, default=200, help="how many single queries to time")
    parser.add_argument(
        "--backends", nargs="+", default=list(BACKENDS), choices=[*BACKENDS, "static-int8", "torch-bf16"]
    )
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: measure one backend
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    texts = []
    with open(args.corpus_dir / "corpus.jsonl") as fh:
        for line in fh:
            record = json.loads(line)
            texts.append(f"{record.get('title') or ''}\n{record.get('text') or ''}".strip())
    calibration = texts[-200:]
    texts = texts[: args.limit] if args.limit else texts
    with open(args.corpus_dir / "queries.jsonl") as fh:
        queries = [json.loads(line)["text"] for line in fh][: args.queries]
    if args.one:
        print(json.dumps(measure_one(args.one, texts, queries, args.out, calibration)))
        return

    # Each backend in a process of its own, as in real use: two runtimes' thread pools in
    # one process slow each other down.
    rows, vectors = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends:
            out = Path(tmp) / f"{backend}.npy"
            cmd = [
                sys.executable,
                __file__,
                str(args.corpus_dir),
                "--one",
                backend,
                "--out",
                str(out),
                "--queries",
                str(args.queries),
            ] + (["--limit", str(args.limit)] if args.limit else [])
            result = subprocess.run(cmd, check=True, capture_output=True, text=True)
            rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
            vectors[backend] = np.load(out)
    base = next((r["docs_per_second"] for r in rows if r["backend"] == "torch"), None)
    from searchcore.probe import cpu_signature

    print(f"{len(texts)} documents, {len(queries)} single queries; CPU {cpu_signature()}")
    print(f"{'backend':<11} {'docs/s':>8} {'vs torch':>9} {'query p50 ms':>13} {'p99 ms':>8} {'cos to fp32':>12}")
    for r in rows:
        backend = r["backend"]
        ratio = f"{r['docs_per_second'] / base:.2f}x" if base else "-"
        reference = "torch" if "torch" in vectors else "onnx" if "onnx" in vectors else None
        cos = f"{float(np.mean(np.sum(vectors[backend] * vectors[reference], axis=1))):.4f}" if reference else "-"
        print(f"{backend:<11} {r['docs_per_second']:>8.1f} {ratio:>9} {r['p50']:>13.2f} {r['p99']:>8.2f} {cos:>12}")


if __name__ == "__main__":
    main()
